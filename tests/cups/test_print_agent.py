"""The print server's agent (`platen.cups_backend.agent`) beside a real cupsd: the backends
hand it their jobs; when it is not running, or dies while a job waits, the backend does
the job itself, and the job is captured once, printed once and charged once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from decimal import Decimal as D

import pytest

from tests.cups.test_cups_capture import COMPLETED, answer, document, job_state
from tests.e2e.helpers import EventRecorder, query

pytestmark = pytest.mark.shared_system


def agent_lines(rig) -> list[dict]:
    lines = []
    for line in (rig.cups.folder / "agent.log").read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def test_a_job_is_submitted_and_decided_through_the_agent(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "agnes", "--balance", "5.00")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), "agnes")
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=90)
        [charged] = await events.wait_for("job.charged", 1, timeout=60)
    job_id = charged.correlation_id
    lines = [line for line in agent_lines(cups) if line.get("job_id") == job_id]
    # The agent took the job (its log names it on every line about it), and the backend
    # did not have to: its decision came from the agent.
    events_seen = [line["event"] for line in lines]
    assert "agent.deciding" in events_seen
    [decided] = [line for line in lines if line["event"] == "agent.decided"]
    assert decided["state"] == "released"
    assert "not answering" not in (cups.cups.folder / "log/error_log").read_text()
    assert len(cups.printers["lab-color"].received()) == 1
    assert D(system.user_json("agnes")["balance"]) == D("4.80")


async def test_without_the_agent_the_backend_does_the_job_itself(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "bruno", "--balance", "5.00")
    cups.cups.stop_agent()
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), "bruno")
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=90)
        await events.wait_for("job.charged", 1, timeout=60)
        await asyncio.sleep(1)
        assert len(events.of_type("job.captured")) == 1
        assert len(events.of_type("job.charged")) == 1
    assert len(cups.printers["lab-color"].received()) == 1
    assert D(system.user_json("bruno")["balance"]) == D("4.80")


async def test_the_agent_dying_while_a_job_waits_loses_nothing_and_prints_nothing_free(
    system, cups
):
    """The agent is killed while the job waits for its user's answer: the backend carries
    on by itself, asks first (the job is known) and so resumes the same Platen job; it
    prints only once released, and is charged once."""
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "carla", "--balance", "5.00")
    system.ctl("user", "set", "carla", "--selection", "confirm")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), "carla")
        [ask] = await events.wait_for("job.input_required", 1, timeout=60)
        assert any(
            line.get("job_id") == ask.correlation_id and line["event"] == "agent.deciding"
            for line in agent_lines(cups)
        )
        cups.cups.agent_proc.kill()  # SIGKILL: no goodbye on the socket, only its end
        cups.cups.agent_proc.wait(10)
        await asyncio.sleep(2)
        assert cups.printers["lab-color"].received() == []  # still waiting for carla
        await answer(system, ask.correlation_id, "carla")
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=90)
        await events.wait_for("job.charged", 1, timeout=60)
        await asyncio.sleep(1)
        assert len(events.of_type("job.captured")) == 1
        assert len(events.of_type("job.charged")) == 1
    sql = "SELECT job_id, state FROM job_capture.jobs WHERE user_login = 'carla'"
    rows = await query(system.database_url, sql)
    assert [(str(r["job_id"]), r["state"]) for r in rows] == [(ask.correlation_id, "printed")]
    assert len(cups.printers["lab-color"].received()) == 1
    assert D(system.user_json("carla")["balance"]) == D("4.80")
    log = (cups.cups.folder / "log/error_log").read_text(errors="replace")
    # The backend said so (cupsd escapes the quote) and went on alone.
    assert "agent is not answering (the agent closed the connection)" in log


# The shim cupsd starts per job (`shim`) hands the job to a backend the agent started
# ahead of it (`warm`): the job runs there, and cupsd's cancel reaches it through the shim.


def handed_over(rig) -> list[dict]:
    return [line for line in agent_lines(rig) if line["event"] == "agent.handed_over"]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def gone(pid: int, timeout: float = 40) -> bool:
    for _ in range(int(timeout * 10)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture(params=["compiled", "python"])
def shim(request, cups) -> str:
    """Which shim cupsd starts (docs/cups.md): `shim.c` compiled, or `shim.py`."""
    cups.cups.use_shim(request.param)
    return request.param


def started_program(pid: int) -> str:
    return os.path.basename(os.readlink(f"/proc/{pid}/exe"))


async def test_the_shim_hands_the_job_to_a_warm_backend(system, cups, shim):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    dora = f"dora-{shim}"  # one system for the module: a user for each shim
    system.ctl("user", "add", dora, "--balance", "5.00")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), dora)
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=90)
        [charged] = await events.wait_for("job.charged", 1, timeout=60)
        await asyncio.sleep(1)
        assert len(events.of_type("job.captured")) == 1
    [hand_over] = handed_over(cups)
    # The warm backend did the job (through the agent: its decision is in the agent's log)
    # and ended with it; cupsd's log has no word of a backend doing it alone.
    assert any(
        line.get("job_id") == charged.correlation_id and line["event"] == "agent.decided"
        for line in agent_lines(cups)
    )
    assert await gone(hand_over["backend_pid"])
    log = (cups.cups.folder / "log/error_log").read_text(errors="replace")
    assert "not answering" not in log and "not using" not in log
    assert "warm backend ended without a status" not in log  # no fallback after it either
    assert len(cups.printers["lab-color"].received()) == 1
    assert D(system.user_json(dora)["balance"]) == D("4.80")


async def test_a_shim_killed_while_its_job_waits_leaves_nothing_waiting_and_prints_nothing(
    system, cups, shim
):
    """cupsd's SIGKILL (after its JobKillDelay), or anything else that ends the shim
    without a word: the warm backend takes it as cupsd's SIGTERM, cancels the job at
    Platen (not charged, its hold released) and exits; the agent holds nothing."""
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    emil = f"emil-{shim}"
    system.ctl("user", "add", emil, "--balance", "5.00")
    system.ctl("user", "set", emil, "--selection", "confirm")
    async with EventRecorder(system.amqp_url) as events:
        cups.cups.lp("lab-color", document(system, 2), emil)
        [ask] = await events.wait_for("job.input_required", 1, timeout=60)
        [hand_over] = handed_over(cups)
        program = started_program(hand_over["shim_pid"])
        assert program == "platen-shim" if shim == "compiled" else program.startswith("python")
        os.kill(hand_over["shim_pid"], signal.SIGKILL)
        [cancelled] = await events.wait_for("job.cancelled", 1, timeout=40)
        assert cancelled.correlation_id == ask.correlation_id
        assert await gone(hand_over["backend_pid"])
        await asyncio.sleep(1)
        assert events.of_type("job.charged") == [] == events.of_type("job.authorized")
    assert "cancelled in CUPS" in json.loads(cancelled.body)["reason"]
    assert cups.printers["lab-color"].received() == []
    assert D(system.user_json(emil)["balance"]) == D("5.00")
    assert any(
        line.get("job_id") == ask.correlation_id and line["event"] == "agent.backend_left"
        for line in agent_lines(cups)
    )
