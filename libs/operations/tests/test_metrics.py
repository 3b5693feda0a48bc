"""A service's metrics and health answers (platen.operations.metrics), with no server: the
WSGI application is called as the HTTP server's thread would call it."""

import asyncio
import json
import time
from wsgiref.util import setup_testing_defaults

from prometheus_client.parser import text_string_to_metric_families

from platen.operations.metrics import Metrics, MetricsServer, message_label, run_checks


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The value of one series in the served text, as Prometheus would read it."""
    for family in text_string_to_metric_families(metrics.text().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def get(server: MetricsServer, path: str) -> tuple[str, dict[str, str], bytes]:
    """What the server answers to GET `path`, asked from another thread (as its own
    threads do), while this test's loop stays free to run what it asks of it."""
    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    answer: dict = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    body = await asyncio.to_thread(lambda: b"".join(server._app(environ, start_response)))
    return answer["status"], answer["headers"], body


def serving(metrics: Metrics, checks=None) -> MetricsServer:
    server = MetricsServer(metrics, checks or {})
    server._loop = asyncio.get_running_loop()  # what start() records, without a socket
    return server


def test_a_handled_delivery_counts_once_by_queue_and_type_with_its_latency():
    m = Metrics("pricing")
    m.delivery_handled("pricing.events", "job.captured", 0.02)
    m.delivery_handled("pricing.events", "job.captured", 0.2)
    m.delivery_handled("pricing.commands", "pricing.quote", 0.001)
    handled = "platen_messages_handled_total"
    assert sample(m, handled, queue="pricing.events", type="job.captured") == 2
    assert sample(m, handled, queue="pricing.commands", type="pricing.quote") == 1
    assert sample(m, "platen_handler_seconds_count", type="job.captured") == 2
    assert sample(m, "platen_handler_seconds_bucket", type="job.captured", le="0.025") == 1
    assert sample(m, "platen_handler_seconds_sum", type="job.captured") == 0.22


def test_failed_dead_lettered_and_dropped_are_counted_apart():
    m = Metrics("notification")
    m.delivery_failed("notification.events", "job.charged")
    m.delivery_dead_lettered("notification.events", "job.charged")
    m.delivery_dropped("notification.replies", "desktop.answer")
    assert (
        sample(m, "platen_messages_failed_total", queue="notification.events", type="job.charged")
        == 1
    )
    assert (
        sample(
            m,
            "platen_messages_dead_lettered_total",
            queue="notification.events",
            type="job.charged",
        )
        == 1
    )
    assert (
        sample(m, "platen_messages_handled_total", queue="notification.events", type="job.charged")
        is None
    )


def test_a_made_up_message_type_makes_no_series_of_its_own():
    # A desktop chooses the type of what it sends: each new name would be a new series.
    m = Metrics("notification")
    for i in range(50):
        m.delivery_dead_lettered("notification.replies", f"made-up-{i}")
    m.delivery_dead_lettered("notification.replies", None)
    families = {f.name: f for f in text_string_to_metric_families(m.text().decode())}
    series = families["platen_messages_dead_lettered"].samples
    assert {s.labels["type"] for s in series if s.name.endswith("_total")} == {"unknown"}
    assert message_label("job.captured") == "job.captured"


def test_the_oldest_rows_age_keeps_growing_while_the_database_cannot_be_read():
    m = Metrics("job-capture")
    m.outbox_backlog(3, 120.0, 1)
    assert m.outbox_oldest_now() >= 120.0
    m._oldest = (120.0, time.monotonic() - 30)  # read 30 s ago, not since
    assert m.outbox_oldest_now() >= 150.0
    m.outbox_backlog(0, None, 0)
    assert m.outbox_oldest_now() is None


async def test_a_scrape_reads_the_samplers_first_and_a_failing_one_keeps_the_last_value():
    m = Metrics("job-capture")
    reads = []

    async def outbox():
        reads.append(1)
        if len(reads) > 1:
            raise ConnectionRefusedError("database away")
        m.outbox_backlog(4, 60.0, 2)

    m.on_scrape(outbox)
    server = serving(m)
    status, headers, body = await get(server, "/metrics")
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain")
    assert b"platen_outbox_waiting 4.0" in body
    assert b"platen_outbox_refused 2.0" in body
    status, _, _ = await get(server, "/metrics")
    assert status == "200 OK"
    assert len(reads) == 2
    assert sample(m, "platen_outbox_waiting") == 4
    assert sample(m, "platen_outbox_oldest_seconds") >= 60.0


async def test_ready_is_200_when_every_check_passes_and_503_naming_what_failed():
    state = {"database": None}

    async def database():
        return state["database"]

    async def broker():
        return None

    server = serving(Metrics(), {"database": database, "broker": broker})
    status, headers, body = await get(server, "/health/ready")
    assert (status, json.loads(body)) == ("200 OK", {"ready": True, "failed": {}})
    assert headers["Content-Type"] == "application/json"
    state["database"] = "connection refused"
    status, _, body = await get(server, "/health/ready")
    assert status == "503 Service Unavailable"
    assert json.loads(body) == {"ready": False, "failed": {"database": "connection refused"}}


async def test_a_check_that_raises_or_hangs_fails_with_why():
    async def raises():
        raise OSError("no route")

    async def hangs():
        await asyncio.Event().wait()

    failed = await run_checks({"a": raises, "b": hangs}, timeout=0.2)
    assert failed == {"a": "OSError('no route')", "b": "no answer within 0.2 s"}


async def test_live_answers_while_the_loop_runs_and_unknown_paths_are_404():
    server = serving(Metrics())
    status, _, body = await get(server, "/health/live")
    assert (status, json.loads(body)) == ("200 OK", {"live": True})
    status, _, _ = await get(server, "/secrets")
    assert status == "404 Not Found"


def test_live_is_503_when_the_loop_does_not_answer(monkeypatch):
    # A loop that exists but never runs what it is asked: a stuck service.
    import platen.operations.metrics as metrics

    monkeypatch.setattr(metrics, "LOOP_DEADLINE", 0.1)
    loop = asyncio.new_event_loop()
    try:
        server = MetricsServer(Metrics(), {})
        server._loop = loop
        environ: dict = {"PATH_INFO": "/health/live", "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        got = {}
        body = b"".join(server._app(environ, lambda s, h: got.update(status=s)))
        assert got["status"] == "503 Service Unavailable"
        assert json.loads(body)["live"] is False
    finally:
        # The loop comes back to life: what it was asked runs (or is cancelled) now.
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()
