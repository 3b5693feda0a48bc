"""The sign-in endpoint: `POST /sign-in` over HTTPS, served by the notification service.

Why HTTPS and not the broker (docs/security.md "Signing in with the directory password"):
the password then goes from the desktop straight into this process's memory over TLS and
nowhere else. Through the broker it would sit in a queue (quorum queues write every
message to disk), could be dead-lettered whole by the broker itself, and an unsigned
desktop would need a broker identity shared by everyone; and the failure limit per source
address needs the address, which only a direct connection gives.

A deliberately small HTTP/1.1 server (one request per connection, bounded sizes and
times), so that the service needs no web framework. Settings: `PLATEN_SIGNIN_ADDRESS`
(`HOST:PORT`; unset: no endpoint), `PLATEN_SIGNIN_CERT_FILE` and `PLATEN_SIGNIN_KEY_FILE`
(required: the endpoint is never served in clear).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl

import structlog
from pydantic import ValidationError

from platen.events.identities import SignInGranted, SignInRequest
from platen.notification.signin import SignIn

log = structlog.get_logger("notification.signin")

PATH = "/sign-in"
MAX_BODY = 4096
MAX_HEADERS = 50
READ_TIMEOUT = 10.0  # seconds for the whole request: a slow sender holds nothing long
# Connections served at once; more are closed at once (each holds at most READ_TIMEOUT,
# plus the directory's answer), so a flood cannot exhaust the service's sockets.
MAX_CONNECTIONS = 64


class BadRequest(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """The body of one `POST /sign-in`, or BadRequest."""
    line = await reader.readline()
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "not an HTTP request")
    method, path = parts[0], parts[1]
    length = None
    for _ in range(MAX_HEADERS + 1):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise BadRequest(400, "bad Content-Length") from None
    else:
        raise BadRequest(431, "too many headers")
    if path != PATH:
        raise BadRequest(404, f"nothing at {path[:100]!r}: POST {PATH}")
    if method != "POST":
        raise BadRequest(405, f"use POST {PATH}")
    if length is None or not 0 < length <= MAX_BODY:
        raise BadRequest(413 if length else 411, f"a body of 1 to {MAX_BODY} bytes is needed")
    return await reader.readexactly(length)


def granted_body(granted: SignInGranted) -> dict:
    # Written out by hand: pydantic writes a SecretStr as `**********`, which is what
    # every other place must see.
    return {
        "login": granted.login,
        "desktop": granted.desktop,
        "username": granted.username,
        "password": granted.password.get_secret_value(),
        "url": granted.url,
    }


class SignInServer:
    def __init__(self, sign_in: SignIn, host: str, port: int, context: ssl.SSLContext) -> None:
        self.sign_in = sign_in
        self.host, self.port = host, port
        self.context = context
        self.server: asyncio.Server | None = None
        self.active = 0

    @classmethod
    def from_env(cls, sign_in: SignIn, env=os.environ) -> SignInServer | None:
        address = env.get("PLATEN_SIGNIN_ADDRESS")
        if not address:
            return None
        host, _, port = address.rpartition(":")
        cert, key = env.get("PLATEN_SIGNIN_CERT_FILE"), env.get("PLATEN_SIGNIN_KEY_FILE")
        if not cert or not key:
            raise ValueError(
                "PLATEN_SIGNIN_ADDRESS needs PLATEN_SIGNIN_CERT_FILE and PLATEN_SIGNIN_KEY_FILE:"
                " passwords are never taken in clear"
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return cls(sign_in, host.strip("[]") or "0.0.0.0", int(port), context)

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._serve,
            self.host,
            self.port,
            ssl=self.context,
            ssl_handshake_timeout=READ_TIMEOUT,
            # Replicas on one host share the port (Linux lets only the same user's
            # processes do so), the kernel spreading connections between them.
            reuse_port=hasattr(socket, "SO_REUSEPORT"),
        )
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("sign-in endpoint listening", host=self.host, port=self.port)

    async def run(self) -> None:
        assert self.server is not None
        async with self.server:
            await self.server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "unknown"
        if self.active >= MAX_CONNECTIONS:
            log.warning("sign-in connection refused: too many at once", source=source)
            writer.close()
            return
        self.active += 1
        try:
            try:
                body = await asyncio.wait_for(read_request(reader), READ_TIMEOUT)
                request = SignInRequest.model_validate_json(body)
            except BadRequest as exc:
                await self._answer(writer, exc.status, {"error": str(exc)})
                return
            except ValidationError as exc:
                # Which fields, never their values (one of them is a password).
                fields = sorted({".".join(map(str, e["loc"])) or "body" for e in exc.errors()})
                await self._answer(writer, 400, {"error": f"invalid: {', '.join(fields)}"})
                return
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            status, answer = await self.sign_in.sign_in(request, source)
            if isinstance(answer, SignInGranted):
                await self._answer(writer, status, granted_body(answer))
            else:
                await self._answer(writer, status, answer.model_dump(exclude_none=True))
        except Exception as exc:  # one bad connection never stops the endpoint
            log.error("sign-in endpoint error", source=source, error=type(exc).__name__)
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, writer: asyncio.StreamWriter, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()


REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


async def start(broker, rt) -> None:
    """on_ready hook (after the broker identities'): serve the endpoint if configured."""
    server = SignInServer.from_env(SignIn.from_env(broker, rt.pool))
    if server is None:
        log.info("no sign-in endpoint (PLATEN_SIGNIN_ADDRESS unset)")
        return
    await server.start()
    rt.tasks.append(asyncio.create_task(server.run(), name="sign-in"))
