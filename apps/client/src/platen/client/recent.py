"""The shared accounts this user chose lately, kept on disk so they come first next time."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

KEEP = 10


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "platen-client"


@dataclass
class RecentAccounts:
    path: Path | None = None
    accounts: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> RecentAccounts:
        try:
            data = json.loads(path.read_text())
            accounts = [a for a in data if isinstance(a, str)][:KEEP]
        except (OSError, ValueError, TypeError):
            accounts = []  # none yet, or unreadable: start afresh, it is only a convenience
        return cls(path, accounts)

    def used(self, account: str) -> None:
        others = [a for a in self.accounts if a != account]
        self.accounts = [account, *others[: KEEP - 1]]
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(self.accounts))
            except OSError:
                pass  # a read-only home must not stop printing

    def rank(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.accounts)}
