"""A service's Prometheus metrics and its health, served over HTTP.

`Metrics` holds one process's counters (what its Dispatchers and outbox relay did) in a
registry of its own; the service adds its own gauges to it through its ServiceSpec
(`ServiceSpec.metrics`). `MetricsServer` serves, on an address of its own:

- `/metrics`: the registry in Prometheus' text format. Values that live in the database
  (the outbox's depth and oldest age, a service's waiting jobs) are read when scraped, by
  the samplers registered with `on_scrape`, on the service's own event loop.
- `/health/live`: 200 when the service's event loop answers, 503 when it does not.
- `/health/ready`: 200 when every readiness check passes (broker connection open, database
  answering, consumers subscribed), else 503; the JSON body names what failed.

HTTP is served by the standard library's WSGI server (wsgiref) in a thread of its own, so a
scrape still gets an answer (a 503) when the event loop is stuck; what it needs from the
service it asks the loop for, with a deadline.

Labels are bounded by design: a queue is one of the service's own, a message type one
the contract knows (anything else, which a desktop could choose freely, counts as
`unknown`). No label ever holds a user, a login, an account or a secret.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from platen.events.registry import known_types

log = structlog.get_logger(__name__)

# Seconds a handler took, from decoding to the ack: most are milliseconds; a document's
# analysis or a held delivery through a database outage reach the top buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# How long a scrape or a health check waits for the event loop.
LOOP_DEADLINE = 5.0

Check = Callable[[], Awaitable[str | None]]  # None: passed; else why it failed


def message_label(message_type: str | None) -> str:
    """The message type as a label: only types of the contract, so that a sender cannot
    make up new series (one per made-up type) on the service's metrics."""
    if message_type and message_type in known_types():
        return message_type
    return "unknown"


class Metrics:
    """One service process's metrics. Everything it records is cheap (a dict lookup and an
    addition) and never fails the delivery it is about."""

    def __init__(self, service: str = "") -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        by_message = ("queue", "type")
        self.handled = counter(
            "platen_messages_handled",
            "Deliveries handled and acknowledged (duplicates skipped by the inbox included).",
            by_message,
        )
        self.failed = counter(
            "platen_messages_failed",
            "Deliveries that failed with an error and were returned to the queue (or, on "
            "their last allowed delivery, dead-lettered).",
            by_message,
        )
        self.dead_lettered = counter(
            "platen_messages_dead_lettered",
            "Deliveries this service put into its dead-letter queues, with the reason.",
            by_message,
        )
        self.dropped = counter(
            "platen_messages_dropped",
            "Deliveries turned away before any work (a desktop over its answer rate).",
            by_message,
        )
        self.held = gauge(
            "platen_messages_held",
            "Deliveries held while the database is unreachable (never returned for an outage).",
            ("queue",),
        )
        self.latency = Histogram(
            "platen_handler_seconds",
            "Seconds from a delivery's arrival to its acknowledgement, for handled deliveries.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.published = counter(
            "platen_outbox_published",
            "Outbox rows published by this process's relay (with a broker confirm).",
        )
        self.refusals = counter(
            "platen_outbox_refusals",
            "Publishes of outbox rows the broker refused (unroutable, no such exchange, no "
            "right); each counts one attempt of its row.",
        )
        self.outbox_waiting = gauge(
            "platen_outbox_waiting",
            "Outbox rows committed and not yet published (the service's whole table).",
        )
        self.outbox_oldest = gauge(
            "platen_outbox_oldest_seconds",
            "Age in seconds of the oldest unpublished outbox row (0 when none).",
        )
        self.outbox_refused = gauge(
            "platen_outbox_refused",
            "Outbox rows refused by the broker too often: left for an administrator.",
        )
        self._samplers: list[Callable[[], Awaitable[object]]] = []
        # The oldest row's age when last read, and when that was (monotonic): while the
        # database cannot be read, the age keeps growing from there instead of standing.
        self._oldest: tuple[float | None, float] = (None, 0.0)

    # What the Dispatcher reports about one delivery.
    def delivery_handled(self, queue: str, message_type: str | None, seconds: float) -> None:
        label = message_label(message_type)
        self.handled.labels(queue, label).inc()
        self.latency.labels(label).observe(seconds)

    def delivery_failed(self, queue: str, message_type: str | None) -> None:
        self.failed.labels(queue, message_label(message_type)).inc()

    def delivery_dead_lettered(self, queue: str, message_type: str | None) -> None:
        self.dead_lettered.labels(queue, message_label(message_type)).inc()

    def delivery_dropped(self, queue: str, message_type: str | None) -> None:
        self.dropped.labels(queue, message_label(message_type)).inc()

    # What the outbox relay reports.
    def outbox_backlog(self, waiting: int, oldest: float | None, refused: int) -> None:
        self.outbox_waiting.set(waiting)
        self.outbox_refused.set(refused)
        self._oldest = (oldest, time.monotonic())
        self.outbox_oldest.set(oldest or 0)

    def outbox_oldest_now(self) -> float | None:
        """The oldest unpublished row's age now, from the last reading."""
        oldest, read_at = self._oldest
        return None if oldest is None else oldest + (time.monotonic() - read_at)

    def on_scrape(self, sampler: Callable[[], Awaitable[object]]) -> None:
        """Run `sampler` on the service's loop before each scrape: it sets gauges from
        what only the service can read (its database). One that fails or is late leaves
        its gauges at their last values."""
        self._samplers.append(sampler)

    async def sample(self) -> None:
        for sampler in self._samplers:
            try:
                await sampler()
            except Exception as exc:
                log.warning("metrics not read", sampler=_name(sampler), error=repr(exc))
        # Not read this time (the database is away): the age as it must be by now.
        oldest = self.outbox_oldest_now()
        self.outbox_oldest.set(oldest or 0)

    def text(self) -> bytes:
        return generate_latest(self.registry)


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


