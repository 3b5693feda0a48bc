"""The backend's settings: where Platen is, and what to do per printer when it is not.

Read from an INI file (`PLATEN_BACKEND_CONFIG`, default /etc/platen/cups-backend.conf),
which CUPS backends can read whatever user they run as if it is readable:

    [platen]
    amqp_url = amqp://platen-cups:secret@print-server:5672/
    server_id = print-server-1      ; its name (`platenctl printserver add NAME` writes this file)
    state_dir = /var/lib/platen/cups-backend   ; ids and documents of unfinished CUPS jobs (0700)
    max_document_bytes = 16777216   ; as job-capture's PLATEN_MAX_DOCUMENT_BYTES
    heartbeat = 60                  ; seconds between "still printing" messages; keep it
                                    ; well under job-capture's release timeout
    login_domains = CORP, corp.example.org  ; CORP\alice and alice@corp.example.org
                                    ; print as alice (* for every domain)
    agent_socket = /run/platen/print-agent/agent.sock  ; the print server's agent (`agent`);
                                    ; empty: none, every job talks to the broker itself

    [printer:lab-color]
    offline = deny                  ; hold (default) or deny
    deadline = 600                  ; seconds a job may wait for a decision
"""

from __future__ import annotations

import configparser
import os
import socket
from collections import namedtuple

DEFAULT_PATH = "/etc/platen/cups-backend.conf"
DEFAULT_STATE_DIR = "/var/lib/platen/cups-backend"
# Where the print server's agent listens (PLATEN_AGENT_SOCKET overrides the file): in a
# folder only the backend's user can enter.
DEFAULT_AGENT_SOCKET = "/run/platen/print-agent/agent.sock"
# job-capture's default limit (PLATEN_MAX_DOCUMENT_BYTES). A larger document would not
# fit in one broker message (its base64 is a third larger), so the backend refuses it
# itself instead of taking the broker's refusal for an outage.
DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# While the printer is sent a released job, the backend tells job-capture this often that
# the job is still printing: far below job-capture's release timeout (default 3600 s).
DEFAULT_HEARTBEAT_SECONDS = 60.0


# Named tuples, not dataclasses: the backend reads its settings on every job, and
# `dataclasses` is costly to import (see decisions.Decision).
class PrinterPolicy(
    namedtuple(
        "PrinterPolicy",
        "offline offline_grace offline_wait deadline",
        defaults=("hold", 30.0, 3600.0, None),
    )
):
    """What the backend does for one printer while Platen is unreachable.

    `offline`: hold (default: keep the job and keep trying, never print free) or deny
    (cancel the job once Platen has been unreachable for `offline_grace` seconds).
    `offline_wait`: how long the backend keeps a job while Platen stays unreachable before
    handing it back to CUPS as held (an administrator can release it later).
    `deadline`: seconds a job may wait for a decision (None: Platen's default).
    """

    __slots__ = ()


class BackendConfig(
    namedtuple(
        "BackendConfig",
        "amqp_url server_id printers max_document_bytes heartbeat_seconds state_dir "
        "login_domains agent_socket",
        defaults=(
            DEFAULT_MAX_DOCUMENT_BYTES,
            DEFAULT_HEARTBEAT_SECONDS,
            DEFAULT_STATE_DIR,
            (),
            DEFAULT_AGENT_SOCKET,
        ),
    )
):
    """The backend's settings. `printers`: PrinterPolicy by queue name (`*` for every
    other). `login_domains`: domains (and Kerberos realms) taken off the user names CUPS
    gives (`CORP\\alice`): the login is what is left, in lower case
    (`platen.events.base.canonical_login`)."""

    __slots__ = ()

    def policy(self, printer: str) -> PrinterPolicy:
        return self.printers.get(printer, self.printers.get("*", PrinterPolicy()))


def load(path: str | None = None) -> BackendConfig:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    file = path or os.environ.get("PLATEN_BACKEND_CONFIG", DEFAULT_PATH)
    if os.path.exists(file):
        parser.read(file)
    section = parser["platen"] if parser.has_section("platen") else {}
    printers = {}
    for name in parser.sections():
        if not name.startswith("printer:"):
            continue
        s = parser[name]
        offline = s.get("offline", "hold")
        if offline not in ("hold", "deny"):
            raise ValueError(f"{file}: [{name}] offline must be hold or deny, not {offline!r}")
        printers[name.removeprefix("printer:")] = PrinterPolicy(
            offline=offline,
            offline_grace=s.getfloat("offline_grace", 30.0),
            offline_wait=s.getfloat("offline_wait", 3600.0),
            deadline=s.getint("deadline") if s.get("deadline") else None,
        )
    return BackendConfig(
        amqp_url=os.environ.get("PLATEN_AMQP_URL")
        or section.get("amqp_url", "amqp://guest:guest@127.0.0.1:5672/"),
        server_id=section.get("server_id", socket.gethostname()),
        printers=printers,
        max_document_bytes=_positive(
            file,
            os.environ.get("PLATEN_MAX_DOCUMENT_BYTES")
            or section.get("max_document_bytes", str(DEFAULT_MAX_DOCUMENT_BYTES)),
        ),
        heartbeat_seconds=_heartbeat(file, section.get("heartbeat", "")),
        state_dir=section.get("state_dir", DEFAULT_STATE_DIR),
        login_domains=tuple(
            d.strip() for d in section.get("login_domains", "").split(",") if d.strip()
        ),
        agent_socket=os.environ.get(
            "PLATEN_AGENT_SOCKET", section.get("agent_socket", DEFAULT_AGENT_SOCKET)
        ),
    )


def _heartbeat(file: str, text: str) -> float:
    if not text:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.1 <= value <= 3600:
        raise ValueError(f"{file}: heartbeat must be between 0.1 and 3600 seconds, not {text!r}")
    return value


def _positive(file: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{file}: max_document_bytes must be a positive number, not {text!r}")
    return value
