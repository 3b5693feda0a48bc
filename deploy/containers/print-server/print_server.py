"""The print-server container: cupsd on the IPP port with the Platen backend, configured by
`platen.localstack.cups.LocalCups` (as `make run` and the tests run it).

The backend signs in as this print server with the configuration the init job wrote
(`platenctl printserver add`), mounted at /run/platen/cups-backend.conf. Queues are added
by an administrator inside the container (`lpadmin` with CUPS_SERVER set to cupsd's private
socket, whose path is in /var/lib/platen-cups/admin-socket), or at start from PLATEN_QUEUES:
`name=ipp://printer/ipp/print,...`, each becoming `platen:/<uri>`.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from platen.localstack.cups import LocalCups

FOLDER = Path("/var/lib/platen-cups")
CONFIG = Path("/run/platen/cups-backend.conf")


def main() -> int:
    if not CONFIG.exists():
        print(f"missing {CONFIG}: run the init job first", file=sys.stderr)
        return 1
    FOLDER.mkdir(parents=True, exist_ok=True)
    FOLDER.chmod(0o755)  # cupsd's filters run as lp
    # The Python shim: the image has no C compiler (docs/cups.md: a site's print server
    # builds the compiled one where it installs Platen).
    cups = LocalCups(FOLDER, CONFIG, port=631, listen_host="0.0.0.0", shim="python").start()
    signal.signal(signal.SIGTERM, lambda *_: cups.stop())
    (FOLDER / "admin-socket").write_text(str(cups.admin_socket))
    for item in filter(None, os.environ.get("PLATEN_QUEUES", "").split(",")):
        name, uri = item.split("=", 1)
        cups.add_queue(name.strip(), uri.strip(), everywhere=False)
    print(f"cupsd on port 631; admin socket {cups.admin_socket}", flush=True)
    assert cups.proc is not None
    return cups.proc.wait()


if __name__ == "__main__":
    sys.exit(main())
