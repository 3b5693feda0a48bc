"""platen-client as a real process in `--json` mode, driven as a script would drive it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from platen.broker_setup.installation import with_credentials


class ClientProcess:
    """Reads the client's JSON lines as they come; writes answers to its stdin."""

    def __init__(
        self, amqp_url: str | None, login: str | None, state_dir: Path, *extra: str
    ) -> None:
        """`amqp_url` and `login` None: the client takes them from its config file."""
        self.lines: list[dict] = []
        self.stderr: list[str] = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "platen.client", "--json", "--state-dir", str(state_dir)]
        if login:
            command += ["--user", login]
        if amqp_url:
            command += ["--amqp-url", amqp_url]
        self.proc = subprocess.Popen(
            [*command, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def of_type(self, kind: str, **match) -> list[dict]:
        return [
            m
            for m in self.lines
            if m["type"] == kind and all(str(m.get(k)) == str(v) for k, v in match.items())
        ]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 60, **match) -> list:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found = self.of_type(kind, **match)
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                # Its last lines (a client that says "signed out" and exits) may still be
                # in the pipe: read to its end before looking a last time.
                await asyncio.to_thread(self._reader.join, 10)
                found = self.of_type(kind, **match)
                if len(found) >= count:
                    return found
                break
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"client showed {len(self.of_type(kind, **match))} {kind} {match}, wanted {count}; "
            f"lines: {self.lines[-15:]}; stderr: {''.join(self.stderr)[-2000:]}"
        )

    def wait_exit(self, timeout: float) -> int:
        """Its exit status, once it has exited and all it wrote has been read (the reading
        threads may be behind the process's end)."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        self._err_reader.join(10)
        return code

    def send(self, **answer) -> None:
        self.write(json.dumps({k: str(v) if k == "job_id" else v for k, v in answer.items()}))

    def write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def desktops(system):
    """Each user's own desktop sign-in: the client config file `platenctl user credential`
    writes, issued once per test (a new credential replaces the previous one)."""
    issued: dict[str, Path] = {}

    def config(login: str) -> Path:
        if login not in issued:
            # The notification service makes the broker user when it sees `user.added`,
            # which may still be on its way.
            for _ in range(50):
                out = system.ctl(
                    "user", "credential", login, "--output", f"{login}.toml", check=False
                )
                if out.returncode == 0:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"no credential for {login}: {out.stderr}")
            issued[login] = system.tmp / f"{login}.toml"
        return issued[login]

    return config


def desktop_url(config: Path) -> str:
    values = tomllib.loads(config.read_text())
    return with_credentials(values["url"], values["user"], values["password"])
