"""A real cupsd with virtual printers (ippeveprinter) behind Platen queues, wired to the
test's own Platen system (services as processes, fresh vhost and database)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from platen.testing.cups import LocalCups, SlowPrinter, VirtualPrinter


@dataclass
class CupsRig:
    cups: LocalCups
    printers: dict[str, VirtualPrinter]
    slow: SlowPrinter | None = None


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
        rig.slow = SlowPrinter(folder / "slow")
        rig.slow.set()
        rig.cups.add_queue("slow", rig.slow.uri, everywhere=False)
        yield rig
    finally:
        rig.cups.stop()
        for p in rig.printers.values():
            p.stop()
        shutil.rmtree(folder, ignore_errors=True)
