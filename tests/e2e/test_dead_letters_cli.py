"""`platenctl dlq`: an administrator sees what a service dead-lettered, and why, and puts
it back to be handled again; against the four services as processes."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from decimal import Decimal as D

import aio_pika

from platen.events.jobs import SubmitJob
from platen.events.routing import COMMANDS
from platen.messaging.senders import FIRST_SENDER
from platen.rpc.client import signed_in_as
from platen.testing.documents import make_pdf
from tests.e2e.helpers import command, eventually, submit_jobs


async def _dead_letters(system, service: str) -> list[dict]:
    out = await asyncio.to_thread(system.ctl, "dlq", "list", "--service", service, "--json")
    return json.loads(out.stdout)[service]


async def _until_listed(system, service: str, message_id: str, timeout: float = 30) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = [d for d in await _dead_letters(system, service) if d["message_id"] == message_id]
        if found:
            return found[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"{message_id} never listed in {service}'s dead letters")


async def test_dead_letters_are_listed_and_replayed_with_platenctl(system):
    system.wait_ready()
    job_id = str(uuid.uuid4())
    message_id = f"bad-{uuid.uuid4()}"
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        await ch.default_exchange.publish(
            aio_pika.Message(
                b"{not json",
                type="job.priced",
                message_id=message_id,
                correlation_id=job_id,
                headers={"platen-schema-version": 2},
            ),
            routing_key="account-ledger.events",
        )

    letter = await _until_listed(system, "account-ledger", message_id)
    assert letter["queue"] == "account-ledger.events"
    assert letter["message_type"] == "job.priced"
    assert letter["correlation_id"] == job_id
    assert "not JSON" in letter["reason"]
    text = system.ctl("dlq", "list").stdout
    assert message_id in text and "account-ledger" in text

    # Replayed, the ledger handles it again; still not JSON, it is dead-lettered again,
    # with the same reason, and nothing else happened to it.
    out = system.ctl("dlq", "replay", "account-ledger", message_id)
    assert "replayed 1" in out.stdout and message_id in out.stdout
    again = await _until_listed(system, "account-ledger", message_id)
    assert "not JSON" in again["reason"]
    assert len([d for d in await _dead_letters(system, "account-ledger")]) == 1

    unknown = system.ctl("dlq", "replay", "account-ledger", "no-such-message", check=False)
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    neither = system.ctl("dlq", "replay", "pricing", check=False)
    assert neither.returncode == 1 and "--all" in neither.stderr


async def _return_until_dead_lettered(amqp_url: str, queue: str, count: int) -> None:
    """Take each message off `queue` and give it back, again and again, as consumers that
    crash holding it do, until the broker has dead-lettered `count` of them at the queue's
    delivery limit (the messages themselves are sound)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.get_queue(queue, ensure=False)
        while loop.time() < deadline:
            dlq = await ch.declare_queue(f"{queue}.dlq", passive=True)
            if dlq.declaration_result.message_count >= count:
                return
            # A quorum queue takes a returned message back through its log: a moment
            # may pass before it can be taken again.
            raw = await q.get(no_ack=False, fail=False, timeout=30)
            if raw is None:
                await asyncio.sleep(0.1)
                continue
            await raw.nack(requeue=True)
    raise AssertionError(f"{queue}: fewer than {count} messages dead-lettered in 120 s")


async def test_a_sound_command_dead_lettered_by_crashes_is_replayed_as_from_its_sender(system):
    """Consumers that die holding a command return it to its queue each time, and each
    return counts toward the delivery limit: a sound `capture.submit` can be dead-lettered.
    Replayed, it is accepted as from its first sender (the broker proved who that was),
    while a sender that wrote itself a grander name in the header is still itself."""
    system.wait_ready()
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "bob", "--balance", "5.00")
    system.services.stop("job-capture")
    # From the test's administrator: an API job, which an administrator may submit.
    await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(2), 1)
    # From a print server, naming the administrator in the header: a print server submits
    # CUPS jobs only, whatever it writes about itself.
    forged = command(
        SubmitJob(
            job_id=uuid.uuid4(),
            user="bob",
            printer="lab-1",
            document_name="forged.pdf",
            document=base64.b64encode(make_pdf(1)),
        ),
        user_id=signed_in_as(system.print_server_url),
    )
    forged.headers[FIRST_SENDER] = signed_in_as(system.amqp_url)
    conn = await aio_pika.connect(system.print_server_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        ex = await ch.get_exchange(COMMANDS, ensure=False)
        await ex.publish(forged, routing_key="capture.submit", mandatory=True)
    await _return_until_dead_lettered(system.amqp_url, "job-capture.commands", 2)
    system.services.start("job-capture")
    system.wait_ready()
    await _until_listed(system, "job-capture", forged.message_id)
    letters = await _dead_letters(system, "job-capture")
    [submit_letter] = [d for d in letters if d["message_id"] != forged.message_id]
    assert submit_letter["message_type"] == "capture.submit"

    out = system.ctl("dlq", "replay", "job-capture", "--all")
    assert "replayed 2" in out.stdout

    # The sound one is handled as the administrator's job: printed and charged.
    async def charged():
        return D(system.user_json("bob")["balance"]) == D("4.80")

    assert await eventually(charged, timeout=90), submit_letter

    # The forged one is refused as what it is, a print server's (refused requests are
    # answered and logged, not dead-lettered), and charges nothing.
    print_server = signed_in_as(system.print_server_url)

    async def refused():
        return any(
            "request refused" in line
            and "a print server submits CUPS jobs only" in line
            and print_server in line
            for line in system.services.log("job-capture").splitlines()
        )

    assert await eventually(refused, timeout=60)
    assert await _dead_letters(system, "job-capture") == []
    assert D(system.user_json("bob")["balance"]) == D("4.80")
