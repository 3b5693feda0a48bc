"""The user client on the real system, in `--json` mode: prompts, answers and outcomes."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D

import pytest
from aiormq.exceptions import ChannelAccessRefused

from platen.events.desktop import AnswerResult, BroadcastNotice, JobAnswer
from platen.testing.documents import make_pdf
from tests.e2e.clientproc import ClientProcess, desktop_url
from tests.e2e.helpers import (
    EventRecorder,
    eventually,
    ledger_problems,
    submit_jobs,
    wait_settled,
)

# One running system for the module: a test that shares it has a user of its own (ann,
# ben, dan, eve, fay, gus) and looks only at that user's jobs, desktop and balance; the
# others are marked `own_system` and say why.
pytestmark = pytest.mark.shared_system


@pytest.fixture
def client_for(desktops, tmp_path):
    """A client signed in as the user's own broker identity, as on a real desktop."""
    started: list[ClientProcess] = []

    def start(login: str, *extra: str) -> ClientProcess:
        state = tmp_path / f"state-{len(started)}"
        c = ClientProcess(None, None, state, "--config", str(desktops(login)), *extra)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def is_answer_result(message) -> bool:
    return isinstance(message, AnswerResult)


def is_broadcast(message) -> bool:
    return isinstance(message, BroadcastNotice)


def job_states(system) -> dict[str, str]:
    return {j["job_id"]: j["state"] for j in json.loads(system.ctl("jobs", "--json").stdout)}


def confirm_user(system, login: str, balance: str = "5.00") -> None:
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", login, "--balance", balance)
    system.ctl("user", "set", login, "--selection", "confirm")


async def test_confirmed_from_the_client_prints_and_is_charged(system, client_for):
    confirm_user(system, "ann")
    client = client_for("ann")
    await client.wait_for("client.status", state="connected")
    [job] = await submit_jobs(system.amqp_url, "ann", "lab-1", make_pdf(3), 1)
    [prompt] = await client.wait_for("desktop.job_prompt", job_id=job)
    assert prompt["kind"] == "confirm" and prompt["cost"] == "0.30" and prompt["sides"] == 3
    assert prompt["printer"] == "lab-1" and prompt["document_name"] == "doc-0.pdf"
    # The job waits for the answer: nothing is held or printed yet.
    await asyncio.sleep(1)
    assert job_states(system)[str(job)] != "printed"
    assert D(system.user_json("ann")["held"]) == 0
    client.send(job_id=job, action="print")
    [result] = await client.wait_for("desktop.answer_result", job_id=job)
    assert result["outcome"] == "authorized" and result["amount"] == "0.30"
    await client.wait_for("desktop.prompt_closed", job_id=job, outcome="authorized")
    [printed] = await client.wait_for("desktop.job_printed", job_id=job)
    assert printed["cost"] == "0.30" and printed["balance"] == "4.70"
    assert job_states(system)[str(job)] == "printed"
    assert D(system.user_json("ann")["balance"]) == D("4.70")
    assert await ledger_problems(system.database_url) == []


async def test_cancelled_from_the_client_is_not_charged(system, client_for):
    confirm_user(system, "ben")
    client = client_for("ben")
    [job] = await submit_jobs(system.amqp_url, "ben", "lab-1", make_pdf(2), 1)
    await client.wait_for("desktop.job_prompt", job_id=job)
    client.send(job_id=job, action="cancel")
    [result] = await client.wait_for("desktop.answer_result", job_id=job)
    assert result["outcome"] == "cancelled"
    [closed] = await client.wait_for("desktop.prompt_closed", job_id=job)
    assert closed["outcome"] == "cancelled" and "cancelled by ben" in closed["reason"]

    # job-capture cancels the job when it takes the ledger's `job.cancelled`, which the
    # desktop's messages above do not wait for.
    async def cancelled() -> bool:
        return job_states(system).get(str(job)) == "cancelled"

    assert await eventually(cancelled), job_states(system)
    ben = system.user_json("ben")
    assert D(ben["balance"]) == D("5.00") and D(ben["held"]) == 0


