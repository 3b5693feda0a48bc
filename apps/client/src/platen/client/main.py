"""platen-client: show one user's Platen messages on their desktop.

It only presents what the server sends; it decides nothing and is trusted with nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from platen.client.formatting import console_line, json_line
from platen.events.base import HEADER_VERSION, is_valid_login
from platen.events.discovery import amqp_url as discovered_amqp_url
from platen.events.registry import ContractError, decode
from platen.events.routing import desktop_queue


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="platen-client", description=__doc__.splitlines()[0])
    p.add_argument("--user", default=getpass.getuser(), help="whose messages (default: you)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--console", action="store_true", help="one readable line per message")
    mode.add_argument("--json", action="store_true", help="one JSON object per message")
    p.add_argument("--amqp-url", default=None, help="broker URL (default: $PLATEN_AMQP_URL)")
    args = p.parse_args(argv)
    if not is_valid_login(args.user):
        p.error(f"{args.user!r} is not a valid login")
    if not (args.console or args.json):
        args.console = True  # the GUI arrives with the user-client issue
    return args


def _amqp_url(args: argparse.Namespace) -> str:
    if args.amqp_url:
        return args.amqp_url
    return discovered_amqp_url()


async def wait_for_queue(url: str, login: str) -> None:
    """Return once the user's desktop queue exists (the server creates it with the user)."""
    announced = False
    while True:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            try:
                await channel.declare_queue(desktop_queue(login), passive=True)
                return
            except aio_pika.exceptions.ChannelNotFoundEntity:
                pass
        if not announced:
            print(f"waiting for Platen to know user {login}...", file=sys.stderr, flush=True)
            announced = True
        await asyncio.sleep(2)


async def listen(url: str, login: str, as_json: bool) -> None:
    await wait_for_queue(url, login)
    # A robust connection reconnects and resumes consuming after a broker restart;
    # unacknowledged messages come back, so nothing is lost.
    connection = await aio_pika.connect_robust(
        url, client_properties={"connection_name": f"platen-client/{login}"}
    )
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=20)
        queue = await channel.get_queue(desktop_queue(login), ensure=False)
        seen: set[str] = set()

        async def on_message(raw: AbstractIncomingMessage) -> None:
            async with raw.process():
                if raw.message_id in seen:  # at-least-once delivery: show each once
                    return
                try:
                    msg = decode(raw.type, (raw.headers or {}).get(HEADER_VERSION), raw.body)
                except ContractError as exc:
                    print(f"(unreadable message skipped: {exc})", file=sys.stderr)
                    return
                seen.add(raw.message_id or "")
                print(json_line(msg) if as_json else console_line(msg), flush=True)

        await queue.consume(on_message)
        await asyncio.Future()


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(listen(_amqp_url(args), args.user, args.json))


if __name__ == "__main__":
    run()
