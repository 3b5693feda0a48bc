"""`make run` and the README tour, as a new user would type them in a second shell."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from getpass import getuser
from pathlib import Path

import asyncpg
import pytest

from platen.localstack.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tour_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## A tour", 1)[1].split("\n## ", 1)[0]


def tour_commands() -> list[str]:
    """The tour's command lines run from the venv (platenctl, platen-client), in order,
    as written there."""
    return [line[2:] for line in tour_section().splitlines() if line.startswith("$ .venv/bin/")]


def expected_client_line() -> str:
    """The line the README shows alice's desktop client printing."""
    [line] = [line for line in tour_section().splitlines() if line.startswith("Printed ")]
    return line.split("<-", 1)[0].strip()


def in_background(command: str) -> str | None:
    """The command without its trailing `&` (and comment), if the tour runs it in the
    background; else None."""
    code = command.split("#", 1)[0].strip()
    return code.removesuffix("&").strip() if code.endswith("&") else None


def read_until(proc: subprocess.Popen, wanted: str, timeout: float) -> list[str]:
    """Lines `proc` writes until one equals `wanted` (or it ends, or `timeout` passes)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == wanted:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    return lines


def test_make_run_starts_the_system_and_the_readme_tour_works():
    # Like a checkout: a folder other users may pass through (PostgreSQL runs as `postgres`).
    tmp_path = Path(tempfile.mkdtemp(prefix="platen-checkout-"))
    tmp_path.chmod(0o755)
    env = {
        **os.environ,
        "PLATEN_RUN_DIR": str(tmp_path / "run"),
        "PLATEN_RUN_AMQP_PORT": str(free_port()),
        "PLATEN_RUN_PG_PORT": str(free_port()),
        "PLATEN_RUN_MANAGEMENT_PORT": str(free_port()),
        "PLATEN_RUN_DIST_PORT": str(free_port()),
        "PLATEN_RUN_CUPS_PORT": str(free_port()),
        "PLATEN_RUN_PROMETHEUS_PORT": str(free_port()),
    }
    env.pop("PLATEN_AMQP_URL", None)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy/local/run.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    background: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        assert any("Platen is running" in line for line in output), "".join(output)
        # It printed each service's metrics address, and the broker's, which answers.
        served = [line for line in output if "; metrics http://127.0.0.1:" in line]
        assert len(served) == 4, "".join(output)
        broker = f"http://127.0.0.1:{env['PLATEN_RUN_PROMETHEUS_PORT']}/metrics"
        assert any(broker in line for line in output), "".join(output)
        with urllib.request.urlopen(broker, timeout=60) as answer:
            assert b"rabbitmq_build_info" in answer.read()

        # The second shell: the checkout's folder (holding run/), no settings at all.
        (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
        shell_env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEN_")}
        results = {}
        commands = tour_commands()
        assert len(commands) >= 5
        for command in commands:
            if (code := in_background(command)) is not None:
                background.append(
                    subprocess.Popen(
                        code,
                        shell=True,
                        cwd=tmp_path,
                        env=shell_env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        start_new_session=True,
                    )
                )
                continue
            out = subprocess.run(
                command,
                shell=True,
                cwd=tmp_path,
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            results[command] = out
        outputs = {c: r.stdout for c, r in results.items()}
        status = results[".venv/bin/platenctl status"]
        assert status.returncode == 0 and status.stdout.count(" up ") == 4
        alice_print = next(r for c, r in results.items() if "print" in c and "--user alice" in c)
        assert "printed: 3 pages x1, charged 0.30, balance 4.70" in alice_print.stdout
        bob_command, bob_print = next(
            (c, r) for c, r in results.items() if "print" in c and "--user bob" in c
        )
        assert bob_print.returncode == 2  # denied
        assert "denied: insufficient credit" in bob_print.stdout
        assert (
            "balance 4.70, held 0.00, available 4.70"
            in outputs[".venv/bin/platenctl user show alice"]
        )
        assert re.search(r"alice .* printed", outputs[".venv/bin/platenctl jobs"])
        for command, result in results.items():
            if command != bob_command:
                assert result.returncode == 0, (command, result.stdout, result.stderr)

        # alice's desktop client, started in the background before her job, showed it.
        [client] = background
        wanted = expected_client_line()
        shown = read_until(client, wanted, timeout=30)
        assert wanted in shown, shown

        # The tour's print-server lines, in one shell (the first one sets CUPS_SERVER).
        lp_lines = [
            line[2:].split("#", 1)[0].strip()
            for line in tour_section().splitlines()
            if line.startswith(("$ export", "$ lp "))
        ]
        assert len(lp_lines) == 3  # CUPS_SERVER, alice's job, bob's
        out = subprocess.run(
            " && ".join(lp_lines),
            shell=True,
            cwd=tmp_path,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0 and out.stdout.count("request id is lab-color-") == 2, out.stderr
        received = tmp_path / "run" / "printers" / "lab-color" / "received"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(received.glob("*")):
            time.sleep(0.5)
        # alice is on "auto" and her desktop is the one on this host: printed at once.
        assert len(list(received.glob("*"))) == 1
        # The printer has the document; the charge follows once the backend reports it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            balance = subprocess.run(
                ".venv/bin/platenctl user show alice --json",
                shell=True,
                cwd=tmp_path,
                env=shell_env,
                capture_output=True,
                text=True,
            )
            if '"balance":"4.40"' in balance.stdout:  # 4.70 - 3 pages x 0.10 on lab-color
                break
            time.sleep(0.5)
        assert '"balance":"4.40"' in balance.stdout
        # bob's job (no desktop of his here) waits for his answer: not printed, not charged.
        jobs_line = next(c for c in tour_commands() if c.startswith(".venv/bin/platenctl jobs --"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = subprocess.run(
                jobs_line.split("#", 1)[0],
                shell=True,
                cwd=tmp_path,
                env=shell_env,
                capture_output=True,
                text=True,
            ).stdout
            if re.search(r"bob .* priced ", waiting):
                break
            time.sleep(0.5)
        assert re.search(r"bob .* priced +report.pdf", waiting), waiting
        assert len(list(received.glob("*"))) == 1

        # lab-mono is a grayscale printer: the virtual printer and its CUPS queue both
        # report no colour (lab-color, for contrast, does).
        for queue, color in (("lab-mono", "false"), ("lab-color", "true")):
            uri = f"ipp://127.0.0.1:{env['PLATEN_RUN_CUPS_PORT']}/printers/{queue}"
            attrs = subprocess.run(
                ["ipptool", "-tv", uri, "get-printer-attributes.test"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            assert f"color-supported (boolean) = {color}" in attrs, attrs
        options = subprocess.run(
            ["lpoptions", "-h", f"127.0.0.1:{env['PLATEN_RUN_CUPS_PORT']}", "-p", "lab-mono", "-l"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        color_model = next(line for line in options.splitlines() if line.startswith("ColorModel"))
        assert "RGB" not in color_model and "Gray" in color_model, color_model

        safe_on_a_shared_host(tmp_path / "run", env)
    finally:
        for proc in background:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        os.killpg(server.pid, signal.SIGINT)
        rest, _ = server.communicate(timeout=90)
        output.append(rest)
    assert "Stopped." in "".join(output)
    shutil.rmtree(tmp_path, ignore_errors=True)


def safe_on_a_shared_host(run: Path, env: dict[str, str]) -> None:
    """What another user of this host finds of `make run`: PostgreSQL asks everyone for a
    password, the services sign in as their own roles (no superuser), the broker speaks
    AMQP over TLS only, and CUPS takes no administration over TCP."""
    secret = run / "postgres" / "superuser.secret"
    assert secret.stat().st_mode & 0o077 == 0
    pg = f"127.0.0.1:{env['PLATEN_RUN_PG_PORT']}"

    async def database() -> list:
        for url in (f"postgresql://postgres@{pg}/platen", f"postgresql://{getuser()}@{pg}/platen"):
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(url)
        conn = await asyncpg.connect(
            f"postgresql://postgres:{secret.read_text().strip()}@{pg}/platen"
        )
        try:
            return await conn.fetch(
                "SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a "
                "JOIN pg_roles r ON r.rolname = a.usename "
                "WHERE a.datname = 'platen' AND a.application_name LIKE 'platen-%'"
            )
        finally:
            await conn.close()

    roles = asyncio.run(database())
    assert sorted(r["usename"] for r in roles) == [
        "platen_job_capture",
        "platen_ledger",
        "platen_notification",
        "platen_pricing",
    ]
    assert not any(r["rolsuper"] for r in roles)
    with (
        pytest.raises(OSError),
        socket.create_connection(("127.0.0.1", int(env["PLATEN_RUN_AMQP_PORT"])), timeout=5),
    ):
        pass
    rogue = subprocess.run(
        ["lpadmin", "-p", "rogue", "-E", "-v", "ipp://127.0.0.1:9/rogue"],
        env={**os.environ, "CUPS_SERVER": f"127.0.0.1:{env['PLATEN_RUN_CUPS_PORT']}"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no terminal to ask a password on
    )
    assert rogue.returncode != 0, rogue.stdout
    queues = subprocess.run(
        ["lpstat", "-h", f"127.0.0.1:{env['PLATEN_RUN_CUPS_PORT']}", "-p"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "lab-color" in queues and "rogue" not in queues
