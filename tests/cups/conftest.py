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


@pytest.fixture
def format_queues(cups):
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
    everywhere = (cups.cups.folder / "ppd" / "lab-color.ppd").read_text().splitlines()
    ppd = folder / "lab-ps.ppd"
    ppd.write_text(
        "\n".join(line for line in everywhere if not line.startswith("*cupsFilter2:"))
        + '\n*cupsFilter2: "application/vnd.cups-postscript application/postscript 0 -"\n'
    )
    cups.cups.run("lpadmin", "-p", "lab-ps", "-E", "-v", postscript.uri, "-P", str(ppd))
    cups.cups.run("lpadmin", "-p", "lab-ps", "-v", f"platen:/{postscript.uri}")
    cups.cups.run("cupsenable", "lab-ps")
    cups.cups.run("cupsaccept", "lab-ps")
    return cups
