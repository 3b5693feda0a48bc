"""platenctl's report periods: `--to` a day counts that whole day; nothing is guessed."""

from datetime import datetime, timedelta

import pytest
import typer

from platen.ctl.reports import period


def test_a_day_given_to_to_counts_whole_and_from_starts_at_its_midnight():
    since, until = period("2026-12-01", "2026-12-31")
    assert since == datetime(2026, 12, 1).astimezone()
    assert until == datetime(2027, 1, 1).astimezone()
    assert until - since == timedelta(days=31)


def test_a_moment_given_to_to_ends_there_and_no_bounds_is_everything():
    assert period(None, "2026-12-01T12:00")[1] == datetime(2026, 12, 1, 12).astimezone()
    assert period(None, None) == (None, None)


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [("yesterday", None, "not YYYY-MM-DD"), ("2026-12-02", "2026-12-01", "before --from")],
)
def test_a_bad_period_is_refused_saying_why(start, end, says):
    with pytest.raises(typer.BadParameter, match=says):
        period(start, end)
