"""The compose stack (deploy/containers) as an administrator runs it: images built from the
local Debian base, the stack up with every health check green, the README tour's core
against it, what the running stack must never have (guest, a superuser service, a
plaintext AMQP port), a second `up` that keeps every password (a job still charged after the
broker and the database restart), then down with nothing left.

It drives podman's Docker API (a private `podman system service` socket of its own) with
docker-compose, as the README says. deploy/local/install-system-packages.sh installs both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from platen.localstack.demo import make_pdf
from platen.localstack.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/containers/compose.yaml"
# The long-running services with a health check; init and secrets run once and exit.
SERVICES = (
    "rabbitmq", "postgres", "job-capture", "pricing", "account-ledger", "notification",
    "print-server",
)  # fmt: skip
PUBLISHED = {"5671/tcp", "631/tcp"}  # AMQPS for desktops, IPP for print clients


# Run in a service's container: every service's readiness, pricing's count of handled
# job.captured, and whether the broker's Prometheus endpoint answers.
SCRAPE = """
import json, time, urllib.error, urllib.request
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
names = ("job-capture", "pricing", "account-ledger", "notification")
deadline = time.monotonic() + 120
while True:  # a delivery is counted once acknowledged: wait for it, not a moment
    ready = {n: get(f"http://{n}:9464/health/ready")[0] for n in names}
    _, text = get("http://pricing:9464/metrics")
    captured = sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith("platen_messages_handled_total{") and 'type="job.captured"' in line
    )
    if (captured and set(ready.values()) == {200}) or time.monotonic() > deadline:
        break
    time.sleep(1)
_, broker = get("http://rabbitmq:15692/metrics")
print(json.dumps({"ready": ready, "captured_at_pricing": captured,
                  "broker_metrics": "rabbitmq_build_info" in broker}))
"""


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({out.returncode}):\n{out.stdout}{out.stderr}"
        )
    return out.stdout


def podman(*args: str, timeout: float = 120) -> str:
    return run("podman", *args, timeout=timeout)


@pytest.fixture(scope="module")
def images() -> None:
    """Built once per run; the base image once per machine (build.sh skips it if present)."""
    started = time.monotonic()
    run(str(ROOT / "deploy/containers/build.sh"), timeout=1800)
    print(f"images built in {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory) -> Iterator[str]:
    """podman's Docker API on a socket of this test's own, stopped afterwards."""
    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert service.poll() is None, "podman system service exited"
            assert time.monotonic() < deadline, "podman system service did not start"
            time.sleep(0.2)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(30)


class Stack:
    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def compose(self, *args: str, timeout: float = 600) -> str:
        base = ["docker-compose", "-f", str(COMPOSE), "-p", self.project]
        return run(*base, *args, env=self.env, timeout=timeout)

    def ctl(self, *args: str, mount: Path | None = None) -> str:
        volume = ["-v", f"{mount}:{mount}:ro"] if mount else []
        return self.compose("run", "--rm", "-T", *volume, "ctl", *args, timeout=180)

    def containers(self) -> list[dict]:
        found = podman(
            "ps",
            "-a",
            "--format",
            "json",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
        )
        return json.loads(found or "[]")

    def container(self, service: str) -> str:
        [name] = [
            c["Names"][0]
            for c in self.containers()
            if c["Labels"].get("com.docker.compose.service") == service
        ]
        return name

    def health(self) -> dict[str, str]:
        status = {}
        for c in self.containers():
            service = c["Labels"].get("com.docker.compose.service")
            if service in SERVICES:
                state = podman("inspect", "--format", "{{.State.Health.Status}}", c["Names"][0])
                status[service] = state.strip()
        return status

    def down(self) -> None:
        # Everything goes: containers, the network and the named volumes (secrets too).
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20")

    def exec(self, service: str, *argv: str) -> str:
        return podman("exec", self.container(service), *argv)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (health := self.health()) != dict.fromkeys(SERVICES, "healthy"):
            if time.monotonic() > deadline:
                logs = self.compose("logs", "--no-color", "--tail", "40")
                raise AssertionError(f"not healthy: {health}\n{logs}")
            time.sleep(3)

    def wait_installed(self, times: int, timeout: float) -> None:
        """Until the init job has ended its `install` step `times` times in all."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.compose("logs", "--no-color", "init")
            [init] = [c for c in self.containers() if c["Names"][0] == self.container("init")]
            if logs.count("installed: ") == times and init["State"] == "exited":
                return
            assert time.monotonic() < deadline, f"init did not end {times} times:\n{logs}"
            time.sleep(2)

    def secret_digests(self) -> dict[str, str]:
        """Each service's settings (its URLs, with its broker and database passwords) and
        the database superuser's password, by SHA-256: what must not change between `up`s."""
        digests = {
            service: self.exec(service, "sha256sum", "/run/platen/platen.env").split()[0]
            for service in ("job-capture", "pricing", "account-ledger", "notification")
        }
        digests["postgres"] = self.exec(
            "postgres", "sha256sum", "/run/platen/superuser.password"
        ).split()[0]
        return digests


