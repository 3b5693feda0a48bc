"""A second host on one machine, for tests of where a connection comes from.

Linux answers for all of 127.0.0.0/8 on the loopback interface, and a socket may bind any
of those addresses as its source. `HostRelay` listens on 127.0.0.1 and forwards each
connection to the real target from another loopback address (127.0.0.2, say), so that a
client pointed at the relay (the real platen-client, or aio-pika) reaches the real broker,
which sees its peer address as that other host. The bytes pass through untouched (TLS
included): to the broker it is simply a client on host B.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class HostRelay:
    def __init__(self, source_address: str, target_host: str, target_port: int) -> None:
        self.source_address = source_address
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> HostRelay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, url: str) -> str:
        """`url` (amqp[s]://user:pw@host:port/vhost?...) pointed at this relay; the host
        name stays, so TLS still checks the broker's certificate against it."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
        return urlunsplit(parts._replace(netloc=f"{netloc}:{self.port}"))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.target, local_addr=(self.source_address, 0)
            )
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()
