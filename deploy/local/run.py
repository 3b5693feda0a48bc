"""`make run`: the whole of Platen on this machine, as local processes under ./run.

RabbitMQ, PostgreSQL and the four services start from private folders of the checkout
(data survives between runs), demo data is loaded, and Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from platen.broker_setup.broker_admin import new_password
from platen.broker_setup.installation import install, with_credentials
from platen.ctl.identity import write_private
from platen.db.roles import ensure_database
from platen.localstack.cups import LocalCups, VirtualPrinter
from platen.localstack.demo import make_pdf
from platen.localstack.servers import InfraError, LocalPostgres, LocalRabbitMQ, traversable
from platen.localstack.services import ServiceProcesses
from platen.localstack.tls import make_test_ca

ROOT = Path(__file__).resolve().parents[2]
RUN = Path(os.environ.get("PLATEN_RUN_DIR", ROOT / "run"))
AMQP_PORT = int(os.environ.get("PLATEN_RUN_AMQP_PORT", "5673"))
PG_PORT = int(os.environ.get("PLATEN_RUN_PG_PORT", "5433"))
MANAGEMENT_PORT = int(os.environ.get("PLATEN_RUN_MANAGEMENT_PORT", "15673"))
DIST_PORT = int(os.environ.get("PLATEN_RUN_DIST_PORT", "25673"))
CUPS_PORT = int(os.environ.get("PLATEN_RUN_CUPS_PORT", "6631"))
AMQPS_PORT = int(os.environ.get("PLATEN_RUN_AMQPS_PORT", "5674"))
PROMETHEUS_PORT = int(os.environ.get("PLATEN_RUN_PROMETHEUS_PORT", "15692"))
INSTALLER = "platen-installer"
# The one print server `make run` has: its cupsd, signed in as itself.
PRINT_SERVER = "make-run"
# The virtual printers behind the demo's Platen queues: name -> price per page.
DEMO_PRINTERS = {"lab-mono": "0.05", "lab-color": "0.10"}
MONOCHROME = {"lab-mono"}  # a grayscale printer: it reports no colour support


def ctl(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "platen.ctl", *args], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"platenctl {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout.strip()


def main() -> None:
    RUN.mkdir(exist_ok=True)
    RUN.chmod(0o755)
    tls = make_test_ca(RUN / "tls", days=3650)
    rabbit = LocalRabbitMQ(
        RUN / "rabbitmq",
        plaintext=False,  # AMQP over TLS only, even on loopback
        amqp_port=AMQP_PORT,
        management_port=MANAGEMENT_PORT,
        dist_port=DIST_PORT,
        nodename="platen@localhost",
        tls=(tls.ca_cert, tls.server_cert, tls.server_key),
        amqps_port=AMQPS_PORT,
        prometheus_port=PROMETHEUS_PORT,
    )
    pg = LocalPostgres(reachable_folder("postgres"), port=PG_PORT)
    services: ServiceProcesses | None = None
    cups: LocalCups | None = None
    printers: list[VirtualPrinter] = []
    try:
        print(f"Starting RabbitMQ on port {AMQPS_PORT} and PostgreSQL on port {PG_PORT}...")
        rabbit.start()
        pg.start()
        asyncio.run(ensure_database(pg.admin_dsn, "platen"))
        database_url = pg.admin_dsn.rsplit("/", 1)[0] + "/platen"
        installer = installer_url(rabbit)
        installed = asyncio.run(
            install(installer, management_url(rabbit, installer), disable_guest=True)
        )
        # platenctl's identity; no database credential (platenctl uses the broker only).
        write_private(
            RUN / "platen.env",
            f"PLATEN_AMQP_URL={installed.urls['admin']}\nCUPS_SERVER=127.0.0.1:{CUPS_PORT}\n",
        )
        services = ServiceProcesses(
            installer,
            database_url,
            RUN / "logs",
            # Each management-API key to its one service only.
            own_env={
                "notification": {"PLATEN_BROKER_MANAGEMENT_URL": installed.identity_manager_url},
                "job-capture": {"PLATEN_BROKER_MONITOR_URL": installed.presence_monitor_url},
            },
            service_urls=installed.urls,
        )
        # Migrations as each schema's owner; each service signs in as its own role, with a
        # password made for this run (platen.db.roles).
        services.provision()
        services.start_all()
        env = {**os.environ, "PLATEN_AMQP_URL": installed.urls["admin"]}
        # Each service's line names its metrics and health address.
        print(ctl("status", "--timeout", "60", env=env))
        print(f"RabbitMQ's metrics: http://127.0.0.1:{PROMETHEUS_PORT}/metrics")
        cups, printers = start_print_server(env)
        load_demo(env)
        print_tour()
        wait_for_interrupt(services)
    except InfraError as exc:
        raise SystemExit(f"could not start the local system: {exc}") from None
    finally:
        print("\nStopping Platen...")
        if cups is not None:
            cups.stop()
        for printer in printers:
            printer.stop()
        if services is not None:
            services.stop_all()
        pg.stop()
        rabbit.stop()
        print("Stopped.")


def installer_url(rabbit: LocalRabbitMQ) -> str:
    """The broker administrator this script installs Platen with, over TLS.

    On the first run it is made with the broker's default guest user, which the
    installation then deletes; its password is kept, owner-only, in run/installer.secret.
    """
    secret = RUN / "installer.secret"
    if not secret.exists():
        password = new_password()
        guest = httpx.Client(base_url=rabbit.management_url, auth=("guest", "guest"), timeout=30)
        guest.put(
            f"/api/users/{INSTALLER}", json={"password": password, "tags": "administrator"}
        ).raise_for_status()
        guest.put(
            f"/api/permissions/%2F/{INSTALLER}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        write_private(secret, password)
    assert rabbit.amqps_url is not None
    return with_credentials(rabbit.amqps_url, INSTALLER, secret.read_text().strip())


def management_url(rabbit: LocalRabbitMQ, installer: str) -> str:
    parts = urlsplit(installer)
    return with_credentials(rabbit.management_url, parts.username or "", parts.password or "")


def reachable_folder(name: str) -> Path:
    """A folder under run/ that other users can reach: PostgreSQL runs as `postgres` and
    CUPS filters as `lp`. A checkout under a private home (e.g. /root) is not reachable;
    then the folder lives in /var/tmp instead, named after the checkout."""
    folder = RUN / name
    if os.geteuid() != 0 or traversable(folder):
        return folder
    fallback = Path("/var/tmp") / f"platen-{zlib.crc32(str(RUN).encode()):08x}" / name
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.parent.chmod(0o755)
    print(f"{RUN} is private to you, so {name} lives in {fallback}")
    return fallback


def start_print_server(env: dict[str, str]) -> tuple[LocalCups, list[VirtualPrinter]]:
    """cupsd with one Platen queue per demo printer, each an ippeveprinter that keeps
    what it receives under run/printers/<name>/received. The print server signs in as
    itself: `platenctl printserver add` writes its backend's config (owner-only)."""
    folder = reachable_folder("cups")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    config = folder / "cups-backend.conf"
    ctl(
        "printserver", "add", PRINT_SERVER,
        "--output", str(config), "--state-dir", str(folder / "state"),
        env=env,
    )  # fmt: skip
    cups = LocalCups(folder / "cupsd", config, port=CUPS_PORT).start()
    printers = []
    for name in DEMO_PRINTERS:
        printer = VirtualPrinter(name, reachable_folder("printers") / name)
        printer.start(color=name not in MONOCHROME)
        printers.append(printer)
        cups.add_queue(name, printer.uri)
    print(f"CUPS on port {CUPS_PORT} with Platen queues: {', '.join(DEMO_PRINTERS)}")
    return cups, printers