async def run_checks(checks: dict[str, Check], timeout: float = LOOP_DEADLINE) -> dict[str, str]:
    """The checks that failed, by name, with why (empty: ready). Each has `timeout`."""

    async def one(check: Check) -> str | None:
        try:
            async with asyncio.timeout(timeout):
                return await check()
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except Exception as exc:
            return repr(exc)[:300]

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    return {name: why for name, why in zip(checks, results, strict=True) if why is not None}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        # A request line per scrape (every few seconds) would drown the service's log.
        pass


class MetricsServer:
    """Serves `/metrics` and `/health/*` of one service process on `host`:`port` (0: a free
    port, chosen when it starts)."""

    def __init__(
        self,
        metrics: Metrics,
        checks: dict[str, Check],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.metrics = metrics
        self.checks = checks
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to scrape it. Bound to every address, it is named by this host's name."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else socket.getfqdn()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Start serving (from the event loop whose service it reports on)."""
        self._loop = asyncio.get_running_loop()
        self._server = make_server(self.host, self.port, self._app, _Server, _Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and health served", url=self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _on_loop(self, coro: Awaitable[object]) -> object:
        """Run `coro` on the service's loop from the server's thread; TimeoutError if the
        loop does not finish it within LOOP_DEADLINE."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(LOOP_DEADLINE + 1)
        except TimeoutError:
            future.cancel()
            raise

    def _app(self, environ: dict, start_response: Callable) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, 405, {"error": "GET only"})
        if path == "/metrics":
            try:
                self._on_loop(self.metrics.sample())
            except Exception as exc:  # the loop is stuck: the last values, said in the log
                log.warning("metrics served without a fresh reading", error=repr(exc))
            body = self.metrics.text()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/health/live":
            try:
                self._on_loop(asyncio.sleep(0))
            except Exception:
                return _answer(start_response, 503, {"live": False, "failed": {"loop": "stuck"}})
            return _answer(start_response, 200, {"live": True})
        if path == "/health/ready":
            try:
                failed = self._on_loop(run_checks(self.checks))
            except Exception:
                failed = {"loop": "the service's event loop did not answer"}
            status = 503 if failed else 200
            return _answer(start_response, status, {"ready": not failed, "failed": failed})
        return _answer(start_response, 404, {"error": "not found", "paths": PATHS})


PATHS = ["/metrics", "/health/live", "/health/ready"]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _answer(start_response: Callable, status: int, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {_REASONS[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