@pytest.fixture(scope="module")
def stack(images, docker_host, tmp_path_factory) -> Iterator[Stack]:
    project = f"platentest{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "PLATEN_AMQPS_PORT": str(free_port()),
        "PLATEN_IPP_PORT": str(free_port()),
    }
    s = Stack(project, env)
    # No systemd here, so podman runs no health check by itself (see the script). Every
    # 5 s, not 3: each round runs seven checks (four of them a Python program in its
    # container); alone, the test spent 68 CPU-s instead of 77, and 4 s more waiting.
    checks = subprocess.Popen(
        [str(ROOT / "deploy/containers/podman-healthchecks.sh"), project, "5"],
        start_new_session=True,
    )
    try:
        started = time.monotonic()
        try:
            s.compose("up", "-d", timeout=900)
        except AssertionError as exc:
            states = {c["Names"][0]: c["State"] for c in s.containers()}
            logs = s.compose("logs", "--no-color", "--tail", "30")
            raise AssertionError(f"{exc}\n{states}\n{s.health()}\n{logs}") from None
        s.wait_healthy(timeout=300)
        print(f"stack up and healthy in {time.monotonic() - started:.0f} s")
        yield s
    finally:
        s.down()  # again, if the test stopped before its own
        os.killpg(checks.pid, signal.SIGTERM)
        checks.wait(10)