# The deadline leaves the prompt time to reach the desktop on a loaded machine: at 5 s,
# under the load of a whole suite's start, the prompt once expired on its way and was
# never shown.
@pytest.mark.service_env(PLATEN_JOB_DEADLINE_SECONDS="15", PLATEN_INPUT_DEADLINE_SECONDS="15")
# Its own deadlines (service_env).
@pytest.mark.own_system
async def test_unanswered_prompt_expires_and_a_late_client_does_not_see_it(system, client_for):
    confirm_user(system, "bob")
    client = client_for("bob")
    async with EventRecorder(system.amqp_url) as events:
        [job] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)
        await client.wait_for("desktop.job_prompt", job_id=job)
        [closed] = await client.wait_for("desktop.prompt_closed", job_id=job, timeout=60)
        assert closed["outcome"] == "cancelled" and "deadline" in closed["reason"]
        await events.wait_for("job.cancelled", 1)

    # At the deadline the ledger may be the one that cancels: job-capture then takes its
    # `job.cancelled` later.
    async def cancelled() -> bool:
        return job_states(system).get(str(job)) == "cancelled"

    assert await eventually(cancelled), job_states(system)
    assert D(system.user_json("bob")["balance"]) == D("5.00")
    client.stop()
    # A job nobody answered while no client ran: its prompt's TTL runs out in the queue
    # (at the prompt's deadline, which is no later than the job's expiry), so a client
    # started once the job has expired never shows it.
    [late] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)

    async def expired() -> bool:
        return job_states(system).get(str(late)) == "cancelled"

    assert await eventually(expired, timeout=90, interval=1)
    again = client_for("bob")
    await again.wait_for("desktop.prompt_closed", job_id=late, timeout=30)
    assert again.of_type("desktop.job_prompt", job_id=late) == []
    assert job_states(system)[str(late)] == "cancelled"


# The deadline leaves the prompt time to reach the desktop on a loaded machine (a prompt
# whose deadline passes on its way is never shown at all: at 8 s, once, under load 11 it
# did); the job's own deadline comes well after, so the late answer meets a waiting job.
@pytest.mark.service_env(PLATEN_JOB_DEADLINE_SECONDS="120", PLATEN_INPUT_DEADLINE_SECONDS="20")
@pytest.mark.own_system
async def test_an_answer_after_the_deadline_does_not_print(system, client_for, desktops):
    confirm_user(system, "bob")
    client = client_for("bob")
    [job] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)
    await client.wait_for("desktop.job_prompt", job_id=job, timeout=60)
    # The prompt's deadline passes with the client still showing it: the client itself
    # closes a prompt whose deadline has passed...
    await client.wait_for("client.prompt_closed", job_id=job, timeout=60)
    client.send(job_id=job, action="print")
    [error] = await client.wait_for("client.error")
    assert "no such job" in error["error"]
    # ...and a script that answers anyway (a client that ignores deadlines) is refused.
    bob = desktop_url(desktops("bob"))
    await publish_reply(
        bob, "bob", JobAnswer(job_id=job, user="bob", action="print"), user_id="bob"
    )
    [refused] = await client.wait_for("desktop.answer_result", job_id=job)
    assert refused["outcome"] == "refused" and "deadline" in refused["reason"]
    await asyncio.sleep(1)
    assert job_states(system)[str(job)] != "printed"
    assert D(system.user_json("bob")["balance"]) == D("5.00")


async def publish_reply(
    amqp_url: str,
    login: str,
    reply,
    routing_login: str | None = None,
    user_id: str | None = None,
    routing_key: str | None = None,
):
    """Publish a reply as a hand-written desktop program would."""
    import uuid
    from datetime import UTC, datetime

    import aio_pika

    from platen.events.base import HEADER_VERSION
    from platen.events.registry import encode
    from platen.events.routing import DESKTOP_REPLIES, desktop_key

    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange(DESKTOP_REPLIES, ensure=False)
        await ex.publish(
            aio_pika.Message(
                encode(reply),
                type=reply.message_type,
                message_id=str(uuid.uuid4()),
                headers={HEADER_VERSION: reply.schema_version},
                timestamp=datetime.now(UTC),
                correlation_id=str(reply.job_id),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                user_id=user_id,
            ),
            routing_key=routing_key or desktop_key(routing_login or login, "answer"),
        )


async def test_account_chosen_from_the_list_is_charged(system, client_for):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "eve", "--balance", "5.00")
    system.ctl("user", "set", "eve", "--selection", "choose")
    system.ctl("account", "add", "acme")
    system.ctl("account", "add", "globex")
    system.ctl("topup", "shared:acme", "10")
    system.ctl("account", "grant", "acme", "--user", "eve")
    system.ctl("account", "grant", "globex", "--user", "eve")
    client = client_for("eve")
    [job] = await submit_jobs(system.amqp_url, "eve", "lab-1", make_pdf(2), 1)
    [prompt] = await client.wait_for("desktop.job_prompt", job_id=job)
    assert prompt["kind"] == "choose_account"
    offered = {a["account"] for a in prompt["accounts"]}
    assert offered == {"personal:eve", "shared:acme", "shared:globex"}
    client.send(job_id=job, action="print", account="shared:acme", comment="project X")
    [result] = await client.wait_for("desktop.answer_result", job_id=job)
    assert result["outcome"] == "authorized" and result["account"] == "shared:acme"
    await client.wait_for("desktop.prompt_closed", job_id=job)
    await wait_printed(system, job)
    acme = json.loads(system.ctl("account", "show", "acme", "--json").stdout)
    assert D(acme["balance"]) == D("9.80")
    assert D(system.user_json("eve")["balance"]) == D("5.00")
    assert await ledger_problems(system.database_url) == []


