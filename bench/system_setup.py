"""A test system's broker set-up: installing Platen on a fresh vhost (the topology, the
policies and a broker identity for each service and platenctl), as every whole-system
test does before its services start (`platen.testing.identities`, issue 15).

Starts a local RabbitMQ (or takes `PLATEN_TEST_*` from the environment), then installs on
`--rounds` fresh vhosts and prints, per round, the seconds `install()` took and the load
average then; at the end the median and the slowest.

`--compare REV` also installs with `platen/broker_setup/installation.py` of git revision
REV (the rest of the code is this tree's), taking turns with this tree's, so both meet the
same load.

    .venv/bin/python bench/system_setup.py [--rounds 8] [--compare 0deb87d]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from platen.broker_setup import installation
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts

MODULE = "libs/broker-setup/src/platen/broker_setup/installation.py"


def old_installation(rev: str, folder: Path) -> ModuleType:
    """`installation.py` of git revision `rev`, loaded under a name of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:{MODULE}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / f"installation_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"installation_{rev}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def one_install(module: ModuleType, vhosts: Vhosts, management_url: str) -> float:
    name, url = vhosts.create()
    try:
        began = time.perf_counter()
        asyncio.run(
            module.install(
                url, management_url, disable_guest=False, user_prefix=f"b{uuid.uuid4().hex[:6]}-"
            )
        )
        return time.perf_counter() - began
    finally:
        vhosts.delete(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--compare", metavar="REV", help="also install with REV's installation.py")
    args = p.parse_args()
    versions = {"this tree": installation}
    with tempfile.TemporaryDirectory() as folder:
        if args.compare:
            versions = {args.compare: old_installation(args.compare, Path(folder)), **versions}
    with provide() as infra:
        # The management API with the administrator's credentials, as the tests give it.
        admin = urlsplit(infra.amqp_url)
        management_url = installation.with_credentials(
            infra.management_url, admin.username or "guest", admin.password or "guest"
        )
        vhosts = Vhosts(infra)
        for module in versions.values():  # untimed: the broker's first declarations are slow
            one_install(module, vhosts, management_url)
        print(f"{infra.source}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        print(f"{'round':>5} {'version':<12} {'install s':>9}  load average")
        times: dict[str, list[float]] = {v: [] for v in versions}
        for n in range(args.rounds):
            for label, module in versions.items():  # taking turns
                seconds = one_install(module, vhosts, management_url)
                times[label].append(seconds)
                print(f"{n + 1:>5} {label:<12} {seconds:>9.2f}  {load()}", flush=True)
        for label, got in times.items():
            print(
                f"{label}: median {statistics.median(got):.2f} s, slowest {max(got):.2f} s "
                f"({len(got)} installs)"
            )


if __name__ == "__main__":
    main()
