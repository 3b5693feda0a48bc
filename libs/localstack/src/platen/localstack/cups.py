"""A private CUPS print server with virtual printers, for tests and `make run`.

cupsd runs from its own folder with the Platen backend installed beside the system's
backends; each virtual printer is an `ippeveprinter` (which needs the system D-Bus and
avahi running; they are started if they are not) that keeps every document it receives.
A queue `<name>` is created with `lpadmin -m everywhere` against its printer and then
given the device URI `platen:/ipp://...`, so every job goes through Platen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platen.localstack import lifeline
from platen.localstack.servers import InfraError, free_port, stop_process, wait_for_port

SYSTEM_SERVERBIN = Path("/usr/lib/cups")
AGENT_MODULE = "platen.cups_backend.agent"


def backend_root() -> Path:
    """The folder that holds the installed `platen/cups_backend`, found without importing
    it (a lib does not import an app): the backend's whole path when it runs `python -S`."""
    spec = importlib.util.find_spec("platen.cups_backend")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError("the platen-cups-backend package is not installed")
    return Path(next(iter(spec.submodule_search_locations))).parent.parent


GET_JOB = """{
    OPERATION get-job-attributes
    GROUP operation
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR integer job-id $job_id
    ATTR keyword requested-attributes job-state,job-state-reasons,job-printer-state-message
    STATUS successful-ok
    DISPLAY job-state
    DISPLAY job-printer-state-message
}
"""

# Print one document as whoever the URI's credentials name (ipps://user:password@...),
# asking to be `$requesting`: what an `authenticated` queue must see through.
PRINT_JOB = """{
    OPERATION Print-Job
    GROUP operation-attributes-tag
    ATTR charset attributes-charset utf-8
    ATTR naturalLanguage attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR name requesting-user-name $requesting
    ATTR name job-name $title
    ATTR mimeMediaType document-format application/pdf
    FILE $filename
    STATUS successful-ok
    DISPLAY job-id
}
"""

# The operation policy of an `authenticated` queue: submitting a job needs a user name and
# password (Basic, checked by PAM against the host's accounts) over TLS; the rest is open.
AUTHENTICATED_POLICY = "platen-authenticated"
SUBMIT_OPERATIONS = "Create-Job Print-Job Print-URI Validate-Job Send-Document Send-URI"
# What only an administrator may do: add, change or remove queues and classes, and stop,
# start, accept or reject jobs on them. Allowed to @SYSTEM (root) only, who signs in by
# the private socket's peer credentials (LocalCups.admin_socket); over TCP nobody can.
ADMIN_OPERATIONS = (
    "CUPS-Add-Modify-Printer CUPS-Delete-Printer CUPS-Add-Modify-Class CUPS-Delete-Class "
    "CUPS-Set-Default CUPS-Get-Devices CUPS-Accept-Jobs CUPS-Reject-Jobs Pause-Printer "
    "Resume-Printer Enable-Printer Disable-Printer Pause-Printer-After-Current-Job "
    "Hold-New-Jobs Release-Held-New-Jobs Deactivate-Printer Activate-Printer Restart-Printer "
    "Shutdown-Printer Startup-Printer Cancel-Jobs CUPS-Move-Job"
)
_ADMIN_LIMIT = (
    f"  <Limit {ADMIN_OPERATIONS}>\n"
    "    AuthType Default\n    Require user @SYSTEM\n    Order deny,allow\n  </Limit>\n"
)

# A backend that always fails, to test what Platen does when the printer does not print.
FAILING_BACKEND = """#!/bin/sh
if [ $# -eq 0 ]; then exit 0; fi
cat > /dev/null
echo "ERROR: the test printer is on fire" >&2
exit 1
"""

# A printer that takes its time, for what happens while a job is being sent (a cancel, a
# print longer than Platen's release timeout). Its device URI `slow://<folder>` names a
# folder where the test sets `delay` (seconds, default 0) and `status` (the exit status,
# default 0), and finds `started-<job>` once it runs and `printed-<job>` once it is done.
SLOW_BACKEND = """#!/bin/sh
if [ $# -eq 0 ]; then exit 0; fi
dir="${DEVICE_URI#slow://}"
delay=$(cat "$dir/delay" 2>/dev/null || echo 0)
status=$(cat "$dir/status" 2>/dev/null || echo 0)
touch "$dir/started-$1"
echo "INFO: the slow test printer is printing" >&2
sleep "$delay"
cat "${6:-/dev/stdin}" > "$dir/printed-$1"
exit "$status"
"""


