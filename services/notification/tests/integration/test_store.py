"""The notification store and handlers against a real PostgreSQL (no broker): each
handler runs in a transaction of its own, its emits left in the outbox table."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from platen.events.accounts import AnswerOutcome, JobInputRequired
from platen.events.desktop import JobAnswer
from platen.events.registry import decode
from platen.messaging.handling import apply_in_transaction
from platen.notification import prompts
from platen.notification.domain import (
    Answer,
    DesktopIdentity,
    PrintServerIdentity,
    Prompt,
    SignedInDesktop,
)
from platen.notification.store import Store


def now() -> datetime:
    # Read when a test runs, not at import: a long run would otherwise start a test with
    # its prompts' deadlines already past.
    return datetime.now(UTC)


async def test_desktop_identities_round_trip(pool):
    async with pool.acquire() as conn:
        store = Store(conn)
        assert await store.add_desktop_identity("bob") == DesktopIdentity("bob", True)
        await store.save_desktop_identity(DesktopIdentity("bob", False))
        # Announced again (a redelivery): the state stays.
        assert await store.add_desktop_identity("bob") == DesktopIdentity("bob", False)
        await store.save_desktop_identity(DesktopIdentity("alice", True))
        assert await store.desktop_identity("nobody") is None
        assert await store.desktop_identities() == [
            DesktopIdentity("alice", True),
            DesktopIdentity("bob", False),
        ]
        assert await store.enabled_logins() == ["alice"]


async def test_a_sign_in_holds_its_users_row_so_two_are_counted_one_after_the_other(pool):
    """Two sign-ins of one user at once would each count the user's desktops before the
    other saved its own, and both pass the cap: the first holds the user's row until it
    commits; the second waits (here: gives up at once), another user's does not."""
    async with pool.acquire() as conn:
        await Store(conn).save_desktop_identity(DesktopIdentity("cap", True))
        await Store(conn).save_desktop_identity(DesktopIdentity("other", True))
    async with pool.acquire() as first, pool.acquire() as second, first.transaction():
        assert await Store(first).desktop_identity("cap", lock=True) is not None
        async with second.transaction():
            await second.execute("SET LOCAL lock_timeout = '50ms'")
            assert await Store(second).desktop_identity("other", lock=True) is not None
            assert (
                await Store(second).desktop_identity("cap") is not None
            )  # a plain read does not wait
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                await Store(second).desktop_identity("cap", lock=True)


async def test_signed_in_desktops_round_trip_and_a_revoked_one_is_forgotten(pool):
    at = now()
    async with pool.acquire() as conn:
        store = Store(conn)
        pc1 = SignedInDesktop("bob", "pc-1", at, "10.0.0.5")
        await store.save_signed_in_desktop(pc1)
        await store.save_signed_in_desktop(SignedInDesktop("bob", "pc-2", at))
        await store.save_signed_in_desktop(SignedInDesktop("amy", "pc-1", at))
        assert await store.signed_in_desktop("bob", "pc-1") == pc1
        assert [d.username for d in await store.signed_in_desktops("bob")] == [
            "bob~pc-1",
            "bob~pc-2",
        ]
        assert len(await store.signed_in_desktops()) == 3
        # Not forgotten unless revoked (it may have signed in again meanwhile).
        await store.forget_signed_in_desktop("bob", "pc-1")
        assert await store.signed_in_desktop("bob", "pc-1") == pc1
        pc1.revoke()
        await store.save_signed_in_desktop(pc1)
        assert (await store.signed_in_desktop("bob", "pc-1")).revoked
        await store.forget_signed_in_desktop("bob", "pc-1")
        assert await store.signed_in_desktop("bob", "pc-1") is None
        # No column could hold a password.
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'signed_in_desktops'"
        )
        assert {c["column_name"] for c in columns} == {
            "login",
            "desktop",
            "signed_in_at",
            "source",
            "revoked",
        }


async def test_prompts_and_answers_round_trip(pool):
    job_id = uuid.uuid4()
    prompt = Prompt(job_id, "bob", "a.pdf", now() + timedelta(minutes=5))
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        assert await store.add_prompt(prompt) is True
        assert await store.add_prompt(prompt) is False
        loaded = await store.prompt(job_id)
        assert loaded == prompt
        loaded.close()
        await store.save_prompt(loaded)
        assert (await store.prompt(job_id)).state == "closed"
        assert await store.prompt(uuid.uuid4()) is None

        await store.add_answer(Answer("cmd-1", job_id, "bob", "print"))
        answer = await store.waiting_answer("cmd-1")
        assert answer == Answer("cmd-1", job_id, "bob", "print")
        answer.settle("authorized")
        await store.save_answer(answer)
        assert await store.waiting_answer("cmd-1") is None
        await store.record_delivery("bob", "job_prompt", job_id)
        assert await conn.fetchval("SELECT kind FROM deliveries WHERE job_id = $1", job_id) == (
            "job_prompt"
        )


