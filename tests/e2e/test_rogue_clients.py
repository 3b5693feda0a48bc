"""Rogue desktops against the real broker and services.

Each rogue here is a user who controls their own desktop and writes their own AMQP
program, signed in with the credential `platenctl user credential` issued them. What the
broker itself refuses (reading another user's queue, binding, publishing to the events or
commands exchanges, another user's routing key, a spoofed `user_id`) is in
test_security.py; answers after the deadline and replies under another user's key are in
test_client_json.py. Here: what reaches the services and must be refused there. After
the suite the ledger verifies and no job printed without being paid for.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import aio_pika

from platen.events.base import HEADER_VERSION
from platen.events.desktop import AnswerResult, JobAnswer, JobPrompt
from platen.events.registry import encode
from platen.events.routing import DESKTOP_REPLIES, desktop_key
from platen.testing.documents import make_pdf
from platen.testing.queues import take
from tests.e2e.clientproc import desktop_url
from tests.e2e.helpers import eventually, ledger_problems, submit_jobs, wait_settled


async def send_raw(url: str, login: str, body: bytes, message_type: str, user_id: str) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange(DESKTOP_REPLIES, ensure=False)
        await ex.publish(
            aio_pika.Message(
                body,
                type=message_type,
                message_id=str(uuid.uuid4()),
                headers={HEADER_VERSION: 1},
                timestamp=datetime.now(UTC),
                user_id=user_id,
            ),
            routing_key=desktop_key(login, "answer"),
        )


async def answer(url: str, login: str, job_id, **fields) -> None:
    reply = JobAnswer(job_id=job_id, user=login, **fields)
    await send_raw(url, login, encode(reply), reply.message_type, login)


def results(messages, job_id) -> list[AnswerResult]:
    return [m for m in messages if isinstance(m, AnswerResult) and m.job_id == job_id]


async def next_result(system, login: str, job_id) -> AnswerResult:
    got = await system.desktop_messages(
        login, until=lambda m: isinstance(m, AnswerResult) and m.job_id == job_id
    )
    assert results(got, job_id), f"no answer result for {login}"
    return results(got, job_id)[-1]


async def dead_letters(system, queue: str, n: int, timeout: float = 30) -> list:
    """The first `n` messages dead-lettered from `queue` (taken off its DLQ)."""
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        q = await (await conn.channel()).get_queue(f"{queue}.dlq")
        found = await take(q, n, timeout)
    assert len(found) == n, f"{len(found)} of {n} replies dead-lettered"
    return found


async def test_rogue_answers_are_refused_logged_and_nothing_prints_free(system, desktops):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    for login in ("alice", "mallory"):
        system.ctl("user", "add", login, "--balance", "5.00")
        system.ctl("user", "set", login, "--selection", "choose")
    system.ctl("account", "add", "physics", "--pin", "482913")
    system.ctl("topup", "shared:physics", "10")
    system.ctl("account", "grant", "physics", "--user", "alice")
    alice, mallory = desktop_url(desktops("alice")), desktop_url(desktops("mallory"))
    [job_a] = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(1), 1)
    [job_m] = await submit_jobs(system.amqp_url, "mallory", "lab-1", make_pdf(1), 1)
    for login, job in (("alice", job_a), ("mallory", job_m)):
        await system.desktop_messages(
            login, until=lambda m, job=job: isinstance(m, JobPrompt) and m.job_id == job
        )

    # Answer another user's job, as herself.
    await answer(mallory, "mallory", job_a, action="print")
    assert "someone else" in (await next_result(system, "mallory", job_a)).reason

    # Charge a shared account she has no access to.
    await answer(mallory, "mallory", job_m, action="print", account="shared:physics")
    refused = await next_result(system, "mallory", job_m)
    assert refused.outcome == "refused" and "may not charge" in refused.reason

    # Guess its PIN: five wrong guesses lock PIN entry, and then even the right one fails.
    for guess in ("000000", "111111", "123456", "999999", "482910"):
        await answer(mallory, "mallory", job_m, action="print", account="physics", pin=guess)
        assert "wrong PIN" in (await next_result(system, "mallory", job_m)).reason
    await answer(mallory, "mallory", job_m, action="print", account="physics", pin="482913")
    assert "too many wrong PINs" in (await next_result(system, "mallory", job_m)).reason

    # Claim a price of her own, send garbage, an unknown kind of reply, a huge one: none is
    # a valid reply, each is dead-lettered with its reason and changes nothing.
    priced = json.loads(encode(JobAnswer(job_id=job_m, user="mallory", action="print")))
    await send_raw(
        mallory,
        "mallory",
        json.dumps({**priced, "cost": "0.00"}).encode(),
        "desktop.job_answer",
        "mallory",
    )
    await send_raw(mallory, "mallory", b"\x00{not json", "desktop.job_answer", "mallory")
    await send_raw(mallory, "mallory", b"{}", "desktop.print_for_free", "mallory")
    await send_raw(
        mallory, "mallory", b'{"pad": "' + b"x" * 2_000_000 + b'"}', "desktop.job_answer", "mallory"
    )
    dead = await dead_letters(system, "notification.replies", 4)
    reasons = " | ".join(str(r.headers.get("platen-error")) for r in dead)
    assert "cost" in reasons  # an extra field is refused, not ignored
    assert "not JSON" in reasons and "desktop.print_for_free" in reasons

    # Answer her own job twice: the second is refused.
    await answer(alice, "alice", job_a, action="print")
    assert (await next_result(system, "alice", job_a)).outcome == "authorized"
    await answer(alice, "alice", job_a, action="print", account="physics", pin="482913")
    again = await next_result(system, "alice", job_a)
    assert again.outcome == "refused" and "no longer waiting" in again.reason

    # Each refusal is in the notification service's log, with its reason.
    log = system.services.log("notification") + system.services.log("account-ledger")
    for reason in ("someone else", "may not charge", "wrong PIN", "too many wrong PINs"):
        assert reason in log, reason
    assert log.count("message dead-lettered") >= 4

    # Nothing printed free: alice's job printed at the server's price, on her account;
    # mallory's job is still waiting, unpaid; the physics account was never touched.
    await answer(mallory, "mallory", job_m, action="cancel")
    assert (await next_result(system, "mallory", job_m)).outcome == "cancelled"

    # Each is the last step of its path: job-capture cancels mallory's job when it takes
    # the ledger's `job.cancelled` (the answer result went to her by another way), and
    # the ledger charges alice's after job-capture has recorded it printed.
    async def final() -> bool:
        states = {j["job_id"]: j["state"] for j in json.loads(system.ctl("jobs", "--json").stdout)}
        return (states.get(str(job_a)), states.get(str(job_m))) == ("printed", "cancelled")

    await eventually(final, timeout=30)
    await wait_settled(system, job_a)
    jobs = {j["job_id"]: j for j in json.loads(system.ctl("jobs", "--json").stdout)}
    assert (jobs[str(job_a)]["state"], jobs[str(job_a)]["cost"]) == ("printed", "0.10")
    assert jobs[str(job_m)]["state"] == "cancelled"
    assert D(system.user_json("alice")["balance"]) == D("4.90")
    assert D(system.user_json("mallory")["balance"]) == D("5.00")
    physics = json.loads(system.ctl("account", "show", "physics", "--json").stdout)
    assert D(physics["balance"]) == D("10.00")
    assert "ledger OK" in system.ctl("ledger", "verify").stdout
    assert await ledger_problems(system.database_url) == []
