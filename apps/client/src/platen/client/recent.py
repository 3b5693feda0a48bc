"""The shared accounts this user chose lately (in their state folder) and those they marked
as favourites (in their config folder), kept on disk so they come first next time."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

KEEP = 10
FAVOURITES_LIMIT = 200


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "platen-client"


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "platen-client"


def _read_names(path: Path | None, limit: int) -> list[str]:
    if path is None:
        return []
    try:
        data = json.loads(path.read_text())
        return [a for a in data if isinstance(a, str)][:limit]
    except (OSError, ValueError, TypeError):
        return []  # none yet, or unreadable: start afresh, it is only a convenience


def _write_names(path: Path | None, names: list[str]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(names))
    except OSError:
        pass  # a read-only home must not stop printing


@dataclass
class _Accounts:
    """Account ids kept in a JSON list on disk."""

    path: Path | None = None
    accounts: list[str] = field(default_factory=list)
    limit: ClassVar[int] = KEEP

    @classmethod
    def load(cls, path: Path) -> Self:
        return cls(path, _read_names(path, cls.limit))

    def save(self) -> None:
        _write_names(self.path, self.accounts)


class RecentAccounts(_Accounts):
    def used(self, account: str) -> None:
        others = [a for a in self.accounts if a != account]
        self.accounts = [account, *others[: KEEP - 1]]
        self.save()

    def rank(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.accounts)}


class Favourites(_Accounts):
    """Accounts the user marked; shown first in the account popup, in the order marked.
    Only a convenience for finding an account: the server decides who may charge what."""

    limit = FAVOURITES_LIMIT

    def __contains__(self, account: str) -> bool:
        return account in self.accounts

    def toggle(self, account: str) -> bool:
        """Mark or unmark `account`; True when it is now a favourite."""
        if account in self.accounts:
            self.accounts.remove(account)
        else:
            self.accounts = [*self.accounts, account][-FAVOURITES_LIMIT:]
        self.save()
        return account in self.accounts
