"""`platenctl report` over a long period: asked page by page of time, merged, with a
progress bar only for a terminal (a fake ledger here; the real one's pages are checked
against its whole report in services/account-ledger/tests/integration/test_reports_db.py)."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from platen.ctl.reports import shows_progress, stream_report
from platen.events.reports import (
    ReportRow,
    ReportSpan,
    ReportSpanQuery,
    UsageReport,
    UsageReportQuery,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# (when, user, amount): one job each, charged.
FACTS = [(T0 + timedelta(days=d, hours=d), u, D(a)) for d, u, a in [
    (0, "ann", "0.10"), (3, "bob", "0.25"), (9, "ann", "1.00"), (20, "cat", "0.05"),
    (20, "ann", "0.40"), (41, "bob", "2.00"),
]]  # fmt: skip


def row(key: str, facts) -> ReportRow:
    amount = sum((a for _, _, a in facts), D(0))
    return ReportRow(
        key=key, jobs=len(facts), sides=len(facts), color_sides=0, grayscale_sides=len(facts),
        charged=amount, refunded=D(0), amount=amount,
    )  # fmt: skip


class FakeLedger:
    def __init__(self, facts=FACTS) -> None:
        self.facts = facts
        self.asked: list[UsageReportQuery] = []

    async def ask(self, message, timeout: float):
        if isinstance(message, ReportSpanQuery):
            times = [t for t, _, _ in self.facts]
            return ReportSpan(first=min(times, default=None), last=max(times, default=None))
        assert isinstance(message, UsageReportQuery)
        self.asked.append(message)
        inside = [
            f for f in self.facts
            if (message.since is None or f[0] >= message.since)
            and (message.until is None or f[0] < message.until)
        ]  # fmt: skip
        users = sorted({u for _, u, _ in inside})
        return UsageReport(
            by=message.by, since=message.since, until=message.until,
            lines=[row(u, [f for f in inside if f[1] == u]) for u in users],
            total=row("total", inside),
        )  # fmt: skip


async def test_pages_of_a_week_merge_into_the_whole_report():
    ledger = FakeLedger()
    whole = await ledger.ask(UsageReportQuery(by="user"), 1)
    seen: list[tuple[int, int]] = []
    streamed = await stream_report(
        ledger.ask, "user", None, None, timedelta(days=7), lambda d, t: seen.append((d, t))
    )
    assert streamed == whole
    pages = ledger.asked[1:]
    assert len(pages) == 7  # 42 days and 20 hours of facts, a week a page
    assert pages[0].since == FACTS[0][0] and pages[-1].until == FACTS[-1][0] + timedelta(
        microseconds=1
    )
    assert all(a.until == b.since for a, b in itertools.pairwise(pages))
    assert seen == [(n, 7) for n in range(1, 8)]


async def test_a_period_keeps_its_bounds_and_a_short_one_is_one_query():
    ledger = FakeLedger()
    since, until = T0 + timedelta(days=2), T0 + timedelta(days=25)
    streamed = await stream_report(ledger.ask, "user", since, until, timedelta(days=5))
    whole = await ledger.ask(UsageReportQuery(by="user", since=since, until=until), 1)
    assert streamed == whole and (streamed.since, streamed.until) == (since, until)
    ledger.asked.clear()
    await stream_report(ledger.ask, "user", since, until, timedelta(days=60))
    assert ledger.asked == [UsageReportQuery(by="user", since=since, until=until)]


async def test_an_empty_ledger_is_asked_once():
    ledger = FakeLedger(facts=[])
    report = await stream_report(ledger.ask, "printer", None, None, timedelta(days=1))
    assert report.lines == [] and len(ledger.asked) == 1


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_only_when_both_outputs_are_a_terminal():
    assert shows_progress(Tty(), Tty()) is True
    assert shows_progress(io.StringIO(), Tty()) is False  # --csv > file, or a pipe
    assert shows_progress(Tty(), io.StringIO()) is False  # stderr captured
