"""A real cupsd with virtual printers (ippeveprinter) behind Platen queues, wired to the
test's own Platen system (services as processes, fresh vhost and database)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from platen import rpc
from platen.events.print_identity import SetPrinterIdentity
from platen.testing.cups import LocalCups, VirtualPrinter


@dataclass
class CupsRig:
    cups: LocalCups
    printers: dict[str, VirtualPrinter]


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


@pytest.fixture
def cups(system):
    # cupsd's filters run as `lp`, which must be able to reach every folder here.
    folder = Path(tempfile.mkdtemp(prefix="platen-cups-"))
    folder.chmod(0o755)
    config = folder / "cups-backend.conf"
    config.write_text(
        "[platen]\n"
        f"amqp_url = {system.print_server_url}\n"
        f"server_id = test-{uuid.uuid4().hex[:8]}\n"
        "\n[printer:lab-quick]\ndeadline = 4\n"
        "\n[printer:desk-quick]\ndeadline = 6\n"
    )
    config.chmod(0o600)
    rig = CupsRig(LocalCups(folder / "cups", config), {})
    try:
        rig.cups.start()
        printer = VirtualPrinter("lab-color", folder / "lab-color").start()
        rig.printers["lab-color"] = printer
        rig.cups.add_queue("lab-color", printer.uri)
        rig.cups.add_queue("lab-quick", printer.uri)
        rig.cups.add_queue("broken", "fail://nowhere", everywhere=False)
        # These tests print as whoever they name: their queues take the CUPS name as
        # given, which must be said explicitly (a queue's default is `desktop`).
        set_identity(system, {"lab-color": "trusted", "lab-quick": "trusted", "broken": "trusted"})
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
