"""The `platen` CUPS backend's start: what every job pays before the backend does anything.

CUPS starts the backend once per job. This times what cupsd's wrapper may start
(LocalCups, docs/cups.md): each shim's whole run with a job, the compiled one (`shim.c`,
what LocalCups installs) and the Python one (`shim.py` under `python -I -S`), against a
stand-in agent that gives it a warm backend which answers at once; the Python shim's
module loaded alone (without running it), which hands the job to a backend the agent
started ahead of it; the
full backend's start and imports (`import platen.cups_backend.backend` under `python -S`,
its own folder as PYTHONPATH), which runs when no agent answers; the hand-over itself
(a real agent, no broker needed: from the shim's connect to the warm backend's greeting,
which the job follows); and
`--compare REV`'s backend as it was installed in its day (a plain `python`, its sources
first on PYTHONPATH), beside a bare `python -c pass` and `python -S -c pass`. The variants
take turns, round after round, so that each sees the same load. Each run's CPU time (user +
system, from the kernel's accounting of the child) moves less with the load than its wall
time: both are printed, with the load average.

    .venv/bin/python bench/backend_start.py [--runs 30] [--compare c1aa52f]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.revisions import unpack
from platen.cups_backend import build_shim

ROOT = Path(__file__).resolve().parent.parent
BACKEND = "apps/cups-backend/src"
IMPORT = "import platen.cups_backend.backend"


def backend_root() -> Path:
    """The folder that holds this worktree's `platen/cups_backend`."""
    spec = importlib.util.find_spec("platen.cups_backend")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))).parent.parent


def load_shim() -> str:
    """Code that runs the shim as cupsd's wrapper does (its imports and definitions),
    without its `main`."""
    path = backend_root() / "platen/cups_backend/shim.py"
    return (
        f"path = {str(path)!r}\n"
        "exec(compile(open(path).read(), path, 'exec'), {'__name__': 'shim', '__file__': path})"
    )


def hand_overs(runs: int, folder: Path) -> list[float]:
    """Seconds from a shim's connect to a warm backend's greeting, `runs` times, against a
    real agent (its broker unreachable: the hand-over does not use it). Each greeted
    backend is then left without a job (it exits) and the agent starts the next."""
    path = folder / "run/agent.sock"
    config = folder / "backend.conf"
    config.write_text(
        "[platen]\namqp_url = amqp://guest:guest@127.0.0.1:1/\nserver_id = bench\n"
        f"state_dir = {folder / 'state'}\n"
    )
    env = {**os.environ, "PLATEN_BACKEND_CONFIG": str(config), "PLATEN_AGENT_SOCKET": str(path)}
    with open(folder / "agent.log", "ab") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "platen.cups_backend.agent", "--log-level", "ERROR"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    took = []
    try:
        while not path.exists():
            time.sleep(0.05)
        for _ in range(runs):
            time.sleep(0.5)  # the agent's next warm backend is ready
            start = time.perf_counter()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                sock.sendall(b'{"op": "hand_over", "protocol": 1}\n')
                greeting = sock.recv(64)
                took.append(time.perf_counter() - start)
            if greeting != b"ready\n":
                raise RuntimeError(f"the agent answered {greeting!r}")
    finally:
        agent.terminate()
        agent.wait(10)
    return took


def stand_in_agent(path: Path) -> None:
    """An agent that gives each shim a warm backend at once, which takes the job and
    answers `exit 0` at once: what is left of a shim's run is its own (a thread)."""
    from platen.cups_backend import warm

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.makefile("rb").readline()  # the hand-over request
                conn.sendall(b"ready\n")
                *_, fds = warm.receive_job(conn)
                for fd in fds:
                    os.close(fd)
                conn.sendall(b"exit 0\n")

    threading.Thread(target=serve, daemon=True).start()


def extract(rev: str, into: Path) -> Path:
    return unpack(rev, [BACKEND], into) / BACKEND


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `argv`."""
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--compare", metavar="REV", help="also time the backend of git revision REV")
    args = p.parse_args()
    python = sys.executable
    # Bytecode is written and used, as for cupsd's backends (cupsd passes no PYTHON*).
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([python, "-c", "pass"], base),
        "python -S -c pass": ([python, "-S", "-c", "pass"], base),
        "shim (python -I -S)": ([python, "-I", "-S", "-c", load_shim()], base),
        "backend (python -S)": (
            [python, "-S", "-c", IMPORT],
            {**base, "PYTHONPATH": str(backend_root())},
        ),
        # The same backend under a wrapper without -S: what the imports alone saved.
        "backend (python)": ([python, "-c", IMPORT], base),
    }
    with tempfile.TemporaryDirectory(prefix="platen-bench-start-") as tmp:
        # A shim's whole run with a job (its start, the hand-over, the status), each shim
        # as cupsd's wrapper starts it, against an agent that answers at once.
        agent = Path(tmp) / "agent.sock"
        stand_in_agent(agent)
        job = {**base, "PLATEN_AGENT_SOCKET": str(agent), "DEVICE_URI": "platen:/ipp://x/"}
        args5 = ["7", "bench", "title", "1", ""]
        compiled = build_shim.build(Path(tmp) / "platen")
        shim_py = str(backend_root() / "platen/cups_backend/shim.py")
        variants["shim.c, a job handed over"] = ([str(compiled), *args5], job)
        variants["shim.py, a job handed over"] = ([python, "-I", "-S", shim_py, *args5], job)
        if args.compare:
            old = extract(args.compare, Path(tmp))
            variants[f"backend at {args.compare} (python)"] = (
                [python, "-c", IMPORT],
                {**base, "PYTHONPATH": str(old)},
            )
        for argv, env in variants.values():  # bytecode written, caches warm
            run_once(argv, env)
        load_before = os.getloadavg()[0]
        handed = hand_overs(args.runs, Path(tmp))
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, (argv, env) in variants.items():
                wall, cpu = run_once(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    print(
        f"{args.runs} runs each, the variants taking turns; Python {sys.version.split()[0]}; "
        f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    for name in variants:
        print(
            f"  {name:<32} CPU median {statistics.median(cpus[name]) * 1000:5.1f} ms, "
            f"mean {statistics.mean(cpus[name]) * 1000:5.1f} ms; "
            f"wall median {statistics.median(walls[name]) * 1000:6.1f} ms"
        )
    print(
        f"  {'hand-over to a warm backend':<32} wall median "
        f"{statistics.median(handed) * 1000:5.1f} ms, max {max(handed) * 1000:5.1f} ms "
        "(connect -> greeting)"
    )


if __name__ == "__main__":
    main()
