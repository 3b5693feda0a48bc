"""`platen-client --sign-in` on the desktop's side: the credential kept in the keyring or an
owner-only file (never the directory password), which credential a start uses, the HTTPS
request and its errors (against a real local TLS server), and what counts as signed out."""

from __future__ import annotations

import json
import ssl
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiormq.exceptions
import pytest

from platen.client import config, credentials
from platen.client.signin import SignInError, request_credential, sign_in
from platen.client.transport import login_refused
from platen.localstack.tls import make_test_ca

DIRECTORY_PASSWORD = "the user's own directory password"
ISSUED = "issued-desktop-secret"


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setitem(sys.modules, "keyring", None)  # no keyring unless a test adds one
    return tmp_path / "cfg" / "platen-client"


def stored(login="ann") -> credentials.Stored:
    return credentials.Stored(login, "pc-1", "amqps://broker:5671/platen", f"{login}~pc-1", ISSUED)


def test_without_a_keyring_the_credential_goes_to_an_owner_only_file(config_home):
    config_home.parent.mkdir(mode=0o755)
    where = credentials.save(stored(), config_home)
    path = credentials.path_for("ann", config_home)
    assert where == str(path)
    assert path.stat().st_mode & 0o777 == 0o600 and config_home.stat().st_mode & 0o777 == 0o700
    assert ISSUED in path.read_text()
    assert credentials.load("ann", config_home) == stored()
    assert ISSUED not in repr(credentials.load("ann", config_home))
    credentials.forget("ann", config_home)
    assert credentials.load("ann", config_home) is None and not path.exists()


