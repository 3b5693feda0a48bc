"""platenctl paths the tour does not walk: a stopped service, one user's jobs, an
unrestricted user, and the exit code of a job that neither printed nor was denied.

`platenctl print --wait` exits 3 for a job that failed or was cancelled. A job submitted
by platenctl has no physical printer (job-capture prints it on release), so it cannot
fail; only jobs from the CUPS backend can (tests/cups). The exit-3 path is walked here
with a job cancelled by its deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from platen.localstack.services import MODULES
from platen.testing.documents import make_pdf
from tests.e2e.helpers import eventually, http_get

D = Decimal


def write_pdf(system, name: str, pages: int):
    path = system.tmp / name
    path.write_bytes(make_pdf(pages))
    return path


def print_job(system, user: str, path, check: bool = True):
    return system.ctl(
        "print", str(path), "--user", user, "--printer", "lab-1", "--wait", check=check
    )


async def test_one_users_jobs_and_an_unrestricted_user_going_below_zero(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "add", "bob", "--balance", "0.10", "--unrestricted")
    doc = write_pdf(system, "report.pdf", 3)

    alice_job = print_job(system, "alice", doc).stdout.splitlines()[0]
    # bob has 0.10 and the job costs 0.30: unrestricted, he prints and goes below zero.
    bob_print = print_job(system, "bob", doc)
    assert "charged 0.30, balance -0.20" in bob_print.stdout
    bob_jobs = [bob_print.stdout.splitlines()[0], print_job(system, "bob", doc).stdout.split()[0]]
    bob = system.user_json("bob")
    assert (D(bob["balance"]), bob["restricted"]) == (D("-0.50"), False)

    listed = json.loads(system.ctl("jobs", "--user", "bob", "--json").stdout)
    assert sorted(j["job_id"] for j in listed) == sorted(bob_jobs)
    assert {(j["user"], j["state"]) for j in listed} == {("bob", "printed")}
    text = system.ctl("jobs", "--user", "bob").stdout
    assert alice_job not in text and all(job in text for job in bob_jobs)
    everyone = json.loads(system.ctl("jobs", "--json").stdout)
    assert {j["job_id"] for j in everyone} == {alice_job, *bob_jobs}


async def test_status_with_a_service_stopped_exits_non_zero_and_names_it(system):
    system.services.stop("pricing")
    out = system.ctl("status", "--timeout", "5", check=False)
    assert out.returncode == 1
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines())
    assert lines["pricing"] == "NOT ANSWERING"
    assert all(
        lines[s].startswith("up ") for s in ("job-capture", "account-ledger", "notification")
    )
    system.services.start("pricing")
    assert system.ctl("status", "--timeout", "60").stdout.count(" up ") == 4

    # A second pricing replica: `status` lists each, with its own metrics address.
    with open(system.tmp / "pricing-2.log", "ab") as log:
        replica = subprocess.Popen(
            [sys.executable, "-m", MODULES["pricing"]],
            env=system.services.env("pricing"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def both_replicas() -> list[dict]:
            status = json.loads(system.ctl("status", "--json", "--timeout", "60").stdout)
            return status["pricing"]["replicas"] if len(status["pricing"]["replicas"]) == 2 else []

        replicas = await eventually(both_replicas, timeout=120, interval=1)
        assert len({r["instance"] for r in replicas}) == 2
        assert len({r["metrics_url"] for r in replicas}) == 2
        assert all(r["ready"] for r in replicas)
        for r in replicas:
            status, _ = await http_get(f"{r['metrics_url']}/health/ready")
            assert status == 200

        async def a_line_each() -> bool:
            lines = system.ctl("status").stdout.splitlines()
            return len([line for line in lines if line.startswith("pricing ")]) == 2

        assert await eventually(a_line_each, timeout=120, interval=1)
    finally:
        replica.terminate()
        replica.wait(30)


@pytest.mark.service_env(PLATEN_JOB_DEADLINE_SECONDS="4", PLATEN_INPUT_DEADLINE_SECONDS="4")
async def test_print_wait_of_a_job_cancelled_by_its_deadline_exits_3(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "set", "alice", "--selection", "confirm")  # and nobody confirms
    out = print_job(system, "alice", write_pdf(system, "report.pdf", 2), check=False)
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.stdout.splitlines()[1].startswith("cancelled: ")
    alice = system.user_json("alice")
    assert (D(alice["balance"]), D(alice["held"])) == (D("5.00"), D("0.00"))
