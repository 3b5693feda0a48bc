"""platen-client: show one user's Platen balance and messages, and answer print prompts.

It only presents what the server sends and passes on what the user answers; it decides
nothing and is trusted with nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from platen.client import app as client_app
from platen.client import credentials
from platen.client.config import ConfigError, Options, load
from platen.client.model import ClientModel
from platen.client.recent import (
    Favourites,
    RecentAccounts,
    default_config_dir,
    default_state_dir,
)
from platen.client.transport import Transport

log = logging.getLogger("platen.client")


def make_view(options: Options):
    if options.mode == "json":
        from platen.client.textviews import JsonView

        return JsonView()
    if options.mode == "console":
        from platen.client.textviews import ConsoleView

        return ConsoleView()
    from platen.client.tkview import TkView  # imported only when windows are wanted

    return TkView(options)


async def main(options: Options) -> None:
    state_dir = options.state_dir or default_state_dir()
    model = ClientModel(
        options.login,
        recent=RecentAccounts.load(state_dir / f"recent-{options.login}.json"),
        # Chosen by the user, so kept with their settings, not with the client's state.
        favourites=Favourites.load(default_config_dir() / f"favourites-{options.login}.json"),
        local=options,
    )
    view = make_view(options)
    app = client_app.ClientApp(model, view)

    def unreadable(text: str) -> None:
        status("warning", text)

    def status(state: str, detail: str) -> None:
        log.info("status %s: %s", state, detail)
        view.status(state, detail)

    transport = Transport(
        options.url, options.login, app.on_delivery, status, on_unreadable=unreadable
    )
    app.transport = transport
    await client_app.run(app, transport)
    if transport.signed_out:
        if options.signed_in:
            # The credential `--sign-in` kept is dead: drop it, so that the next start
            # asks for a sign-in rather than trying it again.
            credentials.forget(options.login, default_config_dir())
        print(
            "platen-client: this desktop is signed out of Platen; "
            "sign in again with platen-client --sign-in",
            file=sys.stderr,
        )
        if options.mode == "gui":
            from platen.client.tksignin import tell_signed_out

            tell_signed_out()
        raise SystemExit(3)


def log_file(options: Options) -> Path:
    return (options.state_dir or default_state_dir()) / f"client-{options.login}.log"


def start_logging(options: Options) -> Path | None:
    """With --debug, what the client does goes to stderr and to a log file in the user's
    state folder (kept to a few megabytes); else only what stops it. Nothing secret is
    logged: the broker URL is never written with its password."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    path = None
    if options.debug:
        from logging.handlers import RotatingFileHandler

        path = log_file(options)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Private to the user: it says what they print.
            path.touch(mode=0o600, exist_ok=True)
            handlers.append(RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2))
        except OSError as exc:
            print(f"platen-client: no log file ({exc}); logging to stderr", file=sys.stderr)
            path = None
    logging.basicConfig(
        level=logging.DEBUG if options.debug else logging.CRITICAL,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return path


def _sign_in(options: Options) -> None:
    from platen.client.signin import SignInError, sign_in

    try:
        print(sign_in(options, default_config_dir()))
    except (SignInError, OSError) as exc:
        print(f"platen-client: sign-in failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def run(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = load(argv)
    except ConfigError as exc:
        print(f"platen-client: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if options.sign_in:
        _sign_in(options)
        return
    if options.install_autostart:
        from platen.client.autostart import AutostartError, install

        try:
            path = install(argv)
        except (AutostartError, OSError) as exc:
            print(f"platen-client: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"platen-client will start at log-in: {path}")
        return
    if options.needs_sign_in:
        # The site's config and no credential yet (a desktop just rolled out): the first
        # start signs in, asking the password in a window or on the terminal, then runs.
        _sign_in(options)
        options = load(argv)
    if path := start_logging(options):
        log.info("platen-client for %s, logging to %s", options.login, path)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(options))


if __name__ == "__main__":
    run()