async def wait_printed(system, job, timeout: float = 30) -> None:
    """Until `job` is printed and the ledger has charged it (which comes after: a balance
    read as soon as the job shows printed can still be the one before the charge)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while job_states(system).get(str(job)) != "printed":
        assert loop.time() < deadline, f"job {job} not printed: {job_states(system)}"
        await asyncio.sleep(0.3)
    await wait_settled(system, job, timeout=max(deadline - loop.time(), 10.0))


async def test_one_answer_for_all_waiting_jobs(system, client_for):
    confirm_user(system, "dan")
    client = client_for("dan")
    jobs = await submit_jobs(system.amqp_url, "dan", "lab-1", make_pdf(1), 3)
    for job in jobs:
        await client.wait_for("desktop.job_prompt", job_id=job)
    client.send(job_id=jobs[0], action="print", apply_to_all=True)
    for job in jobs:
        [r] = await client.wait_for("desktop.answer_result", job_id=job)
        assert r["outcome"] == "authorized"
    for job in jobs:
        await wait_printed(system, job)
    assert D(system.user_json("dan")["balance"]) == D("4.70")


# It reads the notification service's whole log.
@pytest.mark.own_system
async def test_a_reply_under_another_users_key_is_ignored(system, client_for, desktops):
    # The victim's login holds a dot, as Active Directory logins often do (`first.last`),
    # and the attacker's is its first word: the broker must keep `first`'s keys from
    # covering `first.last`'s, and `first.last` must print and answer like anyone.
    confirm_user(system, "first.last")
    system.ctl("user", "add", "first", "--balance", "5.00")
    client = client_for("first.last")
    [job] = await submit_jobs(system.amqp_url, "first.last", "lab-1", make_pdf(1), 1)
    await client.wait_for("desktop.job_prompt", job_id=job)
    mallory = desktop_url(desktops("first"))
    spoof = JobAnswer(job_id=job, user="first.last", action="print")
    # Her key with the victim's dot written as itself: outside her topic permission.
    with pytest.raises(ChannelAccessRefused):
        await publish_reply(mallory, "first.last", spoof, routing_key="user.first.last.answer")
    # Signed in as herself, claiming to be first.last under her own key: the claim shows.
    await publish_reply(mallory, "first.last", spoof, routing_login="first", user_id="first")
    # She answers first.last's job as herself: refused, and told so.
    mine = JobAnswer(job_id=job, user="first", action="print")
    await publish_reply(mallory, "first", mine, user_id="first")
    got = await system.desktop_messages("first", timeout=20, until=is_answer_result)
    assert got[-1].outcome == "refused" and "someone else" in got[-1].reason
    assert job_states(system)[str(job)] not in ("authorized", "released", "printed")
    assert client.of_type("desktop.answer_result") == []
    assert "sent under first's routing key" in system.services.log("notification")
    # The job still waits for first.last, who prints it and is charged.
    client.send(job_id=job, action="print")
    [r] = await client.wait_for("desktop.answer_result", job_id=job)
    assert r["outcome"] == "authorized"
    [printed] = await client.wait_for("desktop.job_printed", job_id=job)
    assert printed["cost"] == "0.10" and printed["balance"] == "4.90"
    assert D(system.user_json("first")["balance"]) == D("5.00")


async def test_bad_answers_get_a_clear_error_and_change_nothing(system, client_for):
    confirm_user(system, "fay")
    client = client_for("fay")
    [job] = await submit_jobs(system.amqp_url, "fay", "lab-1", make_pdf(1), 1)
    await client.wait_for("desktop.job_prompt", job_id=job)
    client.write("not json")
    client.write(json.dumps({"job_id": str(job), "action": "print-for-free"}))
    client.write(json.dumps({"job_id": str(job), "action": "print", "cost": "0"}))
    errors = await client.wait_for("client.error", 3)
    assert "not JSON" in errors[0]["error"]
    assert "print or cancel" in errors[1]["error"]
    assert "unknown key(s): cost" in errors[2]["error"]
    assert client.of_type("client.answer_sent") == []
    # The prompt is still open and can be answered properly.
    client.send(job_id=job, action="print")
    await client.wait_for("desktop.answer_result", job_id=job, outcome="authorized")


# It cuts every connection to its vhost, the services' too.
@pytest.mark.own_system
async def test_client_reconnects_and_loses_nothing(system, client_for, vhosts, vhost):
    confirm_user(system, "bob")
    client = client_for("bob")
    await client.wait_for("client.status", state="connected")
    [first] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)
    await client.wait_for("desktop.job_prompt", job_id=first)
    # Every connection dropped at once, as a broker restart does.
    closed = 0
    for _ in range(20):
        closed += vhosts.close_connections(vhost[0])
        if client.of_type("client.status", state="disconnected"):
            break
        await asyncio.sleep(0.5)
    await client.wait_for("client.status", state="disconnected")
    # The prompt shown before the cut is answered after it; a job sent meanwhile arrives.
    client.send(job_id=first, action="print")
    [second] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)
    await client.wait_for("client.status", 2, state="connected", timeout=60)
    await client.wait_for("desktop.answer_result", job_id=first, outcome="authorized")
    await client.wait_for("desktop.job_prompt", job_id=second)
    # Shown once, although it was unacknowledged and came again after the reconnect.
    assert len(client.of_type("desktop.job_prompt", job_id=first)) == 1
    client.send(job_id=second, action="print")
    await client.wait_for("desktop.answer_result", job_id=second, outcome="authorized")
    await wait_printed(system, first)
    await wait_printed(system, second)
    assert D(system.user_json("bob")["balance"]) == D("4.80")


# It counts every desktop of the system.
@pytest.mark.own_system
async def test_administrator_broadcast_reaches_the_desktop(system, client_for):
    system.ctl("user", "add", "bob")
    system.ctl("user", "add", "cat")
    client = client_for("bob")
    await client.wait_for("client.status", state="connected")
    out = system.ctl("broadcast", "Printers in room 2 are down until noon", "--sender", "IT")
    assert "sent to 2 desktops" in out.stdout
    [b] = await client.wait_for("desktop.broadcast")
    assert b["text"] == "Printers in room 2 are down until noon" and b["sender"] == "IT"
    got = await system.desktop_messages("cat", timeout=20, until=is_broadcast)
    assert got[-1].text == b["text"]


# It waits for the first `job.input_required` of any job.
@pytest.mark.own_system
async def test_a_client_started_late_or_again_shows_the_prompts_still_open(system, client_for):
    confirm_user(system, "bob")
    async with EventRecorder(system.amqp_url) as events:
        [job] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)
        await events.wait_for("job.input_required", 1)
    first = client_for("bob")  # started after the job asked
    await first.wait_for("desktop.job_prompt", job_id=job)
    first.stop()  # closed without answering: the prompt stays on the server
    second = client_for("bob")
    await second.wait_for("desktop.job_prompt", job_id=job)
    second.send(job_id=job, action="print")
    await second.wait_for("desktop.answer_result", job_id=job, outcome="authorized")
    await wait_printed(system, job)
    second.stop()
    # Once answered and closed, it is gone for good.
    third = client_for("bob")
    await third.wait_for("client.status", state="connected")
    await asyncio.sleep(2)
    assert third.of_type("desktop.job_prompt") == []


# It reads every `job.authorized` and the notification service's whole log.
@pytest.mark.own_system
async def test_replies_without_user_id_are_ignored(system):
    confirm_user(system, "bob")
    async with EventRecorder(system.amqp_url) as events:
        [job] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(1), 1)
        await events.wait_for("job.input_required", 1)
        # The test's own broker user (not bob) cannot claim to be bob: no user_id, no
        # answer.
        await publish_reply(
            system.amqp_url, "bob", JobAnswer(job_id=job, user="bob", action="print")
        )

        # Refused when notification takes the reply (waited for: on a loaded machine that
        # can take longer than a fixed pause), and nothing authorised after it.
        async def refused() -> bool:
            return "carries no user_id" in system.services.log("notification")

        assert await eventually(refused)
        await asyncio.sleep(2)  # a wrongful authorisation, were there one, would be in by now
        assert events.of_type("job.authorized") == []
    assert job_states(system)[str(job)] not in ("authorized", "released", "printed")


async def test_the_issued_config_file_signs_the_client_in_as_its_user(system, client_for):
    """`platenctl user credential` writes the config file every client here starts with:
    the client signs in as gus's own broker user, and its answers carry the `user_id`
    RabbitMQ checks (without it notification drops them, see above)."""
    confirm_user(system, "gus")
    client = client_for("gus")
    await client.wait_for("client.status", state="connected")
    [job] = await submit_jobs(system.amqp_url, "gus", "lab-1", make_pdf(1), 1)
    await client.wait_for("desktop.job_prompt", job_id=job)
    client.send(job_id=job, action="print")
    await client.wait_for("desktop.answer_result", job_id=job, outcome="authorized")
    await wait_printed(system, job)
    assert client.stderr == []  # no warning either: the file is private
