"""platen-client: show one user's Platen balance and messages, and answer print prompts.

It only presents what the server sends and passes on what the user answers; it decides
nothing and is trusted with nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from platen.client import app as client_app
from platen.client.config import ConfigError, Options, load
from platen.client.model import ClientModel
from platen.client.recent import (
    Favourites,
    RecentAccounts,
    default_config_dir,
    default_state_dir,
)
from platen.client.transport import Transport


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
    )
    view = make_view(options)
    app = client_app.ClientApp(model, view)

    def unreadable(text: str) -> None:
        view.status("warning", text)

    transport = Transport(
        options.url, options.login, app.on_delivery, view.status, on_unreadable=unreadable
    )
    app.transport = transport
    await client_app.run(app, transport)


def run(argv: list[str] | None = None) -> None:
    try:
        options = load(argv)
    except ConfigError as exc:
        print(f"platen-client: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=logging.DEBUG if options.debug else logging.CRITICAL,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(options))


if __name__ == "__main__":
    run()
