"""One desktop cannot load the broker or the notification service for everyone: its
answers beyond a token bucket are dropped (and it is told once), a 50 MB message is
refused by the broker, its 21st connection is refused, and meanwhile another user's
prompt arrives. (How fast that prompt arrives, flood or not: bench/desktop_flood.py.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError

from platen.broker_setup import permissions
from platen.broker_setup.broker_limits import MAX_MESSAGE_BYTES
from platen.events.base import HEADER_VERSION
from platen.events.desktop import AnswerResult, JobAnswer, JobPrompt
from platen.events.registry import encode
from platen.events.routing import DESKTOP_REPLIES, desktop_key
from platen.testing.documents import make_pdf
from tests.e2e.clientproc import desktop_url
from tests.e2e.helpers import submit_jobs

BURST, RATE = 30, 2  # notification's defaults (PLATEN_ANSWER_BURST, PLATEN_ANSWER_RATE)


def reply(login: str, body: bytes) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        type=JobAnswer.message_type,
        message_id=str(uuid.uuid4()),
        headers={HEADER_VERSION: 1},
        timestamp=datetime.now(UTC),
        user_id=login,
    )


async def flood(url: str, login: str, job_id, count: int, per_second: int) -> None:
    """`count` answers to `job_id`, at most `per_second`, on one connection."""
    body = encode(JobAnswer(job_id=job_id, user=login, action="print"))
    conn = await aio_pika.connect(url)
    async with conn:
        exchange = await (await conn.channel()).get_exchange(DESKTOP_REPLIES, ensure=False)
        start = time.monotonic()
        for sent in range(1, count + 1):
            await exchange.publish(reply(login, body), routing_key=desktop_key(login, "answer"))
            await asyncio.sleep(max(0.0, start + sent / per_second - time.monotonic()))


async def prompted(system, login: str, job) -> None:
    await system.desktop_messages(
        login, until=lambda m: isinstance(m, JobPrompt) and m.job_id == job, timeout=60
    )


@pytest.mark.service_env(PLATEN_ANSWER_BURST=str(BURST), PLATEN_ANSWER_RATE=str(RATE))
async def test_a_flooding_desktop_is_limited_and_another_users_prompt_arrives(system, desktops):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    for login in ("alice", "mallory"):
        system.ctl("user", "add", login, "--balance", "5.00")
        system.ctl("user", "set", login, "--selection", "confirm")
    alice, mallory = desktop_url(desktops("alice")), desktop_url(desktops("mallory"))
    [job_m] = await submit_jobs(system.amqp_url, "mallory", "lab-1", make_pdf(1), 1)
    await prompted(system, "mallory", job_m)

    # 500 answers at up to 100 a second; alice's job is asked about in the middle of it.
    sent = 500
    started = time.monotonic()
    flooding = asyncio.create_task(flood(mallory, "mallory", job_m, sent, 100))
    await asyncio.sleep(1.0)
    [job_a] = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(1), 1)
    await prompted(system, "alice", job_a)
    await flooding

    async def handled() -> tuple[int, int]:
        lines = [ln for ln in system.services.log("notification").splitlines() if "mallory" in ln]
        dropped = sum('"answer dropped"' in ln for ln in lines)
        taken = sum(
            '"answer passed to the ledger"' in ln or '"answer refused"' in ln for ln in lines
        )
        return dropped, taken

    for _ in range(300):  # until notification has handled (or dropped) every answer
        dropped, taken = await handled()
        if dropped + taken >= sent:
            break
        await asyncio.sleep(0.2)
    # Only the burst and the refill got any work done; the rest were dropped, each logged.
    assert taken <= BURST + RATE * (time.monotonic() - started) + 1
    assert dropped == sent - taken
    results = await system.desktop_messages("mallory", timeout=5)
    told = [
        r for r in results if isinstance(r, AnswerResult) and "too many answers" in (r.reason or "")
    ]
    assert len(told) == 1  # told once, not once per dropped answer

    # Alice answers her own job, and it is authorised as usual.
    conn = await aio_pika.connect(alice)
    async with conn:
        ex = await (await conn.channel()).get_exchange(DESKTOP_REPLIES, ensure=False)
        body = encode(JobAnswer(job_id=job_a, user="alice", action="print"))
        await ex.publish(reply("alice", body), routing_key=desktop_key("alice", "answer"))
    got = await system.desktop_messages(
        "alice", until=lambda m: isinstance(m, AnswerResult) and m.job_id == job_a
    )
    assert got[-1].outcome == "authorized"


async def test_a_desktop_message_over_the_brokers_limit_is_refused_by_the_broker(system, desktops):
    system.ctl("user", "add", "mallory", "--balance", "5.00")
    mallory = desktop_url(desktops("mallory"))
    conn = await aio_pika.connect(mallory)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        ex = await channel.get_exchange(DESKTOP_REPLIES, ensure=False)
        huge = reply("mallory", b"x" * 50_000_000)
        assert len(huge.body) > MAX_MESSAGE_BYTES
        with pytest.raises(aio_pika.exceptions.AMQPError) as refused:
            await ex.publish(huge, routing_key=desktop_key("mallory", "answer"))
    assert "max size" in str(refused.value) or "PRECONDITION" in str(refused.value).upper()

    # And every connection of hers past the limit is refused, however many she opens.
    opened, refusals = [], 0
    try:
        for _ in range(100):
            try:
                opened.append(await aio_pika.connect(mallory))
            except (AMQPConnectionError, ConnectionError, InvalidFrameError):
                refusals += 1
        limit = permissions.DESKTOP_MAX_CONNECTIONS
        assert (len(opened), refusals) == (limit, 100 - limit)
    finally:
        for c in opened:
            await c.close()
