"""Users from the host's own directory (NSS) end to end: a user added with `useradd`
prints, is made on that first job by their group's rule and charged; `directory sync`
keeps the ledger up to date and disables a user the host no longer has."""

from __future__ import annotations

import json
import secrets
import subprocess
from decimal import Decimal as D

import pytest

from platen.testing.documents import make_pdf


@pytest.fixture
def host_users():
    """Host users and a group made for this test with useradd/groupadd, removed after."""
    tag = secrets.token_hex(3)
    group = f"pt-{tag}"
    made: list[str] = []
    subprocess.run(["groupadd", group], check=True)

    def add(login: str, full_name: str) -> str:
        login = f"{login}-{tag}"
        subprocess.run(
            [
                "useradd",
                "--no-create-home",
                "--no-user-group",
                "--gid",
                group,
                "--comment",
                full_name,
                login,
            ],
            check=True,
        )
        made.append(login)
        return login

    def remove(login: str) -> None:
        subprocess.run(["userdel", login], check=True)
        made.remove(login)

    try:
        yield group, add, remove
    finally:
        for login in made:
            subprocess.run(["userdel", login], check=False)
        subprocess.run(["groupdel", group], check=False)


@pytest.mark.service_env(PLATEN_DIRECTORY="nss", PLATEN_NSS_MIN_UID="1000")
async def test_a_host_user_prints_is_made_by_the_rule_and_a_removed_one_is_disabled(
    system, host_users
):
    group, add, remove = host_users
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    rules = system.ctl("rule", "set", group, "--balance", "3.00", "--overdraft", "1.00")
    assert f"group {group}" in rules.stdout and "balance 3.00" in rules.stdout
    doc = system.tmp / "doc.pdf"
    doc.write_bytes(make_pdf(2))

    # Nobody made her by hand: her first job makes her, with her group's rule.
    ada = add("ada", "Ada Lovelace")
    out = system.ctl("print", str(doc), "--user", ada, "--printer", "lab-1", "--wait")
    assert "printed" in out.stdout
    view = system.user_json(ada)
    assert D(view["balance"]) == D("2.80") and view["groups"] == [group]
    assert D(view["overdraft_limit"]) == D("1.00") and view["restricted"] is True

    # Someone the host does not know is denied, and told why.
    stranger = f"nobody-{group}"
    denied = system.ctl(
        "print", str(doc), "--user", stranger, "--printer", "lab-1", "--wait", check=False
    )
    assert denied.returncode == 2 and "is not in the directory" in denied.stdout

    # A sync adds the host's other users the rule takes; the dry run changes nothing.
    bob = add("bob", "Bob Babbage")
    dry = system.ctl("directory", "sync", "--dry-run")
    assert f"would be added     {bob} (rule {group})" in dry.stdout
    assert system.ctl("user", "show", bob, check=False).returncode == 1
    synced = json.loads(system.ctl("directory", "sync", "--json").stdout)
    assert bob in [a["login"] for a in synced["added"]] and synced["source"] == "nss"
    assert D(system.user_json(bob)["balance"]) == D("3.00")

    # Gone from the host: disabled at the next sync, never deleted; history kept.
    remove(ada)
    synced = json.loads(system.ctl("directory", "sync", "--json").stdout)
    assert synced["disabled"] == [ada]
    view = system.user_json(ada)
    assert view["enabled"] is False and D(view["balance"]) == D("2.80")
    statement = system.ctl("statement", ada).stdout
    assert "initial balance" in statement
    again = system.ctl(
        "print", str(doc), "--user", ada, "--printer", "lab-1", "--wait", check=False
    )
    assert again.returncode == 2 and "disabled" in again.stdout
