"""A real cupsd with virtual printers (ippeveprinter) behind Platen queues, wired to the
test's own Platen system (services as processes, fresh vhost and database)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from platen import rpc
from platen.events.print_identity import SetPrinterIdentity
from platen.localstack.cups import LocalCups, SlowPrinter, VirtualPrinter


@dataclass
class CupsRig:
    cups: LocalCups
    printers: dict[str, VirtualPrinter]
    slow: SlowPrinter | None = None

    @property
    def name(self) -> str:
        """The print server's name, as its backend config says."""
        for line in self.cups.backend_config.read_text().splitlines():
            if line.startswith("server_id = "):
                return line.removeprefix("server_id = ")
        raise AssertionError("no server_id in the backend config")


def set_identity(system, modes: dict[str, str]) -> None:
    """Set queues' identity modes as `platenctl printer identity` does (one connection)."""

    async def send() -> None:
        async with rpc.connect(system.admin_url) as client:
            for printer, mode in modes.items():
                await client.request(
                    SetPrinterIdentity.message_type, SetPrinterIdentity(printer=printer, mode=mode)
                )

    with ThreadPoolExecutor(1) as pool:  # the caller may be inside an event loop
        pool.submit(asyncio.run, send()).result()


def print_server_config(system, folder: Path, name: str) -> Path:
    """Print server `name`'s backend config, as an administrator makes it: its own broker
    identity (`platenctl printserver add`), its job-id state in `folder`."""
    config = folder / "cups-backend.conf"
    system.ctl(
        "printserver",
        "add",
        name,
        "--output",
        str(config),
        "--state-dir",
        str(folder / "state"),
        # As a site whose print server sees Active Directory names (`CORP\alice`).
        "--login-domains",
        "CORP, corp.example.org",
    )
    return config


@contextmanager
def print_server(system, name: str) -> Iterator[CupsRig]:
    """A print server: its own cupsd (whose job numbers start at 1), signed in as `name`."""
    # cupsd's filters run as `lp`, which must be able to reach every folder here.
    folder = Path(tempfile.mkdtemp(prefix="platen-cups-"))
    folder.chmod(0o755)
    config = print_server_config(system, folder, name)
    config.write_text(
        config.read_text()
        + "\n[printer:lab-quick]\ndeadline = 4\n"
        + "\n[printer:desk-quick]\ndeadline = 6\n"
    )
    # The print agent forked from the worker's fork server, as the services are.
    rig = CupsRig(LocalCups(folder / "cups", config, launcher=system.forkserver.popen), {})
    try:
        rig.cups.start()
        printer = VirtualPrinter("lab-color", folder / "lab-color").start()
        rig.printers["lab-color"] = printer
        rig.cups.add_queue("lab-color", printer.uri)
        rig.cups.add_queue("lab-quick", printer.uri)
        rig.cups.add_queue("broken", "fail://nowhere", everywhere=False)
        rig.slow = SlowPrinter(folder / "slow")
        rig.slow.set()
        rig.cups.add_queue("slow", rig.slow.uri, everywhere=False)
        # These tests print as whoever they name: their queues take the CUPS name as
        # given, which must be said explicitly (a queue's default is `desktop`).
        set_identity(system, {q: "trusted" for q in ("lab-color", "lab-quick", "broken", "slow")})
        # Left at the default (`desktop`), for the identity tests: the same printer.
        rig.cups.add_queue("desk", printer.uri)
        rig.cups.add_queue("desk-quick", printer.uri)
        # Users sign in to CUPS to print here; the tests that use it say `authenticated`.
        rig.cups.add_queue("secure", printer.uri)
        rig.cups.authenticate_queue("secure")
        yield rig
    finally:
        rig.cups.stop()
        for p in rig.printers.values():
            p.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cups(system):
    with print_server(system, f"test-{uuid.uuid4().hex[:8]}") as rig:
        yield rig


@pytest.fixture
def cups_b(system):
    """A second print server with the same queues, for what one may do to another's jobs."""
    with print_server(system, f"test-b-{uuid.uuid4().hex[:8]}") as rig:
        yield rig


@pytest.fixture
def format_queues(system, cups):
    """Two more queues, for the tests of what is analysed and printed: `lab-raster`, whose
    printer takes only PWG raster (CUPS's filters send it raster), and `lab-ps`, whose
    printer takes only PostScript (its PPD, the everywhere one with PostScript as the only
    format, has CUPS send it PostScript, through pstops or pdftops)."""
    folder = cups.cups.folder.parent
    raster = VirtualPrinter("lab-raster", folder / "lab-raster")
    cups.printers["lab-raster"] = raster  # `cups` stops every printer in the rig
    raster.start(formats="image/pwg-raster")
    cups.cups.add_queue("lab-raster", raster.uri)
    postscript = VirtualPrinter("lab-ps", folder / "lab-ps")
    cups.printers["lab-ps"] = postscript
    postscript.start(formats="application/postscript")
    everywhere = cups.cups.ppd("lab-color").splitlines()
    ppd = folder / "lab-ps.ppd"
    ppd.write_text(
        "\n".join(line for line in everywhere if not line.startswith("*cupsFilter2:"))
        + '\n*cupsFilter2: "application/vnd.cups-postscript application/postscript 0 -"\n'
    )
    cups.cups.run("lpadmin", "-p", "lab-ps", "-E", "-v", postscript.uri, "-P", str(ppd))
    cups.cups.run("lpadmin", "-p", "lab-ps", "-v", f"platen:/{postscript.uri}")
    cups.cups.run("cupsenable", "lab-ps")
    cups.cups.run("cupsaccept", "lab-ps")
    # Like the shared queues, these print as whoever the job names (`trusted`, explicitly).
    set_identity(system, {"lab-raster": "trusted", "lab-ps": "trusted"})
    return cups
