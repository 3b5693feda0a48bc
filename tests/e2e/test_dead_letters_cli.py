"""`platenctl dlq`: an administrator sees what a service dead-lettered, and why, and puts
it back to be handled again; against the four services as processes."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika


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
