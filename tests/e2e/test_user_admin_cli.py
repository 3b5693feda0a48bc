"""An administrator's user and job commands end to end: platenctl over the broker, the
services as processes."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal as D

from platen.testing.documents import make_pdf


def pdf(system, pages: int = 2) -> str:
    path = system.tmp / f"doc{pages}.pdf"
    path.write_bytes(make_pdf(pages))
    return str(path)


async def test_user_list_disable_and_enable(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "mia", "--balance", "4.00", "--group", "staff")
    system.ctl("user", "add", "ada", "--balance", "2.50", "--group", "staff", "--group", "lab")
    system.ctl("user", "add", "zed", "--unrestricted")

    out = system.ctl("user", "disable", "zed")
    assert "disabled" in out.stdout
    denied = system.ctl(
        "print", pdf(system), "--user", "zed", "--printer", "lab-1", "--wait", check=False
    )
    assert denied.returncode == 2 and "disabled" in denied.stdout

    listed = json.loads(system.ctl("user", "list", "--json").stdout)
    assert [u["login"] for u in listed] == ["ada", "mia", "zed"]
    ada = listed[0]
    assert D(ada["balance"]) == D("2.50") and D(ada["available"]) == D("2.50")
    assert ada["groups"] == ["lab", "staff"] and ada["restricted"] and ada["enabled"]
    assert not listed[2]["enabled"] and not listed[2]["restricted"]

    rows = list(csv.reader(io.StringIO(system.ctl("user", "list", "--csv").stdout)))
    assert rows[0][:4] == ["login", "balance", "held", "available"]
    assert [(r[0], r[-1]) for r in rows[1:]] == [("ada", "true"), ("mia", "true"), ("zed", "false")]
    staff = system.ctl("user", "list", "--group", "staff", "--limit", "1")
    assert staff.stdout.split()[0] == "ada" and len(staff.stdout.splitlines()) == 1
    assert "cut short" in staff.stderr

    system.ctl("user", "enable", "zed")
    again = system.ctl("print", pdf(system), "--user", "zed", "--printer", "lab-1", "--wait")
    assert "printed" in again.stdout
    assert system.user_json("zed")["enabled"] is True

    unknown = system.ctl("user", "disable", "nobody", check=False)
    assert unknown.returncode == 1 and "no user named 'nobody'" in unknown.stderr
    assert "ledger OK" in system.ctl("ledger", "verify").stdout
