"""The ledger's rules. Pure logic: no database, no broker."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from platen.events.money import CENT

REVENUE = "system:revenue"
FUNDING = "system:funding"
# Charges credit one of these revenue accounts (migration 004 creates them), so that two
# charges paid by different accounts rarely wait for the same row lock.
REVENUE_SHARDS = 16

# Repeated wrong PINs lock a user out of PIN entry for a while.
PIN_ATTEMPTS = 5
PIN_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Decision:
    authorized: bool
    reason: str | None = None


def authorize(
    *,
    balance: Decimal,
    held: Decimal,
    cost: Decimal,
    restricted: bool,
    overdraft_limit: Decimal = Decimal(0),
) -> Decision:
    """May a job costing `cost` be reserved against this account?

    Funds already held for jobs still printing count as spent, so two jobs that each fit
    but together do not cannot both be authorised.
    """
    if cost < 0:
        raise ValueError("a job cannot cost less than nothing")
    if overdraft_limit < 0:
        raise ValueError("an overdraft limit is zero or more")
    if not restricted:
        return Decision(True)
    available = balance - held
    if available - cost >= -overdraft_limit:
        return Decision(True)
    return Decision(
        False,
        f"insufficient credit: this job costs {cost}, your available balance is {available}",
    )


def charge_amount(cost: Decimal, charge_rate: Decimal) -> Decimal:
    """What an account pays for a job priced `cost`: its charge rate applied, then rounded
    once to the cent, half up."""
    if charge_rate <= 0:
        raise ValueError("a charge rate is more than zero")
    return (cost * charge_rate).quantize(CENT, rounding=ROUND_HALF_UP)


def refundable(charged: Decimal, refunded: Decimal, asked: Decimal | None) -> Decimal:
    """How much a refund may return; raises ValueError when it may return nothing or less
    than asked. `asked` None means all that is left."""
    left = charged - refunded
    if left <= 0:
        raise ValueError("this job has been refunded in full already")
    if asked is None:
        return left
    if asked > left:
        raise ValueError(f"at most {left} of this job can still be refunded")
    return asked


def revenue_account(job_id: uuid.UUID) -> str:
    """The revenue account a job's charge credits: fixed by the job id, so a retried
    charge and the job's refunds always name the same one."""
    digest = hashlib.blake2b(job_id.bytes, digest_size=4).digest()
    return f"{REVENUE}:{int.from_bytes(digest) % REVENUE_SHARDS:02d}"


def personal_account(login: str) -> str:
    return f"personal:{login}"


def shared_account(path: str) -> str:
    return f"shared:{path}"


# ----------------------------------------------------------------- PINs


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """scrypt with a random salt, stored as `scrypt$<salt hex>$<hash hex>`."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hash_pin(pin, bytes.fromhex(salt_hex)).split("$")[2]
    # Constant time: how much of a guess matched must not show in how long it took.
    return hmac.compare_digest(candidate, digest_hex)


def pin_locked_until(failures: list[datetime], now: datetime) -> datetime | None:
    """When PIN entry opens again, or None if it is open now."""
    recent = sorted(f for f in failures if now - f < PIN_WINDOW)
    if len(recent) < PIN_ATTEMPTS:
        return None
    return recent[-PIN_ATTEMPTS] + PIN_WINDOW


# ----------------------------------------------------------------- low balance


def low_balance_transition(
    *, armed: bool, available: Decimal, threshold: Decimal
) -> tuple[bool, bool]:
    """(warn now, armed afterwards). One warning per downward crossing; recovering to the
    threshold or above re-arms it."""
    if available < threshold:
        return armed, False
    return False, True
