"""Database access shared by the services: pools and migrations."""

from platen.db.migrations import Migration, apply_migrations, load_migrations
from platen.db.pool import connect_with_retry, create_pool
from platen.db.transactions import RolledBack, checked_transaction

__all__ = [
    "Migration",
    "RolledBack",
    "apply_migrations",
    "checked_transaction",
    "connect_with_retry",
    "create_pool",
    "load_migrations",
]
