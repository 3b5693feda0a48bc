"""A private certificate authority and a server certificate for 127.0.0.1, made with the
`openssl` command: enough to run RabbitMQ's AMQPS listener in tests and `make run`."""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from platen.localstack.servers import InfraError


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise InfraError(f"openssl {args[0]} failed: {out.stderr.strip()}")


def _alt_name(name: str) -> str:
    """A subjectAltName entry: an IP address, else a DNS name."""
    try:
        return f"IP:{ipaddress.ip_address(name)}"
    except ValueError:
        return f"DNS:{name}"


def make_test_ca(
    folder: Path, days: int = 30, names: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> TlsFiles:
    """A new CA and a certificate it signed for `names`, host names or IP addresses (kept
    if present). The containers' broker is reached by its compose name too."""
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if all(p.exists() for p in (files.ca_cert, files.server_cert, files.server_key)):
        return files
    # Keys on the P-256 curve, not RSA: a test run makes a few dozen of these authorities,
    # and an RSA 2048 key pair took openssl about 150 ms of CPU to find, an EC one under 5.
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", str(days),
        "-subj", "/CN=Platen test CA", "-keyout", "ca-key.pem", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=localhost",
        "-keyout", "server-key.pem", "-out", "server.csr", cwd=folder,
    )  # fmt: skip
    alt = ", ".join(_alt_name(n) for n in names)
    (folder / "server.ext").write_text(
        f"subjectAltName = {alt}\nextendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", str(days), "-extfile", "server.ext",
        "-out", "server.pem", cwd=folder,
    )  # fmt: skip
    (folder / "ca-key.pem").chmod(0o600)
    files.server_key.chmod(0o600)
    return files
