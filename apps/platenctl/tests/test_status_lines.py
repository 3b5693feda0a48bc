"""What `platenctl status` says of each service: pure formatting, no broker."""

from platen.ctl.main import service_line, status_json
from platen.events.system import Pong


def test_a_service_that_does_not_answer_is_named():
    assert service_line("pricing", None) == "pricing          NOT ANSWERING"


def test_an_empty_outbox_says_nothing_more():
    assert service_line("pricing", Pong(service="pricing", version="1.0")) == (
        "pricing          up 1.0"
    )


def test_a_waiting_outbox_shows_its_size_and_its_oldest_rows_age():
    pong = Pong(service="job-capture", version="1.0", outbox_waiting=3, outbox_oldest_seconds=125.4)
    line = service_line("job-capture", pong)
    assert line.startswith("job-capture      up 1.0")
    assert "outbox: 3 waiting, the oldest for 125 s" in line


def test_refused_rows_are_shown_for_an_administrator():
    pong = Pong(service="pricing", version="1.0", outbox_refused=2, outbox_oldest_seconds=9000)
    line = service_line("pricing", pong)
    assert "2 refused by the broker" in line
    assert "waiting" not in line


def test_json_carries_each_outbox_and_names_who_did_not_answer():
    pong = Pong(service="job-capture", version="1.0", outbox_waiting=3, outbox_oldest_seconds=125.4)
    out = status_json(["job-capture", "pricing"], {"job-capture": [pong]})
    assert out["pricing"] is None
    assert out["job-capture"]["outbox_waiting"] == 3
    assert out["job-capture"]["outbox_oldest_seconds"] == 125.4
    assert out["job-capture"]["outbox_refused"] == 0


def test_a_ready_service_shows_where_its_metrics_are():
    pong = Pong(
        service="pricing", version="1.0", instance="h:12", metrics_url="http://127.0.0.1:9100"
    )
    assert service_line("pricing", pong) == (
        "pricing          up 1.0; metrics http://127.0.0.1:9100/metrics"
    )


def test_a_service_that_is_not_ready_says_which_check_failed():
    pong = Pong(service="pricing", version="1.0", unready={"consumers": "not consuming x"})
    assert "NOT READY (consumers: not consuming x)" in service_line("pricing", pong)


def test_each_replica_has_its_own_line_and_json_entry():
    one = Pong(service="pricing", version="1.0", instance="a:1", metrics_url="http://a:9100")
    two = Pong(
        service="pricing",
        version="1.0",
        instance="b:2",
        metrics_url="http://b:9100",
        unready={"database": "refused"},
    )
    assert service_line("pricing", one, replica=True).startswith("pricing          up 1.0 on a:1")
    out = status_json(["pricing"], {"pricing": [one, two]})["pricing"]
    assert out["ready"] is False
    assert [(r["instance"], r["metrics_url"], r["ready"]) for r in out["replicas"]] == [
        ("a:1", "http://a:9100", True),
        ("b:2", "http://b:9100", False),
    ]
    assert out["replicas"][1]["unready"] == {"database": "refused"}
