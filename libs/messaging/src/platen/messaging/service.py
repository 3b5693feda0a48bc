"""The composition root shared by the four services: one FastStream app per service.

A service describes itself with a `ServiceSpec` (name, schema, migrations, and the
`Subscriptions` its handlers declare themselves in); `build_app` wires the database pool,
migrations, topology, outbox relay and one subscriber per queue, each on its own channel
so that a publishing error can never close the channel its deliveries are acknowledged on.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from faststream import AckPolicy, FastStream
from faststream.message import StreamMessage
from faststream.rabbit import QueueType, RabbitBroker, RabbitQueue
from faststream.rabbit.schemas import Channel

from platen.db import apply_migrations, connect_with_retry, load_migrations
from platen.db.roles import provision
from platen.events.discovery import signed_in_as
from platen.events.system import (
    DeadLettersListed,
    DeadLettersReplayed,
    ListDeadLetters,
    Ping,
    Pong,
    ReplayDeadLetters,
)
from platen.messaging import dead_letters, failover
from platen.messaging.batching import Batcher
from platen.messaging.handling import Dispatcher, Handler, HandlerContext, StoreFactory
from platen.messaging.logs import configure_logging
from platen.messaging.outbox import OutboxRelay
from platen.messaging.outbox import backlog as outbox_backlog
from platen.messaging.publisher import Publisher
from platen.messaging.senders import SenderCheck
from platen.messaging.settings import Settings, setting
from platen.messaging.subscriptions import COMMAND_QUEUE, Subscriptions
from platen.messaging.topology import consumer_queues, declare_topology
from platen.operations import retention
from platen.operations.metrics import Check, Metrics, MetricsServer, run_checks

log = structlog.get_logger(__name__)

MESSAGING_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class ServiceSpec:
    name: str
    schema: str
    migrations: Path
    # What the service receives (declared on its handlers) and publishes.
    subscriptions: Subscriptions
    # Called once the pool is ready, e.g. to start a background task of the service.
    on_ready: list[Callable[[Runtime], object]] = field(default_factory=list)
    # Makes the service's store over a delivery's transaction: handlers reach it as
    # `ctx.store`, and service-layer tests hand them a fake one instead.
    store: StoreFactory | None = None
    # Called once the pool is ready to add the service's own metrics to `rt.metrics` (its
    # gauges, and `rt.metrics.on_scrape` samplers that read them from its database).
    metrics: list[Callable[[Runtime], object]] = field(default_factory=list)
    # The service's own settings, which its modules read when they use them (not at
    # import): each is read once at start as well, so that a value that does not parse
    # stops the service with its error instead of failing every message that needs it.
    settings: list[Callable[[], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.subscriptions.service != self.name:
            raise ValueError(f"{self.name}'s spec has {self.subscriptions.service}'s subscriptions")


@dataclass
class Runtime:
    spec: ServiceSpec
    settings: Settings
    pool: asyncpg.Pool | None = None
    publisher: Publisher | None = None
    relay: OutboxRelay | None = None
    dispatchers: dict[str, Dispatcher] = field(default_factory=dict)
    # In front of the dispatchers of the queues handled in batches.
    batchers: dict[str, Batcher] = field(default_factory=dict)
    tasks: list[asyncio.Task] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    metrics_server: MetricsServer | None = None
    # The FastStream broker whose subscribers consume the service's queues.
    broker: RabbitBroker | None = None

    @property
    def instance(self) -> str:
        """This process, as `platenctl status` names it among a service's replicas."""
        return f"{socket.gethostname()}:{os.getpid()}"


def _version() -> str:
    try:
        return importlib.metadata.version("platen-messaging")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