async def test_a_removed_print_server_stays_until_forgotten(pool):
    async with pool.acquire() as conn:
        store = Store(conn)
        await store.save_print_server(PrintServerIdentity("ps1", "u1"))
        await store.save_print_server(PrintServerIdentity("ps2", "u2"))
        server = await store.print_server("ps1")
        server.remove()
        await store.save_print_server(server)
        assert (await store.print_server("ps1")).removed
        assert [r["name"] for r in await store.print_server_list()] == ["ps2"]
        assert [s.name for s in await store.print_servers()] == ["ps1", "ps2"]
        await store.forget_print_server("ps2")  # not removed: kept
        await store.forget_print_server("ps1")
        assert await store.print_server("ps1") is None
        # Issued again after a removal, it is a print server again.
        await store.save_print_server(PrintServerIdentity("ps2", "u2b"))
        assert await store.print_server("ps2") == PrintServerIdentity("ps2", "u2b")


async def outbox(pool, message_type):
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM outbox WHERE message_type = $1 ORDER BY id", message_type
        )
    return [(r, decode(r["message_type"], r["schema_version"], r["body"])) for r in rows]


async def test_the_prompt_flow_through_the_store(pool):
    async with pool.acquire() as conn:
        await Store(conn).add_desktop_identity("bob")
    event = JobInputRequired(
        job_id=uuid.uuid4(),
        user="bob",
        printer="lab-1",
        document_name="a.pdf",
        sides=1,
        copies=1,
        cost="0.10",
        kind="confirm",
        accounts=[],
        allow_pin=False,
        expires_at=now() + timedelta(minutes=5),
    )
    await apply_in_transaction(pool, "notification", prompts.on_input_required, event, store=Store)
    [(row, prompt)] = await outbox(pool, "desktop.job_prompt")
    assert row["routing_key"] == "user.bob.job_prompt" and prompt.job_id == event.job_id

    reply = JobAnswer(job_id=event.job_id, user="bob", action="print")

    # The routing key comes from the broker in production; here it is what bob's desktop uses.
    async def from_bob(ctx, message):
        ctx.routing_key = "user.bob.answer"
        return await prompts.on_answer(ctx, message)

    await apply_in_transaction(pool, "notification", from_bob, reply, user_id="bob", store=Store)
    [(command_row, command)] = await outbox(pool, "ledger.job.answer")
    assert command.job_id == event.job_id and command_row["reply_to"] == "notification.answers"

    async def ledger_replied(ctx, message):
        # The ledger's reply is correlated by the id of the command it answers.
        ctx.envelope = dataclasses.replace(ctx.envelope, correlation_id=command_row["message_id"])
        return await prompts.on_outcome(ctx, message)

    outcome = AnswerOutcome(job_id=event.job_id, outcome="authorized", amount="0.10")
    await apply_in_transaction(pool, "notification", ledger_replied, outcome, store=Store)
    [(_, result)] = await outbox(pool, "desktop.answer_result")
    assert result.outcome == "authorized"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT outcome FROM answers") == "authorized"


async def test_a_prompt_keeps_the_marks_of_its_job(pool):
    marked = Prompt(
        uuid.uuid4(), "bob", "a.pdf", now() + timedelta(minutes=5), marks={"identity": "trusted"}
    )
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        await store.add_prompt(marked)
        assert (await store.prompt(marked.job_id)).marks == {"identity": "trusted"}


async def test_pruning_keeps_answerable_prompts_and_answers_still_waiting(pool):
    soon, long_ago = now() + timedelta(minutes=5), now() - timedelta(days=200)
    open_, closed, expired = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        await store.add_prompt(Prompt(open_, "bob", "a.pdf", soon))
        await store.add_prompt(Prompt(closed, "bob", "b.pdf", soon))
        await store.save_prompt(Prompt(closed, "bob", "b.pdf", soon, state="closed"))
        await store.add_prompt(Prompt(expired, "bob", "c.pdf", long_ago))  # never closed
        await store.add_answer(Answer("waiting", open_, "bob", "print"))
        await store.add_answer(Answer("replied", closed, "bob", "print"))
        await store.save_answer(Answer("replied", closed, "bob", "print", outcome="authorized"))
        await store.record_delivery("bob", "job_prompt", open_)
    async with pool.acquire() as conn:
        pruned = await Store(conn).prune(datetime.now(UTC) + timedelta(seconds=1))
        assert pruned == {"deliveries": 1, "answers": 1, "prompts": 2, "mail_outbox": 0}
        assert [r["job_id"] for r in await conn.fetch("SELECT job_id FROM prompts")] == [open_]
        assert await conn.fetchval("SELECT command_id FROM answers") == "waiting"
