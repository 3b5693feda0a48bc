"""Database access shared by the services: pools and migrations."""

from platen.db.migrations import Migration, apply_migrations, load_migrations
from platen.db.pool import connect_with_retry, create_pool

__all__ = ["Migration", "apply_migrations", "connect_with_retry", "create_pool", "load_migrations"]