@dataclass
class SlowPrinter:
    """The folder behind a `slow://` queue (see SLOW_BACKEND)."""

    folder: Path

    @property
    def uri(self) -> str:
        return f"slow://{self.folder}"

    def set(self, *, delay: float = 0, status: int = 0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "delay").write_text(f"{delay}\n")
        (self.folder / "status").write_text(f"{status}\n")

    def started(self, job: int) -> bool:
        return (self.folder / f"started-{job}").exists()

    def printed(self, job: int) -> bool:
        return (self.folder / f"printed-{job}").exists()


def ensure_dns_sd() -> None:
    """ippeveprinter will not start without the system D-Bus and avahi."""
    if subprocess.run(["pgrep", "-x", "avahi-daemon"], capture_output=True).returncode == 0:
        return
    if os.geteuid() != 0:
        raise InfraError("ippeveprinter needs avahi-daemon running (start it as root)")
    if not _system_bus_answers():
        # A machine image can carry the socket and pid file of a D-Bus that no longer runs;
        # dbus-daemon refuses to start over its own pid file, and avahi cannot use the socket.
        for stale in (SYSTEM_BUS_SOCKET, SYSTEM_BUS_SOCKET.with_name("pid")):
            stale.unlink(missing_ok=True)
        SYSTEM_BUS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dbus-daemon", "--system", "--fork"], check=True)
    Path("/run/avahi-daemon/pid").unlink(missing_ok=True)
    started = subprocess.run(
        ["avahi-daemon", "--daemonize", "--no-drop-root", "--no-chroot"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise InfraError(f"avahi-daemon did not start: {started.stderr.strip()}")
    time.sleep(0.5)


SYSTEM_BUS_SOCKET = Path("/run/dbus/system_bus_socket")


def _system_bus_answers() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(SYSTEM_BUS_SOCKET))
        except OSError:
            return False
    return True


@dataclass
class VirtualPrinter:
    name: str
    folder: Path
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"ipp://127.0.0.1:{self.port}/ipp/print"

    def start(
        self, *, formats: str = "application/pdf,image/pwg-raster", color: bool = True
    ) -> VirtualPrinter:
        """`formats`: the document formats it takes (`-m everywhere` queues send it the
        first of PDF, Apple raster and PWG raster that it lists). `color=False`: a
        monochrome printer (color-supported false; its only print-color-mode is
        monochrome), as ippeveprinter makes one with no colour speed."""
        ensure_dns_sd()
        (self.folder / "received").mkdir(parents=True, exist_ok=True)
        chosen = self.port
        for attempt in range(1, 4):
            self.port = chosen or free_port()
            self._launch(formats, color)
            try:
                wait_for_port(self.port, 30, self.proc)
                return self
            except InfraError as exc:
                # ippeveprinter now and then aborts as it starts (SIGABRT before its port
                # opens: once in some hundreds of starts on a loaded machine); a new
                # start works. A printer that keeps failing, or hangs, is an error.
                assert self.proc is not None
                if self.proc.poll() is None or attempt == 3:
                    log = (self.folder / "ippeveprinter.log").read_bytes()[-2000:]
                    ends = log.decode(errors="replace")
                    raise InfraError(f"{exc}; its log ends: {ends}") from exc
        raise AssertionError("unreachable")

    def _launch(self, formats: str, color: bool) -> None:
        log = open(self.folder / "ippeveprinter.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "ippeveprinter",
                "-2",
                "-k",
                # Pages per minute it pretends to print at: fast, so that tests and
                # benchmarks time Platen and CUPS rather than a simulated print engine.
                "-s",
                "6000,6000" if color else "6000,0",
                # Done with a job at once. Without a print command ippeveprinter
                # pretends to print every job for 5 to 15 s whatever its speed above
                # (a 1-page PDF took 8 to 14 s), which every CUPS test and `make run`
                # waited out. The command does nothing; what it would print goes to
                # /dev/null, so the received folder keeps only the documents.
                "-c",
                shutil.which("true") or "/bin/true",
                "-D",
                "file:///dev/null",
                "-d",
                str(self.folder / "received"),
                "-p",
                str(self.port),
                "-f",
                formats,
                "-M",
                "Platen",
                "-m",
                f"Virtual {self.name}",
                self.name,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lifeline.watch(self.proc.pid)

    def received(self) -> list[Path]:
        return sorted((self.folder / "received").glob("*"))

    def stop(self) -> None:
        stop_process(self.proc, timeout=5)


def complete_ppd(text: str) -> bool:
    """Whether `text` is a whole PPD (cupsd replaces the file when it changes a queue)."""
    return text.startswith("*PPD-Adobe") and text.endswith("\n")


def compiled_shim() -> Path:
    """The shim compiled as docs/cups.md builds it, kept in this Python's prefix under a
    hash of what goes into it (its source, the Python and the folder it names): built once
    for those (a quarter of a second), not for every cupsd a test run starts."""
    source = backend_root() / "platen/cups_backend/shim.c"
    made_of = source.read_bytes() + f"\0{sys.executable}\0{backend_root()}".encode()
    version = hashlib.sha256(made_of).hexdigest()[:16]
    program = Path(sys.prefix) / "libexec" / f"platen-shim-{version}" / "platen-shim"
    if not program.exists():
        program.parent.mkdir(parents=True, exist_ok=True)
        # build_shim writes the program whole (a temporary file renamed): workers that
        # build it at the same moment each put a complete one in place.
        build = [sys.executable, "-m", "platen.cups_backend.build_shim", str(program)]
        done = subprocess.run(build, capture_output=True, text=True)
        if done.returncode != 0:
            raise InfraError(f"the compiled shim: {done.stderr.strip()}")
    return program


@dataclass
class LocalCups:
    folder: Path
    backend_config: Path
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    # A folder only this user can enter, holding cupsd's administration socket (short: a
    # socket's path has at most 107 bytes).
    admin_folder: Path | None = None
    # Where print clients reach it: loopback here; all addresses in the print-server
    # container (deploy/containers), whose IPP port is published.
    listen_host: str = "127.0.0.1"
    # debug: cupsd's log also holds what backends say at DEBUG (the bench's timings).
    log_level: str = "info"
    # The print server's agent (`platen.cups_backend.agent`) beside cupsd, as a site runs
    # it: the backends hand it their jobs. Without it every backend does its job itself.
    agent: bool = True
    agent_proc: subprocess.Popen | None = field(default=None, repr=False)
    # Starts the agent as `python -m platen.cups_backend.agent` would, with the
    # signature of `platen.localstack.services.Launcher` (the tests pass their fork
    # server's: a fresh interpreter spent 0.6 to 0.7 s importing at load 4, the forked
    # agent is up in 0.1 s).
    launcher: Callable[..., Any] | None = field(default=None, repr=False)
    # The PPD each `-m everywhere` queue had once `lpadmin` made it (`ppd`).
    made_ppds: dict[str, str] = field(default_factory=dict, repr=False)
    # Which shim cupsd starts per job (docs/cups.md): "compiled" (`shim.c`, built here
    # with the host's C compiler) or "python" (`shim.py`, for a host without one).
    shim: str = "compiled"

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_socket(self) -> Path:
        assert self.admin_folder is not None
        return self.admin_folder / "cupsd.sock"

    @property
    def agent_socket(self) -> Path:
        """In the private folder: only root (cupsd's backends, the agent) can reach it."""
        assert self.admin_folder is not None
        return self.admin_folder / "agent.sock"

    def env(self) -> dict[str, str]:
        return {**os.environ, "CUPS_SERVER": self.server}

    def admin_env(self) -> dict[str, str]:
        return {**os.environ, "CUPS_SERVER": str(self.admin_socket)}

    def use_shim(self, shim: str) -> None:
        """From the next job on, cupsd starts this shim ("compiled" or "python")."""
        self.shim = shim
        self._write_backend()

    def _write_backend(self) -> None:
        """The `platen` backend: a wrapper that names the configuration and the agent's
        socket, then runs the shim, which hands the job to a warm backend of the agent's or
        runs the full backend (`python -S`, the backend's own folder as its path) in its
        place. Mode 0700: cupsd runs the backend as root, so it may read its configuration
        (which holds the broker credentials) while users cannot."""
        if self.shim == "compiled":
            run = f'exec {compiled_shim()} "$@"\n'
        elif self.shim == "python":
            # As docs/cups.md installs it without a compiler: `python -I -S shim.py`.
            shim = backend_root() / "platen/cups_backend/shim.py"
            run = f'exec {sys.executable} -I -S {shim} "$@"\n'
        else:
            raise ValueError(f"no such shim: {self.shim!r}")
        platen = self.folder / "serverbin/backend/platen"
        partial = platen.with_name(".platen")
        partial.write_text(
            "#!/bin/sh\n"
            f"export PLATEN_BACKEND_CONFIG={self.backend_config}\n"
            f"export PLATEN_AGENT_SOCKET={self.agent_socket}\n"
            f"export PYTHONPATH={backend_root()}\n" + run
        )
        partial.chmod(0o700)
        partial.replace(platen)  # whole: a job starting meanwhile runs the old or the new

    def _write_config(self) -> None:
        f = self.folder
        for sub in ("serverbin/backend", "cache", "state", "spool/tmp", "log"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        for item in SYSTEM_SERVERBIN.iterdir():
            link = f / "serverbin" / item.name
            if item.name != "backend" and not link.exists():
                link.symlink_to(item)
        for backend in (SYSTEM_SERVERBIN / "backend").iterdir():
            link = f / "serverbin/backend" / backend.name
            if not link.exists():
                link.symlink_to(backend)
        self._write_backend()
        failing = f / "serverbin/backend/fail"
        failing.write_text(FAILING_BACKEND)
        failing.chmod(0o755)
        slow = f / "serverbin/backend/slow"
        slow.write_text(SLOW_BACKEND)
        slow.chmod(0o755)
        (f / "cupsd.conf").write_text(
            f"Listen {self.listen_host}:{self.port}\nListen {self.admin_socket}\n"
            f"LogLevel {self.log_level}\nWebInterface No\n"
            # Never rotated (at 1 MB by default): what reads the log reads all of it.
            "MaxLogSize 0\n"
            # Basic is what a policy that requires a user asks for; nothing else does.
            "DefaultAuthType Basic\nBrowsing Off\nJobRetryLimit 0\nPreserveJobHistory Yes\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Location /admin>\n  AuthType Default\n  Require user @SYSTEM\n"
            "  Order allow,deny\n  Allow all\n</Location>\n"
            f"<Policy default>\n{_ADMIN_LIMIT}"
            "  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
            f"<Policy {AUTHENTICATED_POLICY}>\n{_ADMIN_LIMIT}"
            f"  <Limit {SUBMIT_OPERATIONS}>\n"
            "    AuthType Basic\n    Require valid-user\n    Encryption Required\n"
            "    Order deny,allow\n  </Limit>\n"
            "  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
        )
        (f / "cups-files.conf").write_text(
            f"ServerRoot {f}\nServerBin {f}/serverbin\nCacheDir {f}/cache\n"
            f"StateDir {f}/state\nRequestRoot {f}/spool\nTempDir {f}/spool/tmp\n"
            f"AccessLog {f}/log/access_log\nErrorLog {f}/log/error_log\n"
            f"PageLog {f}/log/page_log\nUser lp\nGroup lp\nSystemGroup root\n"
            # cupsd makes itself a certificate here for TLS (Encryption Required).
            f"ServerKeychain {f}/ssl\n"
        )
        self._place_peer_cred()
        (f / "ssl").mkdir(exist_ok=True)
        (f / "get-job.test").write_text(GET_JOB)
        (f / "print-job.test").write_text(PRINT_JOB)

    def _place_peer_cred(self) -> None:
        """`PeerCred On` (root signs in by the private socket's peer credentials): in
        cups-files.conf since Debian's CUPS security update of 2026 (2.4.2-3+deb12u10,
        which refuses it in cupsd.conf), in cupsd.conf before it."""
        f = self.folder
        files = (f / "cups-files.conf").read_text()
        (f / "cups-files.conf").write_text(files + "PeerCred On\n")
        test = [
            "cupsd", "-t", "-c", str(f / "cupsd.conf"), "-s", str(f / "cups-files.conf")
        ]  # fmt: skip
        if subprocess.run(test, capture_output=True).returncode != 0:
            (f / "cups-files.conf").write_text(files)
            with (f / "cupsd.conf").open("a") as conf:
                conf.write("PeerCred On\n")

    def start(self) -> LocalCups:
        if not shutil.which("cupsd"):
            raise InfraError("cupsd is not installed (apt-get install cups cups-ipp-utils)")
        self.port = self.port or free_port()
        if self.admin_folder is None:
            self.admin_folder = Path(tempfile.mkdtemp(prefix="platen-cups-"))  # mode 0700
        self._write_config()
        log = open(self.folder / "cupsd.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "cupsd",
                "-f",
                "-c",
                str(self.folder / "cupsd.conf"),
                "-s",
                str(self.folder / "cups-files.conf"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lifeline.watch(self.proc.pid)
        wait_for_port(self.port, 30, self.proc)
        if self.agent:
            self.start_agent()
        return self

    def start_agent(self) -> None:
        """The print server's agent, listening once this returns."""
        self.agent_socket.unlink(missing_ok=True)
        # The child keeps its own copy of the log's descriptor; ours is closed at once.
        env = {
            **os.environ,
            "PLATEN_BACKEND_CONFIG": str(self.backend_config),
            "PLATEN_AGENT_SOCKET": str(self.agent_socket),
        }
        with open(self.folder / "agent.log", "ab") as log:
            if self.launcher is not None:
                self.agent_proc = self.launcher(
                    AGENT_MODULE,
                    env=env,
                    stdout=log.fileno(),
                    stderr=subprocess.STDOUT,
                    new_session=True,
                )
            else:
                self.agent_proc = subprocess.Popen(
                    [sys.executable, "-m", AGENT_MODULE],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                lifeline.watch(self.agent_proc.pid)
        deadline = time.monotonic() + 30
        while not self.agent_socket.exists():
            if self.agent_proc.poll() is not None or time.monotonic() > deadline:
                raise InfraError(f"the print agent did not start (see {self.folder}/agent.log)")
            time.sleep(0.05)

    def stop_agent(self) -> None:
        stop_process(self.agent_proc, timeout=10)
        self.agent_proc = None

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A CUPS command as this host's administrator, by the private socket."""
        out = subprocess.run(
            argv,
            env=self.admin_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and out.returncode != 0:
            raise InfraError(f"{' '.join(argv)} failed: {out.stderr.strip()}")
        return out

    def add_queue(self, name: str, inner_uri: str, *, everywhere: bool = True) -> None:
        """A queue for `inner_uri`, then switched to `platen:/<inner_uri>`."""
        if everywhere:
            self._add_everywhere(name, inner_uri)
        else:
            self.run("lpadmin", "-p", name, "-E", "-v", inner_uri, "-m", "raw")
        self.run("lpadmin", "-p", name, "-v", f"platen:/{inner_uri}")
        self.run("cupsenable", name)
        self.run("cupsaccept", name)

    def _add_everywhere(self, name: str, inner_uri: str, timeout: float = 20) -> None:
        """`lpadmin -m everywhere`, and the PPD it made kept (`made_ppds`) once cupsd has it
        whole. One fresh-clone run found none there at once, nor ever after the device was
        switched (cupsd logged `Unable to connect to :0`): so it is waited for, and the
        queue made again if it never comes."""
        for _ in range(2):
            self.run("lpadmin", "-p", name, "-E", "-v", inner_uri, "-m", "everywhere")
            text = self._whole_ppd(name, timeout, twice=False)
            if text is not None:
                self.made_ppds[name] = text
                return
        raise InfraError(
            f"lpadmin -m everywhere made no PPD for {name}; cupsd: {self.error_log_about(name)}"
        )

    def ppd(self, queue: str, timeout: float = 30) -> str:
        """The PPD cupsd keeps for `queue`, read whole: cupsd replaces the file when it
        changes a queue (one fresh-clone run found it missing for a moment after the
        queue was set up), so it is read once it is there and the same twice running.
        Three fresh-clone runs of some hundred found it gone for good after the queue's
        device was switched to `platen:/` (not understood): then the one `lpadmin` made,
        read as it made it, said as a warning with what cupsd logged."""
        text = self._whole_ppd(queue, timeout, twice=True)
        if text is not None:
            return text
        logged = self.error_log_about(queue)
        if queue in self.made_ppds:
            warnings.warn(
                f"cupsd keeps no PPD for {queue} now; the one lpadmin made is used. "
                f"cupsd's log about it: {logged}",
                stacklevel=2,
            )
            return self.made_ppds[queue]
        path = self.folder / "ppd" / f"{queue}.ppd"
        raise InfraError(f"no complete PPD for queue {queue} in {path}; cupsd: {logged}")

    def _whole_ppd(self, queue: str, timeout: float, *, twice: bool) -> str | None:
        """The PPD cupsd keeps for `queue` once it is whole (with `twice`, also the same in
        two reads running), or None if it is not by `timeout`."""
        path = self.folder / "ppd" / f"{queue}.ppd"
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                text = path.read_text()
            except FileNotFoundError:
                text = None
            if text and complete_ppd(text) and (not twice or text == last):
                return text
            if time.monotonic() > deadline:
                return None
            last = text
            time.sleep(0.05)

    def error_log_about(self, queue: str, lines: int = 20) -> str:
        """The last lines of cupsd's error log that name `queue`."""
        try:
            text = (self.folder / "log" / "error_log").read_text(errors="replace")
        except OSError as exc:
            return f"(no error log: {exc})"
        return " | ".join([line for line in text.splitlines() if queue in line][-lines:])

    def lp(self, queue: str, file: Path, user: str, *options: str, title: str | None = None) -> int:
        argv = ["lp", "-d", queue, "-U", user, "-t", title or file.name]
        for option in options:
            argv += ["-o", option]
        out = self.run(*argv, str(file))
        # "request id is lab-color-3 (1 file(s))"
        return int(out.stdout.split("request id is ", 1)[1].split()[0].rsplit("-", 1)[1])

    def authenticate_queue(self, name: str) -> None:
        """Make `name` an `authenticated` queue: cupsd then takes jobs only from users who
        sign in (over TLS), and names the signed-in user as the job's user."""
        self.run("lpadmin", "-p", name, "-o", f"printer-op-policy={AUTHENTICATED_POLICY}")

    def print_signed_in(
        self,
        queue: str,
        file: Path,
        *,
        login: str | None,
        password: str | None,
        requesting: str,
        title: str | None = None,
    ) -> int:
        """Submit `file` over IPPS as `login` (no credentials when None), asking to be
        `requesting`; the CUPS job id. InfraError with CUPS's answer when refused."""
        userinfo = f"{login}:{password}@" if login is not None else ""
        out = self.run(
            "ipptool",
            "-t",
            "-d",
            f"requesting={requesting}",
            "-d",
            f"title={title or file.name}",
            "-f",
            str(file),
            f"ipps://{userinfo}{self.server}/printers/{queue}",
            str(self.folder / "print-job.test"),
            check=False,
        )
        for line in out.stdout.splitlines():
            if line.strip().startswith("job-id (integer) = ") and out.returncode == 0:
                return int(line.rsplit("=", 1)[1])
        status = [ln.strip() for ln in out.stdout.splitlines() if "status-code" in ln]
        raise InfraError(f"CUPS refused the job: {status or out.stdout[-500:]}")

    def job(self, queue: str, job_id: int) -> dict[str, str]:
        """job-state (pending, processing, canceled, aborted, completed...) and its message."""
        out = self.run(
            "ipptool",
            "-c",
            "-d",
            f"job_id={job_id}",
            f"ipp://{self.server}/printers/{queue}",
            str(self.folder / "get-job.test"),
            check=False,
        )
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        if len(lines) < 2:
            return {}
        header = [h.strip() for h in lines[0].split(",")]
        values = [v.strip().strip('"') for v in lines[1].split(",", len(header) - 1)]
        return dict(zip(header, values, strict=False))

    def stop(self) -> None:
        self.stop_agent()
        stop_process(self.proc, timeout=10)
        if self.admin_folder is not None:
            shutil.rmtree(self.admin_folder, ignore_errors=True)
            self.admin_folder = None


@contextmanager
def host_account(login: str, password: str) -> Iterator[str]:
    """A throwaway account on this host (no home, no shell) that PAM will sign in, for
    `authenticated` queues; removed afterwards. Needs root."""
    if os.geteuid() != 0:
        raise InfraError("creating host accounts needs root")
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", login], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{login}:{password}\n", text=True, check=True)
        yield login
    finally:
        subprocess.run(["userdel", login], check=False, capture_output=True)