def load_demo(env: dict[str, str]) -> None:
    ctl("printer", "add", "lab-1", "--price-per-page", "0.10", env=env)
    for name, price in DEMO_PRINTERS.items():
        ctl("printer", "add", name, "--price-per-page", price, env=env)
    ctl("user", "add", "alice", "--balance", "5.00", env=env)
    ctl("user", "add", "bob", "--balance", "0.10", env=env)
    demo = RUN / "demo"
    demo.mkdir(exist_ok=True)
    (demo / "report.pdf").write_bytes(make_pdf(3))


def print_tour() -> None:
    print(
        f"""
Platen is running. Demo data: printer lab-1 at 0.10 a page; alice with 5.00; bob with 0.10.
In a second shell, from this checkout:

  .venv/bin/platenctl user credential alice --output run/alice.toml   # alice's sign-in
  .venv/bin/platen-client --config run/alice.toml --console &         # alice's desktop
  .venv/bin/platenctl print run/demo/report.pdf --user alice --printer lab-1 --wait
  .venv/bin/platenctl user show alice
  .venv/bin/platenctl jobs

Through the print server (a real cupsd; the document lands in run/printers/*/received).
Its queues are `desktop` queues: a job prints at once only when its user's own desktop
(alice's client, above) is the one signed in from the job's host; otherwise that user's
desktop is asked "Did you print ...?" first. No account of this host is used or changed.
Each job's backend hands the job to the print server's agent (its log: run/cups/cupsd/agent.log).

  CUPS_SERVER=127.0.0.1:{CUPS_PORT} lp -d lab-color -U alice run/demo/report.pdf

Logs: run/logs/. Press Ctrl-C to stop.
"""
    )


def wait_for_interrupt(services: ServiceProcesses) -> None:
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        for name, proc in services.procs.items():
            if proc.poll() is not None:
                print(f"{name} exited ({proc.returncode}); restarting it. See run/logs/{name}.log")
                services.start(name)
        time.sleep(1)


if __name__ == "__main__":
    main()
