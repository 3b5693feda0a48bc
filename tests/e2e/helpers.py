"""Helpers for end-to-end tests: talk to the system as an integrator or a database reader."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

import aio_pika
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from platen.events.jobs import SubmitJob
from platen.events.registry import decode, encode
from platen.events.routing import COMMANDS, EVENTS
from platen.messaging.codec import HEADER_VERSION
from platen.rpc.client import signed_in_as


def command(msg, **kw) -> aio_pika.Message:
    return aio_pika.Message(
        encode(msg),
        type=msg.message_type,
        message_id=str(uuid.uuid4()),
        headers={HEADER_VERSION: msg.schema_version},
        app_id="test",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=datetime.now(UTC),
        **kw,
    )


async def submit_jobs(
    amqp_url: str,
    user: str,
    printer: str,
    document: bytes,
    n: int,
    deadline_seconds: int | None = None,
) -> list:
    """Publish `n` capture.submit commands (with confirms); returns the job ids."""
    ids = [uuid.uuid4() for _ in range(n)]
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        ex = await ch.get_exchange(COMMANDS)
        await asyncio.gather(
            *(
                ex.publish(
                    command(
                        SubmitJob(
                            job_id=j,
                            user=user,
                            printer=printer,
                            document_name=f"doc-{i}.pdf",
                            document=base64.b64encode(document),
                            deadline_seconds=deadline_seconds,
                        ),
                        # job-capture answers only a sender it can name (the broker
                        # checks the name against the signed-in user).
                        user_id=signed_in_as(amqp_url),
                    ),
                    routing_key="capture.submit",
                    mandatory=True,
                )
                for i, j in enumerate(ids)
            )
        )
    return ids


class EventRecorder:
    """Every event on platen.events, kept as the raw AMQP messages."""

    def __init__(self, amqp_url: str) -> None:
        self.url = amqp_url
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def __aenter__(self) -> EventRecorder:
        self.conn = await aio_pika.connect(self.url)
        ch = await self.conn.channel()
        q = await ch.declare_queue(exclusive=True)
        await q.bind(EVENTS, "#")
        await q.consume(self._on, no_ack=True)
        return self

    async def _on(self, raw) -> None:
        self.messages.append(raw)

    async def __aexit__(self, *exc) -> None:
        await self.conn.close()

    def of_type(
        self, message_type: str, job_id: str | None = None, *, user: str | None = None
    ) -> list:
        """`user`: only the events about that user's jobs (a test on a shared system)."""
        return [
            m
            for m in self.messages
            if m.type == message_type
            and (job_id is None or m.correlation_id == job_id)
            and (user is None or _user_of(m) == user)
        ]

    async def wait_for(
        self,
        message_type: str,
        count: int = 1,
        timeout: float = 30,
        *,
        job_id: str | None = None,
        user: str | None = None,
    ) -> list:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found = self.of_type(message_type, job_id, user=user)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        seen = len(self.of_type(message_type, job_id, user=user))
        raise AssertionError(f"saw {seen} {message_type}, wanted {count}")


def _user_of(raw) -> str | None:
    return getattr(decode(raw.type, raw.headers[HEADER_VERSION], raw.body), "user", None)


async def republish(amqp_url: str, raw) -> None:
    """Send a recorded message again, with the very same properties (a redelivery)."""
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange(EVENTS)
        copy = aio_pika.Message(
            raw.body,
            type=raw.type,
            message_id=raw.message_id,
            headers=dict(raw.headers),
            correlation_id=raw.correlation_id,
            app_id=raw.app_id,
            timestamp=raw.timestamp,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await ex.publish(copy, routing_key=raw.routing_key)


async def query(database_url: str, sql: str, *args):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def terminate_database_connections(database_url: str, rounds: int) -> int:
    """Cut every connection to the test database, `rounds` times half a second apart (as a
    restarting server would); how many were cut in all."""
    database = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(database_url)
    try:
        killed = 0
        for _ in range(rounds):
            killed += await admin.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                "pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) t",
                database,
            )
            await asyncio.sleep(0.5)
        return killed
    finally:
        await admin.close()


async def ledger_problems(database_url: str) -> list[str]:
    """The ledger's own invariant check, run on its schema."""
    from platen.account_ledger.store import verify

    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ledger"})
    try:
        return await verify(conn)
    finally:
        await conn.close()


async def eventually(predicate, timeout: float = 30, interval: float = 0.2):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await predicate()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(interval)


async def wait_settled(system, job, timeout: float = 60) -> None:
    """Until the ledger has settled `job` (its hold posted, charged if it cost anything).

    The last step of a printed job: job-capture records it printed (CUPS shows it
    completed) and sends `job.printed`, which the ledger takes later, in its own
    transaction. A test that saw the job printed and reads a balance at once raced it."""
    await wait_hold(system, job, "posted", timeout)


async def wait_hold(system, job, state: str, timeout: float = 60) -> None:
    """Until the ledger's hold for `job` is in `state`: "posted" (settled) or "voided"
    (released, after job-capture's `job.failed` or `job.cancelled`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows = await query(
            system.database_url,
            "SELECT state FROM ledger.holds WHERE job_id = $1",
            uuid.UUID(str(job)),
        )
        now = rows[0]["state"] if rows else None
        if now == state:
            return
        assert loop.time() < deadline, f"the hold of job {job} is {now}, not {state}"
        await asyncio.sleep(0.2)


def metrics_addresses(system) -> dict[str, str]:
    """Each service's metrics and health address, as `platenctl status --json` gives it."""
    status = json.loads(system.ctl("status", "--json", "--timeout", "60").stdout)
    return {name: s["metrics_url"] for name, s in status.items()}


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def http_get(url: str) -> tuple[int, bytes]:
    """GET `url`: its status and body (an error status too), off the test's loop."""
    return await asyncio.to_thread(_get, url)


async def scrape(address: str) -> dict[tuple[str, frozenset], float]:
    """A service's /metrics, by series name and labels."""
    status, body = await http_get(f"{address}/metrics")
    assert status == 200, body[:300]
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def handled(series: dict[tuple[str, frozenset], float], message_type: str) -> float:
    """Deliveries of `message_type` handled, over all of the service's queues."""
    return sum(
        value
        for (name, labels), value in series.items()
        if name == "platen_messages_handled_total" and ("type", message_type) in labels
    )


def find(widget, name: str):
    """The Tk widget named `name` anywhere under `widget` (None if there is none)."""
    for child in widget.winfo_children():
        if child.winfo_name() == name:
            return child
        if (found := find(child, name)) is not None:
            return found
    return None
