"""The core flows with three processes of every service (issue 13, item 4): each consumes
the same quorum queues as the others, and each runs every background task (expiry sweeps,
outbox relay, identity reconciliation, quotas) as often as the test can make it. Nothing
may happen twice and nothing may be lost."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from platen.localstack.services import MODULES
from platen.testing.documents import make_pdf
from tests.e2e.clientproc import ClientProcess
from tests.e2e.helpers import eventually, ledger_problems, query, submit_jobs

REPLICAS = 3


def job_states(system) -> dict[str, str]:
    return {j["job_id"]: j["state"] for j in json.loads(system.ctl("jobs", "--json").stdout)}


async def charge_counts(system) -> dict[str, int]:
    rows = await query(
        system.database_url,
        "SELECT job_id::text AS job_id, count(*) AS n FROM ledger.transactions "
        "WHERE kind = 'charge' GROUP BY job_id",
    )
    return {r["job_id"]: r["n"] for r in rows}


# A deadline, not a measure: twelve service processes and some thirty platenctl runs on a
# loaded 2-core machine take minutes.
@pytest.mark.timeout(900)
@pytest.mark.service_env(
    PLATEN_EXPIRY_INTERVAL_SECONDS="1",
    PLATEN_QUOTA_INTERVAL_SECONDS="1",
)
async def test_core_flows_with_three_replicas_of_every_service(system, desktops, tmp_path):
    started = [
        system.services.start_replica(name, n) for name in MODULES for n in range(2, REPLICAS + 1)
    ]

    async def all_started():
        return all("service started" in system.services.log(key) for key in started)

    assert await eventually(all_started, timeout=120)

    async def all_answer():
        answered = json.loads(system.ctl("status", "--json", "--timeout", "60").stdout)
        return all(s and len(s["replicas"]) == REPLICAS for s in answered.values())

    assert await eventually(all_answer, timeout=60)

    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    # login: (balance, how the user's jobs are authorised, group); only eve's group has
    # a quota
    users = {
        "alice": ("5.00", "auto", "staff"),
        "bob": ("0.10", "auto", "staff"),
        "carol": ("5.00", "confirm", "staff"),
        "dave": ("5.00", "confirm", "staff"),
        "eve": ("5.00", "choose", "lab"),
    }
    for login, (balance, selection, group) in users.items():
        system.ctl("user", "add", login, "--balance", balance, "--group", group)
        if selection != "auto":
            system.ctl("user", "set", login, "--selection", selection)
    system.ctl("account", "add", "acme")
    system.ctl("topup", "shared:acme", "10")
    system.ctl("account", "grant", "acme", "--user", "eve")
    # Three ledgers run the quota schedule every second: the day's quota is given once.
    system.ctl("quota", "set", "lab", "2.50", "--period", "day")

    clients: list[ClientProcess] = []
    try:
        for login in ("carol", "eve"):
            state = tmp_path / f"state-{login}"
            clients.append(ClientProcess(None, None, state, "--config", str(desktops(login))))
        carol, eve = clients

        # Printed and charged once.
        report = tmp_path / "report.pdf"
        report.write_bytes(make_pdf(3))
        out = system.ctl("print", str(report), "--user", "alice", "--printer", "lab-1", "--wait")
        alice_job = out.stdout.splitlines()[0]
        assert "charged 0.30, balance 4.70" in out.stdout
        # Denied, charged nothing.
        denied = system.ctl(
            "print", str(report), "--user", "bob", "--printer", "lab-1", "--wait", check=False
        )
        assert denied.returncode == 2 and "insufficient credit" in denied.stdout
        bob_job = denied.stdout.splitlines()[0]

        # Held for confirmation and answered; and one nobody answers, which the expiry
        # sweeps of three job-captures cancel once.
        await carol.wait_for("client.status", state="connected")
        [carol_job] = await submit_jobs(system.amqp_url, "carol", "lab-1", make_pdf(2), 1)
        [dave_job] = await submit_jobs(
            system.amqp_url, "dave", "lab-1", make_pdf(1), 1, deadline_seconds=10
        )
        [prompt] = await carol.wait_for("desktop.job_prompt", job_id=carol_job)
        assert prompt["kind"] == "confirm" and prompt["cost"] == "0.20"
        carol.send(job_id=carol_job, action="print")
        [result] = await carol.wait_for("desktop.answer_result", job_id=carol_job)
        assert result["outcome"] == "authorized"
        await carol.wait_for("desktop.job_printed", job_id=carol_job)

        # A shared account chosen from the list.
        [eve_job] = await submit_jobs(system.amqp_url, "eve", "lab-1", make_pdf(2), 1)
        [prompt] = await eve.wait_for("desktop.job_prompt", job_id=eve_job)
        assert prompt["kind"] == "choose_account"
        assert {a["account"] for a in prompt["accounts"]} == {"personal:eve", "shared:acme"}
        eve.send(job_id=eve_job, action="print", account="shared:acme")
        [result] = await eve.wait_for("desktop.answer_result", job_id=eve_job)
        assert result["outcome"] == "authorized" and result["account"] == "shared:acme"
        await eve.wait_for("desktop.job_printed", job_id=eve_job)
    finally:
        for client in clients:
            client.stop()

    expected = {
        alice_job: "printed",
        bob_job: "denied",
        str(carol_job): "printed",
        str(dave_job): "cancelled",
        str(eve_job): "printed",
    }

    async def all_final():
        states = job_states(system)
        return {job: states.get(job) for job in expected} == expected

    assert await eventually(all_final, timeout=90)
    counts = await charge_counts(system)
    assert counts == {alice_job: 1, str(carol_job): 1, str(eve_job): 1}
    assert D(system.user_json("alice")["balance"]) == D("4.70")
    assert (D(system.user_json("bob")["balance"]), D(system.user_json("bob")["held"])) == (
        D("0.10"),
        D("0.00"),
    )
    assert D(system.user_json("carol")["balance"]) == D("4.80")
    assert (D(system.user_json("dave")["balance"]), D(system.user_json("dave")["held"])) == (
        D("5.00"),
        D("0.00"),
    )
    acme = json.loads(system.ctl("account", "show", "acme", "--json").stdout)
    assert D(acme["balance"]) == D("9.80")
    # eve's own account got the day's quota, once, whatever the three schedules did (they
    # have run many times by now, each every second).
    quotas = await query(
        system.database_url,
        "SELECT count(*) AS n FROM ledger.transactions t JOIN ledger.entries e "
        "ON e.transaction_id = t.id WHERE e.account_id = 'personal:eve' AND t.kind <> 'charge'",
    )
    assert quotas[0]["n"] == 2  # the top-up when eve was added, and the quota
    assert D(system.user_json("eve")["balance"]) == D("7.50")
    dave = await query(
        system.database_url,
        "SELECT count(*) AS n FROM ledger.transactions WHERE job_id = $1::uuid",
        dave_job,
    )
    assert dave[0]["n"] == 0
    assert await ledger_problems(system.database_url) == []
    # (the system fixture runs `ledger verify` after the test)