class FakeKeyring(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("keyring")
        self.secrets: dict[tuple[str, str], str] = {}
        self.backends = types.SimpleNamespace(fail=types.SimpleNamespace(Keyring=type(None)))

    def get_keyring(self):
        return object()  # a working backend

    def set_password(self, service, user, password):
        self.secrets[(service, user)] = password

    def get_password(self, service, user):
        return self.secrets.get((service, user))

    def delete_password(self, service, user):
        del self.secrets[(service, user)]


def test_with_a_keyring_the_file_holds_no_secret(config_home, monkeypatch):
    keyring = FakeKeyring()
    monkeypatch.setitem(sys.modules, "keyring", keyring)
    monkeypatch.setitem(sys.modules, "keyring.backends", keyring.backends)
    monkeypatch.setitem(sys.modules, "keyring.backends.fail", keyring.backends.fail)
    assert credentials.save(stored(), config_home) == "the keyring"
    text = credentials.path_for("ann", config_home).read_text()
    assert ISSUED not in text and 'store = "keyring"' in text
    assert keyring.secrets == {("platen-client", "ann"): ISSUED}
    assert credentials.load("ann", config_home) == stored()
    credentials.forget("ann", config_home)
    assert keyring.secrets == {}


def test_a_start_uses_the_kept_credential_unless_told_otherwise(config_home, tmp_path):
    credentials.save(stored(), config_home)
    opts = config.load(["--user", "ann"])
    assert opts.signed_in and opts.broker_user == "ann~pc-1" and ISSUED in opts.url
    # The administrator's file (kiosks, scripts) and --amqp-url win over it.
    admin = tmp_path / "admin.toml"
    admin.write_text('url = "amqps://b/platen"\nuser = "ann"\npassword = "admin-issued"\n')
    admin.chmod(0o600)
    opts = config.load(["--config", str(admin)])
    assert not opts.signed_in and opts.broker_user == "ann"
    opts = config.load(["--user", "ann", "--amqp-url", "amqp://x:y@b/platen"])
    assert not opts.signed_in and opts.broker_user == "x"
    # Signing in again does not start from the old credential.
    assert not config.load(["--user", "ann", "--sign-in"]).signed_in
    # Another user on this desktop has none.
    assert not config.load(["--user", "bob"]).signed_in


def test_a_desktop_id_is_checked(config_home):
    assert config.load(["--user", "ann", "--desktop", "Lab-PC.2"]).desktop == "lab-pc.2"
    with pytest.raises(config.ConfigError, match="desktop id"):
        config.load(["--user", "ann", "--desktop", "a b"])


def test_only_a_refused_login_is_a_sign_out():
    assert login_refused(aiormq.exceptions.AuthenticationError("PLAIN refused"))
    # What aiormq raises when RabbitMQ closes the handshake with 403 (a deleted user).
    assert login_refused(
        aiormq.exceptions.ProbableAuthenticationError(
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
            "For details see the broker logfile."
        )
    )
    # A disabled user's vhost access, or a broker away, is waited out as before.
    assert not login_refused(ConnectionError("NOT_ALLOWED - access to vhost 'platen' refused"))
    assert not login_refused(ConnectionRefusedError(111, "Connection refused"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real HTTPS endpoint standing in for the notification service's."""
    tls = make_test_ca(tmp_path_factory.mktemp("tls"))
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, **body})
            if body["password"] == DIRECTORY_PASSWORD:
                status, answer = (
                    200,
                    {
                        "login": body["login"],
                        "desktop": body["desktop"],
                        "username": f"{body['login']}~{body['desktop']}",
                        "password": ISSUED,
                        "url": None,
                    },
                )
            else:
                status, answer = 403, {"error": "the directory did not accept this login"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield types.SimpleNamespace(
        url=f"https://127.0.0.1:{httpd.server_address[1]}", ca=str(tls.ca_cert), seen=seen
    )
    httpd.shutdown()


@pytest.mark.integration  # a real TLS server on a local port
def test_the_request_goes_over_checked_tls_and_says_why_it_failed(server):
    granted = request_credential(server.url, "ann", DIRECTORY_PASSWORD, "pc-1", cafile=server.ca)
    assert granted.username == "ann~pc-1" and granted.password.get_secret_value() == ISSUED
    assert server.seen[-1]["path"] == "/sign-in"
    with pytest.raises(SignInError, match="did not accept"):
        request_credential(server.url, "ann", "guess", "pc-1", cafile=server.ca)
    # A certificate the desktop cannot check: the password is not sent.
    sent = len(server.seen)
    with pytest.raises(SignInError, match="CERTIFICATE_VERIFY_FAILED"):
        request_credential(server.url, "ann", DIRECTORY_PASSWORD, "pc-1")
    with pytest.raises(SignInError, match="must be https"):
        request_credential(server.url.replace("https", "http"), "ann", "pw", "pc-1")
    assert len(server.seen) == sent


@pytest.mark.integration
def test_sign_in_keeps_the_issued_credential_and_never_the_password(
    server, config_home, monkeypatch
):
    site = config_home.parent / "site.toml"
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(
        f'url = "amqps://broker:5671/platen?cafile=/ca.pem"\nuser = "ann"\n'
        f'sign_in_url = "{server.url}"\nsign_in_cafile = "{server.ca}"\n'
    )
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(readline=lambda: "wrong\n"))
    opts = config.load(["--config", str(site), "--sign-in", "--password-stdin", "--desktop", "x1"])
    with pytest.raises(SignInError):
        sign_in(opts, config_home)
    assert not config_home.exists() or not any(config_home.iterdir())
    monkeypatch.setattr(
        "sys.stdin", types.SimpleNamespace(readline=lambda: DIRECTORY_PASSWORD + "\n")
    )
    said = sign_in(opts, config_home)
    assert said.startswith("signed in as ann on desktop x1")
    kept = credentials.load("ann", config_home)
    assert (kept.username, kept.password) == ("ann~x1", ISSUED)
    assert kept.url == "amqps://broker:5671/platen?cafile=/ca.pem"  # no credential in it
    for path in config_home.rglob("*"):
        assert DIRECTORY_PASSWORD not in path.read_text()
    # The next start connects with it.
    assert config.load(["--config", str(site)]).broker_user == "ann~x1"


def test_the_gui_asks_the_password_without_echo_and_cancel_gives_none(display, shots):
    from PIL import Image

    from platen.client.tksignin import ask_password
    from platen.testing.xvfb import screenshot

    seen = {}

    def type_and_sign_in(root, entry, ok):
        try:
            seen["show"] = entry.cget("show")
            entry.insert(0, DIRECTORY_PASSWORD)
            seen["size"] = Image.open(screenshot(display, root, shots / "sign-in.png")).size
            ok()  # takes the password and closes the dialog
        except BaseException:
            root.destroy()  # whatever failed above, the dialog ends (and `seen` says so)
            raise

    assert ask_password("ann", "pc-1", on_shown=type_and_sign_in) == DIRECTORY_PASSWORD
    assert seen["show"] == "\u2022" and seen["size"][0] > 100  # never shown as typed

    def cancel(root, entry, ok):
        entry.insert(0, "half typed")
        root.destroy()  # the window closed, or Cancel

    assert ask_password("ann", "pc-1", on_shown=cancel) is None


def test_the_gui_says_the_desktop_was_signed_out(display, shots):
    from platen.client.tksignin import tell_signed_out
    from platen.testing.xvfb import screenshot

    seen = {}

    def read_and_close(root):
        try:
            seen["text"] = " ".join(
                str(w.cget("text")) for w in root.winfo_children() if w.winfo_class() == "Label"
            )
            screenshot(display, root, shots / "signed-out.png")
        finally:
            root.destroy()

    tell_signed_out(on_shown=read_and_close)
    assert "signed out of Platen" in seen["text"] and "--sign-in" in seen["text"]


@pytest.mark.integration
def test_the_first_start_with_the_sites_config_signs_in_then_runs(server, config_home, monkeypatch):
    """A desktop rolled out with the site's config (no secret in it) and no credential:
    its first start asks the password, keeps the issued credential and runs with it; the
    next start runs without asking. A script (`--json`) is never asked on its stdin."""
    from platen.client import main as client_main

    site = config_home.parent / "site.toml"
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(
        f'url = "amqps://broker:5671/platen"\nuser = "ann"\ndesktop = "pc-9"\n'
        f'sign_in_url = "{server.url}"\nsign_in_cafile = "{server.ca}"\n'
    )
    assert config.load(["--config", str(site)]).needs_sign_in
    assert not config.load(["--config", str(site), "--json"]).needs_sign_in
    asked: list[str] = []
    ran: list[config.Options] = []

    def password(prompt: str) -> str:
        asked.append(prompt)
        return DIRECTORY_PASSWORD

    async def started(options):  # stands in for the connected client
        ran.append(options)

    monkeypatch.setattr("getpass.getpass", password)
    monkeypatch.setattr(client_main, "main", started)
    client_main.run(["--config", str(site), "--console"])
    assert len(asked) == 1 and "ann" in asked[0]
    assert ran[-1].signed_in and ran[-1].broker_user == "ann~pc-9" and not ran[-1].needs_sign_in
    client_main.run(["--config", str(site), "--console"])
    assert len(asked) == 1 and ran[-1].broker_user == "ann~pc-9"
    # A wrong password: nothing kept, the client does not start.
    credentials.forget("ann", config_home)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "guess")
    with pytest.raises(SystemExit) as exited:
        client_main.run(["--config", str(site), "--console"])
    assert exited.value.code == 1 and len(ran) == 2
    assert credentials.load("ann", config_home) is None
