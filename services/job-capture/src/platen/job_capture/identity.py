"""Whose is a captured job: the queue's identity mode against what is known. Pure logic.

The rule for `desktop` queues: a job is its named user's without a question only when
that user's own desktop is connected to the broker from the job's host and no other
user's desktop is (a terminal server with several users signed in proves nobody). What a
desktop is, and where it sits, comes from the broker's own view of its connections (the
broker user it authenticated as, the peer address of its socket), never from anything
the client says about itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from platen.events.print_identity import IdentityMode, JobIdentity

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Desktop:
    """One desktop connection as the broker sees it."""

    login: str
    address: Address


@dataclass(frozen=True)
class Origin:
    """Where CUPS says a job came from, as addresses. cupsd names every loopback peer
    (all of 127/8 and ::1) "localhost", so a "localhost" job may come from any of them."""

    addresses: frozenset[Address]
    any_loopback: bool = False

    def holds(self, address: Address) -> bool:
        return address in self.addresses or (self.any_loopback and address.is_loopback)


def parse_address(text: str) -> Address | None:
    """An address as the broker or CUPS writes it (an IPv4-mapped IPv6 address is the
    IPv4 one; brackets and an IPv6 zone are dropped); None for a host name."""
    text = text.strip().strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def origin_of(host: str | None, resolved: Iterable[str] = ()) -> Origin | None:
    """The job's origin from CUPS's `job-originating-host-name` and, for a host name,
    the addresses it resolved to; None when nothing is known."""
    if not host:
        return None
    if host.strip().lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return Origin(frozenset(), any_loopback=True)
    address = parse_address(host)
    if address is not None:
        return Origin(frozenset({address}))
    addresses = frozenset(a for a in (parse_address(r) for r in resolved) if a is not None)
    return Origin(addresses) if addresses else None


def decide(
    mode: IdentityMode,
    *,
    source: str,
    user: str,
    origin: Origin | None,
    desktops: list[Desktop] | None,
) -> JobIdentity:
    """How the job's user is known. `desktops` is None when presence is unknown (no
    management API, or it did not answer): unknown is unproven."""
    if source == "api":
        return "api"  # only the admin's identity may submit through the command interface
    if mode == "trusted":
        return "trusted"
    if mode == "authenticated":
        return "authenticated"
    if origin is None or desktops is None:
        return "unverified"
    there = {d.login for d in desktops if origin.holds(d.address)}
    return "present" if there == {user} else "unverified"
