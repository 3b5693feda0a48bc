"""The compose stack's init job: what an installer does, with the code `make run` uses.

    python init.py secrets   # before the servers start: TLS, the installer, the superuser
    python init.py install   # once they answer: topology, identities, roles, migrations
    python init.py print-server   # once notification answers: the print server's identity

Each secret lands in the volume of the one container that needs it, as a file (mounted at
/run/platen there), never in the compose file or a container's configuration:

| volume (here)        | written                                  | read by            |
|----------------------|------------------------------------------|--------------------|
| /secrets/init        | the CA's key, the installer's passwords   | this job only      |
| /secrets/broker      | server certificate and key, installer.conf | rabbitmq          |
| /secrets/db          | superuser.password                       | postgres           |
| /secrets/<identity>  | platen.env (its URLs), ca.pem            | that service       |

`install` runs at every `up`: the topology and roles are brought up to date. Every
identity keeps the password made at the first `up` (kept in the init volume): a second
`up` does not recreate the services that already run, and they sign in again with what
they started with whenever the broker or the database restarts. To renew one, delete its
file in the init volume (`broker-<user>.password`, `db-<service>.password`) and recreate
the stack's services.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from platen.broker_setup.installation import Installed, install, with_credentials
from platen.ctl.identity import write_private
from platen.db.roles import ensure_database, with_login
from platen.localstack.services import MODULES, ServiceProcesses
from platen.localstack.tls import make_test_ca
from platen.messaging.topology import consumer_queues

SECRETS = Path(os.environ.get("PLATEN_SECRETS_ROOT", "/secrets"))
INIT = SECRETS / "init"
BROKER_HOST = os.environ.get("PLATEN_BROKER_HOST", "rabbitmq")
DB_HOST = os.environ.get("PLATEN_DB_HOST", "postgres")
DATABASE = os.environ.get("PLATEN_DATABASE", "platen")
INSTALLER = "platen-installer"
# Where each container finds its secrets volume (compose.yaml mounts it there).
MOUNTED = Path("/run/platen")
# The unprivileged user the Platen image runs its services as.
RUNTIME_USER = "platen"
PRINT_SERVER = os.environ.get("PLATEN_PRINT_SERVER_NAME", "print-server")


def secret(name: str) -> str:
    """A password kept in the init volume: made once, the same at every later run.

    Written whole or not at all (a file beside it, then renamed): a full disk or a crash
    while it is written would otherwise keep an empty password for every later `up`, which
    the broker refuses and PostgreSQL clears. An empty one (an older init's) is made again:
    nothing can have signed in with it."""
    path = INIT / name
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    part = path.with_name(path.name + ".part")
    try:
        write_private(part, secrets.token_urlsafe(24))
        with open(part, "rb") as kept:
            os.fsync(kept.fileno())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path.read_text().strip()


def give(path: Path, text: str, owner: str | None = None) -> None:
    write_private(path, text)
    if owner:
        shutil.chown(path, owner, owner)


def make_secrets() -> None:
    """TLS for the broker, its installer identity (so it makes no `guest`) and the
    database superuser's password: kept if present, so a restart changes nothing."""
    INIT.mkdir(parents=True, exist_ok=True)
    INIT.chmod(0o700)
    # Desktops reach the broker by the site's own name: PLATEN_BROKER_NAMES adds it.
    extra = [n.strip() for n in os.environ.get("PLATEN_BROKER_NAMES", "").split(",") if n.strip()]
    tls = make_test_ca(
        INIT / "tls", days=3650, names=(BROKER_HOST, "localhost", "127.0.0.1", *extra)
    )
    broker = SECRETS / "broker"
    shutil.copy(tls.ca_cert, broker / "ca.pem")
    shutil.copy(tls.server_cert, broker / "server.pem")
    give(broker / "server-key.pem", tls.server_key.read_text())
    give(
        broker / "installer.conf",
        f"default_user = {INSTALLER}\n"
        f"default_pass = {secret('installer.password')}\n"
        "default_user_tags.administrator = true\n"
        "default_permissions.configure = .*\n"
        "default_permissions.read = .*\n"
        "default_permissions.write = .*\n",
    )
    give(SECRETS / "db" / "superuser.password", secret("superuser.password") + "\n")
    print("secrets ready", flush=True)


def env_file(values: dict[str, str]) -> str:
    # Read by a shell (entry.sh): single quotes keep `?` and `&` as they are.
    for value in values.values():
        if "'" in value:
            raise ValueError("a quote in a setting")
    return "".join(f"{key}='{value}'\n" for key, value in values.items())


def settings(identity: str, installed: Installed, database_urls: dict[str, str]) -> dict[str, str]:
    """What the container of `identity` (a service, or "admin" for platenctl) is given."""
    values = {"PLATEN_AMQP_URL": installed.urls[identity]}
    if identity in MODULES:
        values["PLATEN_DATABASE_URL"] = database_urls[identity]
        # Read-only management access: the health check looks for the service's
        # consumers (platen.operations.health); job-capture also reads desktops' presence.
        values["PLATEN_BROKER_MONITOR_URL"] = installed.presence_monitor_url
        values["PLATEN_HEALTH_QUEUES"] = ",".join(q.name for q in consumer_queues(identity))
    if identity == "notification":
        values["PLATEN_BROKER_MANAGEMENT_URL"] = installed.identity_manager_url
    return values


def install_platen() -> None:
    ca = MOUNTED / "ca.pem"
    installer_pw = secret("installer.password")
    amqp = f"amqps://{BROKER_HOST}:5671/?cafile={INIT / 'tls' / 'ca.pem'}"
    installer = with_credentials(amqp, INSTALLER, installer_pw)
    management = with_credentials(f"http://{BROKER_HOST}:15672", INSTALLER, installer_pw)
    superuser = with_login(
        f"postgresql://{DB_HOST}:5432/postgres", "postgres", secret("superuser.password")
    )
    asyncio.run(ensure_database(superuser, DATABASE))
    database = superuser.rsplit("/", 1)[0] + f"/{DATABASE}"
    installed = asyncio.run(
        install(
            installer,
            management,
            disable_guest=True,
            passwords=lambda user: secret(f"broker-{user}.password"),
        )
    )
    # Each service's migrations run as its schema's owner; it signs in as its own role.
    provisioned = ServiceProcesses(installer, database, INIT / "logs")
    provisioned.provision(passwords=lambda service: secret(f"db-{service}.password"))

    def inside(url: str) -> str:
        # The same identity, with the CA where the container finds it.
        return url.replace(f"cafile={INIT / 'tls' / 'ca.pem'}", f"cafile={ca}")

    for identity in (*MODULES, "admin"):
        values = settings(identity, installed, provisioned.database_urls)
        values["PLATEN_AMQP_URL"] = inside(values["PLATEN_AMQP_URL"])
        folder = SECRETS / identity
        shutil.copy(INIT / "tls" / "ca.pem", folder / "ca.pem")
        give(folder / "platen.env", env_file(values), RUNTIME_USER)
    print(f"installed: {', '.join(MODULES)} and admin", flush=True)


def add_print_server() -> None:
    """The print server's own identity, which the notification service issues (so this
    runs once it is up): platenctl, signed in as the admin identity, writes the backend's
    configuration into the print server's volume."""
    config = SECRETS / "print-server" / "cups-backend.conf"
    if config.exists():  # made at an earlier `up`: the running print server holds it
        print(f"print server {PRINT_SERVER} kept", flush=True)
        return
    subprocess.run(
        ["platenctl", "printserver", "add", PRINT_SERVER,
         "--output", str(config), "--state-dir", "/var/lib/platen-backend"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    shutil.copy(MOUNTED / "ca.pem", SECRETS / "print-server" / "ca.pem")
    print(f"print server {PRINT_SERVER} added", flush=True)


if __name__ == "__main__":
    steps = {"secrets": make_secrets, "install": install_platen, "print-server": add_print_server}
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        raise SystemExit(f"usage: init.py {' | '.join(steps)}")
    steps[sys.argv[1]]()
