"""Users from an LDAP directory end to end, against a real OpenLDAP `slapd`: synced with
their groups, a new one made on their first print by their group's rule and charged, one
removed from the directory disabled with their history intact."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from platen.testing.documents import make_pdf
from platen.testing.ldap import Person, Slapd


@pytest.fixture
def slapd(tmp_path):
    server = Slapd(tmp_path / "slapd").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def extra_service_env(slapd, tmp_path):
    return slapd.ledger_env(tmp_path / "ldap-reader-password")


async def test_three_users_in_two_groups_synced_a_fourth_made_on_print_one_disabled(
    slapd, extra_service_env, system
):
    slapd.add_group("staff", 5000)
    slapd.add_group("students", 5001)
    slapd.add_person(Person("ann", "Ann Able", 10001, "ann@example.org"), ["staff"])
    slapd.add_person(Person("bob", "Bob Baker", 10002), ["students"])
    slapd.add_person(Person("cat", "Cat Cole", 10003), ["students", "staff"])
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("rule", "set", "staff", "--balance", "20.00", "--unrestricted")
    system.ctl("rule", "set", "students", "--balance", "5.00")

    synced = json.loads(system.ctl("directory", "sync", "--json").stdout)
    assert synced["source"] == slapd.url and synced["listed"] == 3
    assert [(a["login"], a["detail"]) for a in synced["added"]] == [
        ("ann", "rule staff"),
        ("bob", "rule students"),
        ("cat", "rule staff"),  # the first rule that matches, in order
    ]
    users = {u["login"]: u for u in json.loads(system.ctl("user", "list", "--json").stdout)}
    assert users["cat"]["groups"] == ["staff", "students"] and not users["cat"]["restricted"]
    assert D(users["bob"]["balance"]) == D("5.00") and users["bob"]["restricted"]

    # Dee joins the directory after the sync, and prints: made on that job, and charged.
    slapd.add_person(Person("dee", "Dee Dale", 10004), ["students"])
    doc = system.tmp / "doc.pdf"
    doc.write_bytes(make_pdf(3))
    out = system.ctl("print", str(doc), "--user", "dee", "--printer", "lab-1", "--wait")
    assert "printed" in out.stdout
    dee = system.user_json("dee")
    assert D(dee["balance"]) == D("4.70") and dee["groups"] == ["students"]

    # Bob prints, then leaves: disabled at the next sync, his history and money kept.
    system.ctl("print", str(doc), "--user", "bob", "--printer", "lab-1", "--wait")
    slapd.remove_person("bob")
    synced = json.loads(system.ctl("directory", "sync", "--json").stdout)
    assert synced["disabled"] == ["bob"] and synced["added"] == []
    bob = system.user_json("bob")
    assert bob["enabled"] is False and D(bob["balance"]) == D("4.70")
    statement = system.ctl("statement", "bob").stdout
    assert "initial balance" in statement and "0.30" in statement

    # The directory away: a sync says so and changes nothing; known users print on.
    slapd.stop()
    failed = system.ctl("directory", "sync", check=False)
    assert failed.returncode == 1 and "directory not synced" in failed.stderr
    assert system.user_json("ann")["enabled"] is True
    again = system.ctl("print", str(doc), "--user", "ann", "--printer", "lab-1", "--wait")
    assert "printed" in again.stdout
