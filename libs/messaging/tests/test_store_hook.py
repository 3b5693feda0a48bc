"""A service's store reaches its handlers over the delivery's own transaction, and a
FakeContext runs the same handler with no database or broker."""

import uuid
from datetime import UTC, datetime

import pytest

from platen.events.jobs import JobCaptured
from platen.messaging.fakes import FakeContext
from platen.messaging.handling import apply_in_transaction


def captured() -> JobCaptured:
    return JobCaptured(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab-1",
        document_name="a.pdf",
        pages=1,
        copies=1,
        size_bytes=10,
        captured_at=datetime.now(UTC),
    )


class NoteStore:
    """A store over one connection: writes a row in the caller's transaction."""

    def __init__(self, conn):
        self.conn = conn

    async def note(self, message_id: str, note: str) -> None:
        await self.conn.execute("INSERT INTO svc.applied VALUES ($1, $2)", message_id, note)


class FakeNoteStore:
    def __init__(self):
        self.notes: list[tuple[str, str]] = []

    async def note(self, message_id: str, note: str) -> None:
        self.notes.append((message_id, note))


async def handler(ctx, event: JobCaptured):
    await ctx.store.note(str(event.job_id), event.user)
    await ctx.emit(event, correlation_id=str(event.job_id))


async def test_the_store_writes_in_the_handlers_transaction(pool):
    event = captured()
    await apply_in_transaction(pool, "svc", handler, event, store=NoteStore)
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT note FROM svc.applied WHERE message_id = $1", str(event.job_id)
            )
            == "alice"
        )
        # The emit went to the outbox of the same transaction.
        assert await conn.fetchval("SELECT count(*) FROM svc.outbox") == 1


async def test_a_fake_context_runs_the_handler_with_no_database():
    event = captured()
    ctx = FakeContext(store=FakeNoteStore())
    await handler(ctx, event)
    assert ctx.store.notes == [(str(event.job_id), "alice")]
    assert ctx.messages(JobCaptured) == [event]
    assert ctx.emitted[0].routing_key == "job.captured"
    assert ctx.emitted[0].correlation_id == str(event.job_id)


async def test_an_effect_left_for_after_the_commit_sees_the_committed_state(pool):
    event = captured()
    seen = []

    async def effect():
        # On a connection of its own: only a committed row is visible here.
        async with pool.acquire() as conn:
            seen.append(await conn.fetchval("SELECT note FROM svc.applied"))

    async def handler_with_effect(ctx, event):
        await ctx.store.note(str(event.job_id), event.user)
        ctx.after_commit(effect)

    await apply_in_transaction(pool, "svc", handler_with_effect, event, store=NoteStore)
    assert seen == ["alice"]


async def test_no_effect_runs_for_a_transaction_that_rolls_back(pool):
    ran = []

    async def effect():
        ran.append(1)

    async def failing(ctx, event):
        ctx.after_commit(effect)
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await apply_in_transaction(pool, "svc", failing, captured(), store=NoteStore)
    assert ran == []


async def test_a_fake_context_runs_the_effects_when_told_the_transaction_committed():
    ran = []

    async def effect():
        ran.append(1)

    ctx = FakeContext()
    ctx.after_commit(effect)
    assert ran == []
    await ctx.commit()
    await ctx.commit()
    assert ran == [1]
