"""Reading the PPD cupsd keeps for a queue (`LocalCups.ppd`): the tests derive other queues'
PPDs from it. When cupsd no longer has it (seen in three fresh-clone runs, not
understood), the one `lpadmin -m everywhere` made is used, with a warning that carries
what cupsd logged about the queue; without one, the error says the same."""

from __future__ import annotations

import threading

import pytest

from platen.localstack.cups import LocalCups
from platen.localstack.servers import InfraError

PPD = '*PPD-Adobe: "4.3"\n*ModelName: "lab"\n'


def cups_in(tmp_path) -> LocalCups:
    cups = LocalCups(tmp_path / "cups", tmp_path / "backend.conf")
    (cups.folder / "ppd").mkdir(parents=True)
    (cups.folder / "log").mkdir()
    (cups.folder / "log" / "error_log").write_text(
        "E [04/Dec/2026:08:00:00 +0000] [Job ???] lab-color: something cupsd said\n"
        "I [04/Dec/2026:08:00:01 +0000] another queue's line: lab-mono\n"
    )
    return cups


def test_the_ppd_cupsd_keeps_is_read_whole(tmp_path):
    cups = cups_in(tmp_path)
    (cups.folder / "ppd" / "lab-color.ppd").write_text(PPD)
    assert cups.ppd("lab-color", timeout=30) == PPD


def test_a_ppd_cupsd_lost_is_the_one_lpadmin_made_with_a_warning(tmp_path):
    cups = cups_in(tmp_path)
    cups.made_ppds["lab-color"] = PPD
    with pytest.warns(UserWarning, match="lab-color: something cupsd said"):
        assert cups.ppd("lab-color", timeout=0.2) == PPD


def test_no_ppd_at_all_is_an_error_that_says_what_cupsd_logged(tmp_path):
    cups = cups_in(tmp_path)
    with pytest.raises(InfraError, match=r"no complete PPD for queue lab-color.*something cupsd"):
        cups.ppd("lab-color", timeout=0.2)


def test_a_ppd_lpadmin_makes_late_is_waited_for_and_a_queue_left_without_one_made_again(
    tmp_path,
):
    """`add_queue`'s `lpadmin -m everywhere` (here a stand-in for it): the first leaves no
    PPD, the second's arrives a moment after it returns; it is kept as `made_ppds`."""
    cups = cups_in(tmp_path)
    calls = []

    def lpadmin(*argv: str) -> None:
        calls.append(argv)
        if len(calls) == 2:
            late = threading.Timer(0.1, (cups.folder / "ppd" / "lab-color.ppd").write_text, [PPD])
            late.start()

    cups.run = lpadmin
    cups._add_everywhere("lab-color", "ipp://127.0.0.1:1/ipp/print", timeout=1)
    assert [c[-1] for c in calls] == ["everywhere", "everywhere"]
    assert cups.made_ppds["lab-color"] == PPD


def test_a_queue_that_never_gets_a_ppd_is_an_error_that_says_what_cupsd_logged(tmp_path):
    cups = cups_in(tmp_path)
    cups.run = lambda *argv: None
    with pytest.raises(InfraError, match=r"made no PPD for lab-color.*something cupsd"):
        cups._add_everywhere("lab-color", "ipp://127.0.0.1:1/ipp/print", timeout=0.2)
    assert "lab-color" not in cups.made_ppds