async def _declare_with_retry(url: str, service: ServiceSpec, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await failover.connect(url)
            async with connection:
                await declare_topology(await connection.channel(), service, signed_in_as(url))
            return
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("broker not reachable, retrying", error=repr(exc))
            await asyncio.sleep(1.0)


def queue_handlers(
    spec: ServiceSpec, purpose: str, rt: Runtime | None = None
) -> dict[type, Handler]:
    """The handlers of one of the service's queues: its own, and on its commands queue the
    `Ping` every service answers. (The AsyncAPI document is made from these too.)"""
    handlers = spec.subscriptions.handlers(purpose)
    if purpose == COMMAND_QUEUE:
        handlers.setdefault(Ping, _ping_handler(spec.name, rt))
        list_letters, replay_letters = _dead_letter_handlers(spec.name)
        handlers.setdefault(ListDeadLetters, list_letters)
        handlers.setdefault(ReplayDeadLetters, replay_letters)
    return handlers


def _ping_handler(service: str, rt: Runtime | None = None) -> Handler:
    async def ping(ctx: HandlerContext, msg: Ping) -> Pong:
        waiting, oldest, refused = await outbox_backlog(ctx.conn)
        server = rt.metrics_server if rt else None
        return Pong(
            service=service,
            version=_version(),
            outbox_waiting=waiting,
            outbox_oldest_seconds=oldest,
            outbox_refused=refused,
            instance=rt.instance if rt else "",
            metrics_url=server.url if server else None,
            # Answered inside a transaction, so the database answers: the other checks
            # only (not a second pool connection, which a busy service may lack).
            unready=await run_checks({k: v for k, v in server.checks.items() if k != "database"})
            if server
            else {},
        )

    return ping


def _dead_letter_handlers(service: str) -> tuple[Handler, Handler]:
    """What every service answers about its own dead-letter queues (`platenctl dlq`)."""

    async def list_letters(ctx: HandlerContext, msg: ListDeadLetters) -> DeadLettersListed:
        letters, more = await dead_letters.peek(ctx.publisher.channel, service, msg.limit)
        return DeadLettersListed(letters=letters, more=more)

    async def replay_letters(ctx: HandlerContext, cmd: ReplayDeadLetters) -> DeadLettersReplayed:
        replayed = await dead_letters.replay(
            ctx.publisher.channel,
            ctx.publisher,
            service,
            set(cmd.message_ids),
            own_user=ctx.publisher.user,
        )
        ctx.log.info("dead letters replayed", count=len(replayed), message_ids=replayed)
        return DeadLettersReplayed(replayed=replayed)

    return list_letters, replay_letters


def build_app(spec: ServiceSpec, settings: Settings) -> tuple[FastStream, Runtime]:
    broker = RabbitBroker(
        failover.first_node(settings.amqp_url),
        logger=None,
        app_id=spec.name,
        graceful_timeout=10,
        fail_fast=failover.fail_fast(settings.amqp_url),
        # No dependency injection: each subscriber takes the delivery itself (`_delivery`)
        # and hands it to the dispatcher. With injection on, FastStream resolved the
        # `RabbitMessage` argument of every delivery in a worker thread (fast_depends runs
        # a context field's synchronous getter through anyio's thread pool): a thread hop
        # and a task group per message, about a tenth of a service's busy time under load.
        apply_types=False,
    )
    # FastStream takes one URL: its robust connection is made of the class that moves on
    # to the next node of a cluster when its node goes (FastStream hands these keywords to
    # aio_pika.connect_robust, which has no other way in).
    broker._connection_kwargs["connection_class"] = failover.failover_class(settings.amqp_url)
    app = FastStream(broker, logger=None)
    rt = Runtime(spec, settings, metrics=Metrics(spec.name), broker=broker)

    batches = batch_sizes(spec, settings)
    for queue in consumer_queues(spec):
        handlers = queue_handlers(spec, queue.name.split(".", 1)[1], rt)
        rt.dispatchers[queue.name] = handlers  # type: ignore[assignment]  # filled at start-up
        _subscribe(broker, rt, queue.name, batches.get(queue.name, settings.prefetch))

    @app.on_startup
    async def startup() -> None:
        configure_logging(spec.name, settings.log_level)
        await _declare_with_retry(settings.amqp_url, spec)
        rt.pool = await connect_with_retry(settings.database_url, spec.schema, max_size=10)
        async with rt.pool.acquire() as conn:
            await apply_migrations(
                conn,
                spec.schema,
                load_migrations("messaging", MESSAGING_MIGRATIONS)
                + load_migrations(spec.name, spec.migrations),
            )
        rt.publisher = Publisher(settings.amqp_url, spec.name)
        await rt.publisher.connect()
        own_user = signed_in_as(settings.amqp_url)
        # What this service sends carries its broker user as `user_id` (which the broker
        # checks), so that a consumer can tell it from anyone else's.
        rt.relay = OutboxRelay(
            rt.pool,
            rt.publisher,
            spec.name,
            user_id=own_user,
            max_backoff=settings.outbox_max_backoff,
            metrics=rt.metrics,
        )
        senders = SenderCheck(spec.name, own_user)
        if not senders.active:
            log.warning(
                "not signed in as this service's own broker identity: commands are not "
                "checked by sender (every part shares one identity)",
                user=own_user,
            )
        for name, handlers in list(rt.dispatchers.items()):
            rt.dispatchers[name] = Dispatcher(
                queue=name,
                producer=spec.name,
                pool=rt.pool,
                publisher=rt.publisher,
                relay=rt.relay,
                handlers=handlers,  # type: ignore[arg-type]
                store=spec.store,
                subscriptions=spec.subscriptions,
                queries=spec.subscriptions.queries | {Ping},
                without_database=(ListDeadLetters, ReplayDeadLetters),
                senders=senders,
                metrics=rt.metrics,
            )
        for name, size in batches.items():
            rt.batchers[name] = Batcher(rt.dispatchers[name], size=size)
            background(rt, rt.batchers[name].run(), f"batches:{name}")
        background(rt, rt.relay.run(), "outbox-relay")
        background(
            rt,
            retention.run(
                rt.pool,
                spec.store,
                inbox=settings.inbox_retention,
                history=settings.history_retention,
                interval=settings.prune_interval,
            ),
            "retention",
        )
        for hook in spec.on_ready:
            result = hook(rt)
            if asyncio.iscoroutine(result):
                await result
        await _serve_metrics(rt)
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
        log.info("service started", queues=list(rt.dispatchers), event_loop=loop)

    @app.after_shutdown
    async def shutdown() -> None:
        if rt.metrics_server:
            rt.metrics_server.stop()
        for task in rt.tasks:
            task.cancel()
        await asyncio.gather(*rt.tasks, return_exceptions=True)
        if rt.publisher:
            await rt.publisher.close()
        if rt.pool:
            await rt.pool.close()
        log.info("service stopped")

    return app, rt


async def _serve_metrics(rt: Runtime) -> None:
    """Add the outbox's and the service's own metrics, and serve them with its health."""
    pool = rt.pool
    assert pool is not None

    async def outbox() -> None:
        async with pool.acquire() as conn:
            rt.metrics.outbox_backlog(*await outbox_backlog(conn))

    rt.metrics.on_scrape(outbox)
    for hook in rt.spec.metrics:
        result = hook(rt)
        if asyncio.iscoroutine(result):
            await result
    rt.metrics_server = MetricsServer(
        rt.metrics, readiness_checks(rt), rt.settings.metrics_host, rt.settings.metrics_port
    )
    rt.metrics_server.start()


def background(rt: Runtime, work: Coroutine[Any, Any, object], name: str) -> asyncio.Task:
    """Run `work` for the life of the service. These loops retry every failure themselves
    and end only when the service stops; one that ends otherwise (a bug, an error they do
    not expect) is logged at once, and the service reports itself not ready from then on,
    so an orchestrator restarts it instead of it running on without, say, its outbox
    relay, with every message it commits left unsent."""

    def ended(task: asyncio.Task) -> None:
        if task.cancelled():
            return
        log.error("background task ended", task=name, error=repr(task.exception()))

    task = asyncio.create_task(work, name=name)
    task.add_done_callback(ended)
    rt.tasks.append(task)
    return task


def readiness_checks(rt: Runtime) -> dict[str, Check]:
    """What `/health/ready` asks: the broker connections open (the subscribers' and the
    publisher's), the database answering, every queue of the service consumed, and every
    background loop (the outbox relay, retention) still running."""

    async def broker() -> str | None:
        if rt.broker is None or not await rt.broker.ping(timeout=1):
            return "the subscribers' broker connection is not open"
        if rt.publisher is None or not rt.publisher.connected:
            return "the publisher's broker connection is not open"
        return None

    async def database() -> str | None:
        if rt.pool is None:
            return "no database pool yet"
        async with rt.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return None

    async def consumers() -> str | None:
        missing = sorted(set(rt.dispatchers) - _consuming(rt))
        return f"not consuming {', '.join(missing)}" if missing else None

    async def tasks() -> str | None:
        ended = [t.get_name() for t in rt.tasks if t.done()]
        return f"background task ended: {', '.join(ended)}" if ended else None

    return {"broker": broker, "database": database, "consumers": consumers, "tasks": tasks}


def _consuming(rt: Runtime) -> set[str]:
    """The queues this process's subscribers consume now. FastStream keeps a subscriber's
    queue and consumer tag on it (`_queue_obj`, `_consumer_tag`); its channel closes with the
    connection and is opened again, with the consumer, when the robust connection is back."""
    found = set()
    for sub in rt.broker.subscribers if rt.broker else []:
        queue = getattr(sub, "_queue_obj", None)
        if queue is None or getattr(sub, "_consumer_tag", None) is None:
            continue
        try:
            if queue.channel.is_closed:
                continue
        except Exception:  # aio-pika: no channel at all while reconnecting
            continue
        found.add(queue.name)
    return found


async def migrate(spec: ServiceSpec, admin_dsn: str, password: str) -> str:
    """Apply the service's migrations as its schema's owner and give its own role (with
    `password`) its rows; returns that role's name."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        migrations = load_migrations("messaging", MESSAGING_MIGRATIONS) + load_migrations(
            spec.name, spec.migrations
        )
        return (await provision(conn, spec.schema, migrations, password.strip())).runtime
    finally:
        await conn.close()


async def _delivery(message: StreamMessage[AbstractIncomingMessage]) -> AbstractIncomingMessage:
    """The subscribers' decoder: the aio-pika delivery as it came, for the dispatcher, which
    reads the body by its type and version itself (`handling.decode_delivery`)."""
    return message.raw_message


def _subscribe(broker: RabbitBroker, rt: Runtime, queue: str, prefetch: int) -> None:
    @broker.subscriber(
        RabbitQueue(queue, declare=False, queue_type=QueueType.QUORUM),
        ack_policy=AckPolicy.MANUAL,
        no_reply=True,
        channel=Channel(prefetch_count=prefetch),
        decoder=_delivery,
        title=queue,
    )
    async def on_message(raw: AbstractIncomingMessage) -> None:
        handle = rt.batchers.get(queue) or rt.dispatchers[queue]
        await handle(raw)


def batch_sizes(spec: ServiceSpec, settings: Settings) -> dict[str, int]:
    """The service's queues handled in batches, with the most deliveries a batch takes:
    those it declares batched, unless batching is turned off (PLATEN_BATCH=0). The size is
    PLATEN_BATCH_SIZE, else the service's own (`Subscriptions.batch_size`), else the
    prefetch; the queue's prefetch is its batch size, so that a full batch can be ready."""
    if not settings.batch:
        return {}
    size = settings.batch_size or spec.subscriptions.batch_size or settings.prefetch
    return {
        q.name: size
        for q in consumer_queues(spec)
        if q.name.split(".", 1)[1] in spec.subscriptions.batched
    }


def run_service(spec: ServiceSpec) -> None:
    if sys.argv[1:] == ["migrate"]:  # the installer's step, as a superuser (platen.db.roles)
        print(asyncio.run(migrate(spec, os.environ["PLATEN_DATABASE_URL"], sys.stdin.read())))
        return
    settings = Settings.from_env()
    for read in spec.settings:
        read()
    app, _ = build_app(spec, settings)
    # What start-up made (the modules' objects: some 70,000 in each service) lives as long
    # as the process; moved out of the collector's reach, a full collection, when one
    # comes, walks only what the service made since. Walking them all was a pause of 50
    # to 80 ms, on every job then in flight: once in the ledger during a burst and once in
    # job-capture during a steady 20 jobs/s, in one benchmark run (bench/README.md).
    gc.freeze()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(app.run())


_event_loop = setting("PLATEN_EVENT_LOOP", str, "uvloop")


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The service's event loop: uvloop's (libuv), unless PLATEN_EVENT_LOOP=asyncio.
    Nearly all of a delivery's work is I/O on two sockets (the broker's, PostgreSQL's)
    and the callbacks around it, which is what uvloop does in C: see bench/README.md for
    what it saves a job. The standard loop stays one setting away, for a platform
    without uvloop or a problem to tell apart from it."""
    choice = _event_loop()
    if choice == "asyncio":
        return asyncio.new_event_loop
    if choice != "uvloop":
        raise SystemExit(f"PLATEN_EVENT_LOOP must be uvloop or asyncio, not {choice!r}")
    import uvloop

    return uvloop.new_event_loop
