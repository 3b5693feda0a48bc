"""No password, PIN or other secret is kept anywhere it could be read later: after the
flows that carry secrets (a desktop credential, a print server's credential, a shared
account's PIN, answers with right, wrong and malformed PINs), every table of every
service, every message waiting in any queue, and every service's log is scanned for them.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from urllib.parse import quote

import asyncpg
import httpx

from platen.broker_setup.broker_admin import split_credentials
from platen.events.desktop import JobAnswer, JobPrompt
from platen.events.registry import encode
from platen.testing.documents import make_pdf
from tests.e2e.clientproc import desktop_url
from tests.e2e.helpers import submit_jobs
from tests.e2e.test_rogue_clients import answer, next_result, send_raw

RIGHT_PIN, WRONG_PIN, BROKEN_PIN = "482913", "739102", "615284"


async def _rows_holding(database_url: str, secrets: list[str]) -> list[str]:
    """`schema.table` of every row, in any service's schema, that holds a secret."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_type = 'BASE TABLE'
                 AND table_schema NOT IN ('pg_catalog', 'information_schema')"""
        )
        found = []
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            for row in await conn.fetch(f"SELECT * FROM {name}"):
                for value in row.values():
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    if any(s.encode() in blob for s in secrets):
                        found.append(name)
        return found
    finally:
        await conn.close()


async def _queued_holding(system, secrets: list[str]) -> list[str]:
    """Every queue of the vhost with a waiting message that holds a secret (looked at
    through the management API, and left where it was)."""
    base, auth = split_credentials(system.ids.management_url)
    vhost = quote(system.vhost, safe="")
    found = []
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30) as http:
        queues = (await http.get(f"/api/queues/{vhost}")).json()
        for q in queues:
            r = await http.post(
                f"/api/queues/{vhost}/{quote(q['name'], safe='')}/get",
                json={"count": 10000, "ackmode": "ack_requeue_true", "encoding": "auto"},
            )
            text = json.dumps(r.json())
            if any(s in text for s in secrets):
                found.append(q["name"])
    return found


async def test_no_secret_is_kept_in_any_table_queue_or_log(system, desktops, tmp_path):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    for login in ("alice", "mallory"):
        system.ctl("user", "add", login, "--balance", "5.00")
        system.ctl("user", "set", login, "--selection", "choose")
    system.ctl("account", "add", "physics", "--pin", RIGHT_PIN)
    system.ctl("topup", "shared:physics", "10")
    system.ctl("printserver", "add", "scan-test", "--output", str(tmp_path / "ps.conf"))
    print_server_password = re.search(
        r"(?m)^amqp_url = \S+://[^:]+:([^@]+)@", (tmp_path / "ps.conf").read_text()
    )
    assert print_server_password, "no password in the print server's config file"
    alice_config, mallory_config = desktops("alice"), desktops("mallory")
    secrets = [
        RIGHT_PIN,
        WRONG_PIN,
        BROKEN_PIN,
        tomllib.loads(alice_config.read_text())["password"],
        tomllib.loads(mallory_config.read_text())["password"],
    ]
    secrets.append(print_server_password.group(1))
    alice, mallory = desktop_url(alice_config), desktop_url(mallory_config)

    [job_a] = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(1), 1)
    [job_m] = await submit_jobs(system.amqp_url, "mallory", "lab-1", make_pdf(1), 1)
    for login, job in (("alice", job_a), ("mallory", job_m)):
        await system.desktop_messages(
            login, until=lambda m, job=job: isinstance(m, JobPrompt) and m.job_id == job
        )
    await answer(mallory, "mallory", job_m, action="print", account="physics", pin=WRONG_PIN)
    assert "wrong PIN" in (await next_result(system, "mallory", job_m)).reason
    broken = json.loads(encode_answer(job_m, "mallory", BROKEN_PIN))
    await send_raw(
        mallory,
        "mallory",
        json.dumps({**broken, "free": 1}).encode(),
        "desktop.job_answer",
        "mallory",
    )
    await answer(alice, "alice", job_a, action="print", account="physics", pin=RIGHT_PIN)
    assert (await next_result(system, "alice", job_a)).outcome == "authorized"
    await answer(mallory, "mallory", job_m, action="cancel")
    assert (await next_result(system, "mallory", job_m)).outcome == "cancelled"
    await asyncio.sleep(2)  # the last outbox rows published, the dead letter in its queue

    assert await _rows_holding(system.database_url, secrets) == []
    assert await _queued_holding(system, secrets) == []
    for service in ("job-capture", "pricing", "account-ledger", "notification"):
        log = system.services.log(service)
        assert log, f"no log from {service}"
        assert not [s for s in secrets if s in log], f"a secret in {service}'s log"


def encode_answer(job_id, login: str, pin: str) -> bytes:
    return encode(JobAnswer(job_id=job_id, user=login, action="print", account="physics", pin=pin))
