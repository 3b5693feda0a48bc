"""The sign-in endpoint as a desktop reaches it: HTTPS only, one small JSON request, bounded;
a bad request gets a clear error that never repeats the password; the answer carries the
issued credential and nothing else. (The sign-in decisions are `tests/unit/test_signin.py`;
the whole path, with the real directory and broker, `tests/e2e/test_sign_in.py`.)"""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest

from platen.events.identities import SignInGranted, SignInRefused
from platen.localstack.tls import make_test_ca
from platen.notification.signin_http import SignInServer

pytestmark = pytest.mark.integration  # a real TLS server on a local port

SECRET = "hunter2-directory-password"


class Decider:
    """Stands in for `signin.SignIn`: grants ann with SECRET, refuses the rest."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    async def sign_in(self, request, source):
        self.seen.append((request.login, request.desktop, source))
        if request.password.get_secret_value() == SECRET:
            return 200, SignInGranted(
                login=request.login,
                desktop=request.desktop,
                username=f"{request.login}~{request.desktop}",
                password="issued-pw",
            )
        return 403, SignInRefused(error="the directory did not accept this login and password")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def endpoint(tls):
    decider = Decider()
    server = SignInServer.from_env(
        decider,
        {
            "PLATEN_SIGNIN_ADDRESS": "127.0.0.1:0",
            "PLATEN_SIGNIN_CERT_FILE": str(tls.server_cert),
            "PLATEN_SIGNIN_KEY_FILE": str(tls.server_key),
        },
    )
    await server.start()
    task = asyncio.create_task(server.run())
    client = ssl.create_default_context(cafile=str(tls.ca_cert))
    yield server, decider, client
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def exchange(server, context, raw: bytes) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"Cache-Control: no-store" in head
    return status, json.loads(body)


def post(body: bytes, path: str = "/sign-in", method: str = "POST") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def body(**fields) -> bytes:
    return json.dumps({"login": "ann", "password": SECRET, "desktop": "PC-1", **fields}).encode()


async def test_a_granted_sign_in_carries_the_issued_credential(endpoint):
    server, decider, client = endpoint
    status, answer = await exchange(server, client, post(body()))
    assert status == 200
    assert answer == {
        "login": "ann",
        "desktop": "pc-1",
        "username": "ann~pc-1",
        "password": "issued-pw",
        "url": None,
    }
    assert decider.seen == [("ann", "pc-1", "127.0.0.1")]  # the source is the socket's peer
    status, answer = await exchange(server, client, post(body(password="guess")))
    assert (status, answer) == (
        403,
        {"error": "the directory did not accept this login and password"},
    )


async def test_bad_requests_get_a_clear_error_and_never_the_password_back(endpoint):
    server, decider, client = endpoint
    cases = {
        "wrong path": (post(body(), path="/"), 404),
        "wrong method": (post(body(), method="PUT"), 405),
        "too big": (post(b"x" * 5000), 413),
        "not JSON": (post(b"{" + SECRET.encode()), 400),
        "bad login": (post(body(login="a b")), 400),
        "unknown field": (post(body(cost="0")), 400),
        "not HTTP": (b"hello\r\n\r\n", 400),
    }
    for name, (raw, wanted) in cases.items():
        status, answer = await exchange(server, client, raw)
        assert status == wanted, name
        assert SECRET not in json.dumps(answer), name
    _, answer = await exchange(server, client, post(body(login="a b")))
    assert answer == {"error": "invalid: login"}
    assert decider.seen == []  # none reached the decision


async def test_nothing_is_served_in_clear(endpoint, tmp_path):
    server, _, _ = endpoint
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(post(body()))
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert not answer.startswith(b"HTTP/")
    with pytest.raises(ValueError, match="CERT_FILE"):
        SignInServer.from_env(Decider(), {"PLATEN_SIGNIN_ADDRESS": "127.0.0.1:0"})


async def test_connections_over_the_limit_are_closed_unanswered(endpoint, monkeypatch):
    from platen.notification import signin_http

    server, decider, client = endpoint
    monkeypatch.setattr(signin_http, "MAX_CONNECTIONS", 1)
    _, idle = await asyncio.open_connection("127.0.0.1", server.port, ssl=client)
    deadline = asyncio.get_running_loop().time() + 30
    while server.active < 1:  # the idle one is being served (waiting for its request)
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client)
    writer.write(post(body()))
    await writer.drain()
    assert await reader.read() == b""
    assert decider.seen == []
    idle.close()
    writer.close()


async def test_replicas_on_one_host_share_the_port(endpoint, tls):
    server = endpoint[0]
    env = {
        "PLATEN_SIGNIN_ADDRESS": f"127.0.0.1:{server.port}",
        "PLATEN_SIGNIN_CERT_FILE": str(tls.server_cert),
        "PLATEN_SIGNIN_KEY_FILE": str(tls.server_key),
    }
    second = SignInServer.from_env(Decider(), env)
    await second.start()  # no "address already in use"
    assert second.port == server.port
    second.server.close()