def test_the_stack_is_healthy_runs_the_tour_and_exposes_nothing_else(stack, tmp_path):
    # Every long-running service's health check is green (the fixture waited for it).
    assert stack.health() == dict.fromkeys(SERVICES, "healthy")

    # A service's health check speaks for its own container and identity only: asked
    # about pricing's queues in job-capture's container, it fails.
    wrong = subprocess.run(
        ["podman", "exec", stack.container("job-capture"), "/app/deploy/entry.sh",
         "env", "PLATEN_HEALTH_QUEUES=pricing.commands,pricing.events",
         "python", "-m", "platen.operations.health", "pricing"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 1 and "no consumer on pricing.commands" in wrong.stdout, wrong

    # The README tour's core, through platenctl signed in as the admin identity.
    stack.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    stack.ctl("user", "add", "alice", "--balance", "5.00")
    document = tmp_path / "report.pdf"
    document.write_bytes(make_pdf(3))
    document.chmod(0o644)
    tmp_path.chmod(0o755)  # platenctl runs as the image's unprivileged user
    printed = stack.ctl(
        "print", str(document), "--user", "alice", "--printer", "lab-1", "--wait", mount=tmp_path
    )
    assert "printed" in printed, printed
    alice = json.loads(stack.ctl("user", "show", "alice", "--json"))
    assert Decimal(alice["balance"]) == Decimal("4.70")  # 3 pages at 0.10

    # Each service serves its health and metrics on the compose network: ready, and
    # pricing counted alice's job.captured. The broker serves its own metrics too.
    scraped = json.loads(stack.exec("job-capture", "python", "-c", SCRAPE))
    assert set(scraped["ready"].values()) == {200}, scraped
    assert scraped["captured_at_pricing"] >= 1, scraped
    assert scraped["broker_metrics"], scraped

    # No `guest` on the broker: it never made one (its default user is the installer's).
    users = stack.exec(
        "rabbitmq", "runuser", "-u", "rabbitmq", "--", "rabbitmqctl", "list_users", "-q", "-s"
    )
    names = {line.split()[0] for line in users.splitlines() if line.strip()}
    assert "guest" not in names and "platen-job-capture" in names, names

    # No plaintext AMQP listener at all, so none can be published.
    listeners = stack.exec(
        "rabbitmq", "runuser", "-u", "rabbitmq", "--", "rabbitmq-diagnostics", "-q", "listeners"
    )
    protocols = {
        line.split("protocol: ")[1].split(",")[0]
        for line in listeners.splitlines()
        if "protocol: " in line
    }
    assert "amqp/ssl" in protocols and "amqp" not in protocols, listeners
    # The broker's health check opens exactly the ports it listens on.
    ports = {
        line.split("port: ")[1].split(",")[0] for line in listeners.splitlines() if "port: " in line
    }
    health = (ROOT / "deploy/containers/rabbitmq/health.sh").read_text()
    [check] = [line for line in health.splitlines() if line.startswith("for port in ")]
    assert set(check.split("for port in ")[1].split(";")[0].split()) == ports, listeners

    # Only AMQPS and IPP are published, by the broker and the print server.
    published = {
        (c["Labels"]["com.docker.compose.service"], f"{p['container_port']}/{p['protocol']}")
        for c in stack.containers()
        for p in c.get("Ports") or []
    }
    assert published == {("rabbitmq", "5671/tcp"), ("print-server", "631/tcp")}, published

    # Every service signs in to PostgreSQL as its own role, none a superuser.
    sessions = stack.exec(
        "postgres", "sh", "-c",
        "PGPASSWORD=$(cat /run/platen/superuser.password) psql -h /tmp -U postgres -d platen "
        "-AtF, -c \"SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a "
        "JOIN pg_roles r ON r.rolname = a.usename "
        "WHERE a.datname = 'platen' AND a.pid <> pg_backend_pid()\"",
    )  # fmt: skip
    roles = dict(line.split(",") for line in sessions.splitlines() if line)
    # (platen.db.roles: <database>_<schema>)
    assert set(roles) == {
        "platen_job_capture",
        "platen_pricing",
        "platen_ledger",
        "platen_notification",
    }, roles
    assert set(roles.values()) == {"f"}, roles

    # A second `up` (an administrator's routine, after a change or a host reboot) runs the
    # installer again. It keeps every identity's password, so the services that kept
    # running and the servers still agree when each signs in anew: after the broker and the
    # database restart, a job still goes through and is charged. (Compared by digest: a
    # password never reaches the test's output.)
    before = stack.secret_digests()
    stack.compose("up", "-d", timeout=900)
    stack.wait_installed(times=2, timeout=300)  # `up -d` does not wait for the job to end
    assert stack.secret_digests() == before
    stack.compose("restart", "rabbitmq", "postgres", timeout=300)
    stack.wait_healthy(timeout=300)
    document.write_bytes(make_pdf(2))
    printed = stack.ctl(
        "print", str(document), "--user", "alice", "--printer", "lab-1", "--wait",
        "--timeout", "120", mount=tmp_path,
    )  # fmt: skip
    assert "printed" in printed, printed
    alice = json.loads(stack.ctl("user", "show", "alice", "--json"))
    assert Decimal(alice["balance"]) == Decimal("4.50")  # and 2 pages more at 0.10

    # Down, volumes too: no container, volume or network of the stack remains.
    stack.down()
    assert stack.containers() == []
    volumes = podman("volume", "ls", "--format", "{{.Name}}").split()
    assert [v for v in volumes if v.startswith(stack.project)] == []
    networks = podman("network", "ls", "--format", "{{.Name}}").split()
    assert [n for n in networks if n.startswith(stack.project)] == []
