"""The backend's side of its conversation with the print server's agent (`agent`).

One Unix stream socket per job, one JSON object a line. The backend sends a request
(`{"op": ...}`) and reads lines until the answer: on the way, the agent may pass on
what the backend says to cupsd (`{"say": [kind, text]}`) and the steps of its timings
(`{"mark": step, "at": when}`, on `timings`' clock). An agent that refuses the backend
(`{"refused": why}`), answers nonsense or goes away is `AgentGone`: the backend then
does the rest of the job itself.

Standard library only: the backend imports it on every job.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from collections.abc import Callable

# Raised when an agent and a backend of different releases meet: the backend then does
# the job itself rather than guess what the other side means.
PROTOCOL = 1


class AgentGone(Exception):
    """The agent is not there, refused this backend, or stopped answering mid-job."""


def trusted_peer(sock: socket.socket) -> bool:
    """Whether the process at the other end runs as root or as this backend's own user
    (SO_PEERCRED: the kernel's word, not the peer's)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid in (0, os.getuid())


class AgentLink:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rwb")

    @classmethod
    def open(cls, path: str) -> AgentLink | None:
        """A connection to the agent at `path`, or None when none listens there."""
        if not path:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            return None
        if not trusted_peer(sock):
            # Whatever listens there is not the agent cupsd's user runs (a socket path set
            # into a folder others may write to): its "released" would print jobs free.
            # The backend does the job itself instead, as when no agent runs.
            sock.close()
            raise AgentGone(f"what listens at {path} is not run by root or this backend's user")
        return cls(sock)

    def call(
        self,
        op: str,
        say: Callable[[str, str], None],
        mark: Callable[[str, float | None], None],
        meanwhile: Callable[[], None] | None = None,
        **fields: object,
    ) -> dict[str, object]:
        """The agent's answer to one request. `meanwhile` runs once the request is sent,
        before the answer is read: the backend's own work while the agent does its."""
        try:
            self.file.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            self.file.flush()
            if meanwhile is not None:
                meanwhile()
            while True:
                line = self.file.readline()
                if not line:
                    raise AgentGone("the agent closed the connection")
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise AgentGone(f"the agent answered {line[:80]!r}")
                if "say" in message:
                    kind, text = message["say"]
                    say(str(kind), str(text))
                elif "mark" in message:
                    # When the agent did the step (the clock is the machine's, not the
                    # process's), not when the backend read the line.
                    at = message.get("at")
                    mark(str(message["mark"]), at if isinstance(at, float) else None)
                elif "refused" in message:
                    raise AgentGone(f"the agent refused this backend: {message['refused']}")
                else:
                    return message
        except (OSError, ValueError, TypeError) as exc:
            raise AgentGone(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        for closing in (self.file, self.sock):
            with contextlib.suppress(OSError):
                closing.close()
