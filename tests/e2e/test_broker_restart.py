"""A real broker restart (the RabbitMQ application stopped and started on its node) while
a desktop client and the services are connected: everything reconnects by itself, and a
prompt sent after the restart is answered, printed and charged."""

from __future__ import annotations

from decimal import Decimal as D

from platen.testing.documents import make_pdf
from tests.e2e.clientproc import ClientProcess
from tests.e2e.helpers import submit_jobs
from tests.e2e.test_client_json import confirm_user, wait_printed


async def test_client_and_services_come_back_after_a_broker_restart(system, desktops, tmp_path):
    restart = system.identities.infra.restart
    confirm_user(system, "bob")
    client = ClientProcess(None, None, tmp_path / "state", "--config", str(desktops("bob")))
    try:
        await client.wait_for("client.status", state="connected")
        restart()
        await client.wait_for("client.status", state="disconnected", timeout=30)
        await client.wait_for("client.status", count=2, state="connected", timeout=90)
        system.wait_ready()
        [job] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(2), 1)
        await client.wait_for("desktop.job_prompt", job_id=job, timeout=60)
        client.send(job_id=job, action="print")
        await client.wait_for("desktop.answer_result", job_id=job, outcome="authorized")
        await wait_printed(system, job, timeout=60)
        assert D(system.user_json("bob")["balance"]) == D("4.80")
    finally:
        client.stop()
