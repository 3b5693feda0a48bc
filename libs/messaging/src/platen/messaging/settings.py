"""Settings every service reads from its environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

T = TypeVar("T")

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/platen"


def setting(name: str, parse: Callable[[str], T], default: str) -> Callable[[], T]:
    """A service's own setting: `parse` of the environment variable `name` (or of
    `default`), read each time it is asked for. Not at import: the tests' fork server
    imports the services' modules once, for all the services it starts, each with an
    environment of its own. The service reads it once at start as well
    (`ServiceSpec.settings`), so that a value that does not parse stops it there."""

    def read() -> T:
        return parse(os.environ.get(name, default))

    read.__name__ = read.__qualname__ = name
    return read


@dataclass(frozen=True)
class Settings:
    amqp_url: str
    database_url: str
    log_level: str = "INFO"
    prefetch: int = 32
    # Whether the queues a service declares batched are handled in batches; off, every
    # queue is handled one delivery at a time.
    batch: bool = True
    # Deliveries a batch takes at most, and so the prefetch of a batched queue: None, the
    # size the service declares (`Subscriptions(batch_size=...)`), else `prefetch`.
    batch_size: int | None = None
    inbox_retention: timedelta = timedelta(days=14)
    history_retention: timedelta = timedelta(days=90)
    prune_interval: float = 3600.0
    # The outbox relay's longest pause between retries while the broker is away. The
    # outage tests make it small, so that a short outage makes as many failed publishes
    # as a long one would.
    outbox_max_backoff: float = 5.0
    # Where /metrics and /health/* are served (platen.operations.metrics). Port 0: a free
    # port, chosen at start, logged and given in `platenctl status`.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            amqp_url=os.environ.get("PLATEN_AMQP_URL", DEFAULT_AMQP_URL),
            database_url=os.environ.get("PLATEN_DATABASE_URL", DEFAULT_DATABASE_URL),
            log_level=os.environ.get("PLATEN_LOG_LEVEL", "INFO"),
            prefetch=int(os.environ.get("PLATEN_PREFETCH", "32")),
            batch=os.environ.get("PLATEN_BATCH", "1") not in ("0", "false", "no"),
            batch_size=int(size) if (size := os.environ.get("PLATEN_BATCH_SIZE", "")) else None,
            inbox_retention=timedelta(
                days=float(os.environ.get("PLATEN_INBOX_RETENTION_DAYS", "14"))
            ),
            history_retention=timedelta(
                days=float(os.environ.get("PLATEN_HISTORY_RETENTION_DAYS", "90"))
            ),
            prune_interval=float(os.environ.get("PLATEN_PRUNE_INTERVAL_SECONDS", "3600")),
            outbox_max_backoff=float(os.environ.get("PLATEN_OUTBOX_MAX_BACKOFF_SECONDS", "5")),
            metrics_host=os.environ.get("PLATEN_METRICS_HOST", "127.0.0.1"),
            metrics_port=int(os.environ.get("PLATEN_METRICS_PORT", "0")),
        )
