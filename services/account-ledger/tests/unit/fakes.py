"""An in-memory stand-in for the ledger's `Store`: the same methods, over dicts.

It hands out copies, so a handler that changes a hold or a question and forgets to save
it leaves the store as it was, as the real one would. `locks` records the locks taken, in
order, so a test can check a handler takes them before it reads.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from platen.account_ledger.domain import (
    FUNDING,
    MAX_HOLD_AGE,
    PIN_WINDOW,
    REVENUE,
    REVENUE_SHARDS,
    Account,
    DirectoryUser,
    Hold,
    HoldState,
    InputState,
    InvoiceTotals,
    Known,
    NewUserRule,
    NotFound,
    Posting,
    Question,
    Quota,
    Usage,
    User,
    personal_account,
    shared_account,
)


@dataclass
class FakeTransaction:
    id: int
    op_key: str
    kind: str
    description: str
    job_id: uuid.UUID | None
    created_by: str
    created_at: datetime
    # (account, amount, balance after), in account order as the real store writes them.
    entries: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)

    def __getitem__(self, key: str):  # read like the row the real store returns
        return getattr(self, key)


class FakeStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.accounts: dict[str, Account] = {}
        self.access_rows: set[tuple[str, str, str]] = set()  # (account, kind, principal)
        self.holds: dict[uuid.UUID, Hold] = {}
        self.questions: dict[uuid.UUID, Question] = {}
        self.closed: set[uuid.UUID] = set()
        self.failures: list[tuple[str, str, datetime]] = []
        self.transactions: list[FakeTransaction] = []
        self.locks: list[tuple[str, object]] = []
        self.quota_rows: dict[str, Quota] = {}
        self.rule_rows: dict[str, NewUserRule] = {}
        self.profiles: dict[str, DirectoryUser] = {}  # from_directory users
        self.contact_revisions: dict[str, int] = {}
        self.groups_revisions: dict[str, int] = {}
        self.quota_runs: dict[tuple[str, str], dict] = {}
        self.resolved_at: dict[uuid.UUID, datetime] = {}
        self.deleted: dict[str, datetime] = {}
        for account_id in [REVENUE, FUNDING] + [
            f"{REVENUE}:{i:02d}" for i in range(REVENUE_SHARDS)
        ]:
            self.accounts[account_id] = Account(
                id=account_id, kind="system", name=account_id.split(":", 1)[1], restricted=False
            )

    # ------------------------------------------------------------- locks

    async def lock_job(self, job_id: uuid.UUID) -> None:
        self.locks.append(("job", job_id))

    async def lock_jobs(self, job_ids) -> None:
        for job_id in sorted({str(j) for j in job_ids}):
            self.locks.append(("job", uuid.UUID(job_id)))

    async def share_users(self, logins) -> None:
        for login in sorted(set(logins)):
            self.locks.append(("user shared", login))

    async def payers(self, logins) -> set[str]:
        found = set()
        for login in set(logins):
            found.add(personal_account(login))
            if login in self.users and self.users[login].default_account:
                found.add(self.users[login].default_account)
        return found

    async def read_marks(self, job_ids) -> None:
        pass

    async def lock_holds(self, job_ids) -> set[str]:
        for job_id in sorted(set(job_ids)):
            self.locks.append(("hold", job_id))
        return {self.holds[j].account_id for j in set(job_ids) if j in self.holds}

    async def lock_accounts(self, account_ids) -> None:
        for account_id in sorted(set(account_ids)):
            self.locks.append(("account", account_id))

    async def lock_user(self, login: str) -> None:
        self.locks.append(("user", login))

    async def share_user(self, login: str) -> None:
        self.locks.append(("user shared", login))

    # ------------------------------------------------------------- users

    async def user(self, login: str) -> User | None:
        return copy.deepcopy(self.users.get(login))

    async def user_groups(self, login: str) -> list[str]:
        return list(self.users[login].groups) if login in self.users else []

    async def add_user(self, login: str, *, restricted: bool) -> bool:
        if login in self.users:
            return False
        self.users[login] = User(login=login)
        account_id = personal_account(login)
        self.accounts[account_id] = Account(
            id=account_id, kind="personal", name=login, owner=login, restricted=restricted
        )
        return True

    async def set_groups(self, login: str, groups: list[str]) -> int:
        self.users[login].groups = sorted(set(groups))
        self.groups_revisions[login] = self.groups_revisions.get(login, 0) + 1
        return self.groups_revisions[login]

    async def update_user(self, login: str, **settings) -> None:
        for column, value in settings.items():
            setattr(self.users[login], column, value)

    async def next_contact(self, login: str) -> tuple[str | None, bool, int]:
        user = self.users[login]
        self.contact_revisions[login] = self.contact_revisions.get(login, 0) + 1
        return user.email, user.email_notices, self.contact_revisions[login]

    async def open_jobs(self, login: str) -> int:
        held = sum(h.pending and h.user == login for h in self.holds.values())
        waiting = sum(
            q.state is InputState.OPEN and q.user == login for q in self.questions.values()
        )
        return held + waiting

    async def delete_user(self, login: str) -> datetime | None:
        self.deleted.setdefault(login, datetime.now(UTC))
        self.users[login].deleted = True
        self.users[login].enabled = False
        self.accounts[personal_account(login)].enabled = False
        return self.deleted[login]

    async def set_enabled(self, login: str, enabled: bool) -> bool:
        user = self.users.get(login)
        if user is None or user.enabled == enabled:
            return False
        user.enabled = enabled
        return True

    async def user_summaries(self, group: str | None, limit: int) -> list[dict]:
        rows = []
        for login in sorted(self.users):
            user = self.users[login]
            if user.deleted or (group is not None and group not in user.groups):
                continue
            acc = self.accounts[personal_account(login)]
            rows.append(
                {
                    "login": login,
                    "enabled": user.enabled,
                    "restricted": acc.restricted,
                    "overdraft_limit": acc.overdraft_limit,
                    "balance": acc.balance,
                    "held": await self.held(acc.id),
                    "groups": sorted(user.groups),
                }
            )
        return rows[:limit]

    # ------------------------------------------------------------- accounts

    async def account(self, account_id: str) -> Account | None:
        stored = self.accounts.get(account_id)
        if stored is None:
            return None
        chain = [copy.deepcopy(stored)]
        while chain[-1].parent is not None:
            chain.append(copy.deepcopy(self.accounts[chain[-1].parent]))
        for acc in chain:
            acc.grants = {(kind, who) for on, kind, who in self.access_rows if on == acc.id}
        acc, *parents = chain
        acc.parents = parents
        acc.held = await self.held(account_id)
        return acc

    async def resolve(self, ref: str) -> str:
        if ref.startswith(("personal:", "shared:", "system:")):
            candidates = [ref]
        else:
            candidates = [personal_account(ref), shared_account(ref)]
        for candidate in candidates:
            if candidate in self.accounts:
                return candidate
        if by_code := await self.account_with_code(ref):
            return by_code
        raise NotFound(f"no account or user named {ref!r}")

    async def account_with_code(self, code: str) -> str | None:
        return next(
            (a.id for a in self.accounts.values() if a.code and a.code.lower() == code.lower()),
            None,
        )

    async def account_ids(self, kind: str | None = None) -> list[str]:
        found = [a for a in self.accounts.values() if kind is None or a.kind == kind]
        return [a.id for a in sorted(found, key=lambda a: (a.kind, a.name))]

    async def shared_account_ids(self) -> list[str]:
        shared = [a for a in self.accounts.values() if a.kind == "shared"]
        return [a.id for a in sorted(shared, key=lambda a: a.name)]

    async def add_shared_account(self, account: Account) -> bool:
        if account.id in self.accounts:
            return False
        self.accounts[account.id] = copy.deepcopy(account)
        return True

    async def update_account(self, account_id: str, **settings) -> None:
        for column, value in settings.items():
            setattr(self.accounts[account_id], column, value)

    async def set_low_balance_armed(self, account_id: str, armed: bool) -> None:
        self.accounts[account_id].low_balance_armed = armed

    async def grant(self, account_id: str, principals: list[tuple[str, str]]) -> None:
        self.access_rows |= {(account_id, kind, who) for kind, who in principals}

    async def revoke(self, account_id: str, principals: list[tuple[str, str]]) -> None:
        self.access_rows -= {(account_id, kind, who) for kind, who in principals}

    async def any_pin_accounts(self) -> bool:
        return any(
            a.kind == "shared" and a.pin_hash is not None and a.enabled
            for a in self.accounts.values()
        )

    async def held(self, account_id: str) -> Decimal:
        return sum(
            (h.amount for h in self.holds.values() if h.account_id == account_id and h.pending),
            Decimal("0.00"),
        )

    async def balance(self, account_id: str) -> Decimal:
        return self.accounts[account_id].balance

    # ------------------------------------------------------------- jobs: holds, questions

    async def job_closed(self, job_id: uuid.UUID) -> bool:
        return job_id in self.closed

    async def close_job(self, job_id: uuid.UUID) -> None:
        self.closed.add(job_id)

    async def job_seen(self, job_id: uuid.UUID) -> bool:
        return job_id in self.holds or job_id in self.questions

    async def job_marks(self, job_id: uuid.UUID) -> tuple[bool, bool]:
        return await self.job_closed(job_id), await self.job_seen(job_id)

    async def hold(self, job_id: uuid.UUID, *, lock: bool = False) -> Hold | None:
        if lock:
            self.locks.append(("hold", job_id))
        return copy.deepcopy(self.holds.get(job_id))

    async def pending_holds(self, account_id: str) -> list[Hold]:
        return [
            copy.deepcopy(h)
            for h in self.holds.values()
            if h.account_id == account_id and h.pending
        ]

    async def add_hold(self, hold: Hold) -> tuple[Decimal, Decimal, bool]:
        assert hold.job_id not in self.holds, "holds.job_id is the primary key"
        self.holds[hold.job_id] = copy.deepcopy(hold)
        self.holds[hold.job_id].created_at = datetime.now(UTC)
        account = self.accounts[hold.account_id]
        return account.balance, await self.held(hold.account_id), account.low_balance_armed

    async def save_hold(self, hold: Hold) -> None:
        self.holds[hold.job_id].state = hold.state
        self.resolved_at[hold.job_id] = datetime.now(UTC)

    def defer_writes(self) -> None:
        pass  # writes at once: nothing is ever put off

    async def flush(self) -> None:
        pass

    async def settle(self, posting: Posting | None, hold: Hold) -> None:
        if posting is not None:
            await self.post(posting)
        await self.save_hold(hold)

    async def question(self, job_id: uuid.UUID, *, lock: bool = False) -> Question | None:
        if lock:
            self.locks.append(("question", job_id))
        return copy.deepcopy(self.questions.get(job_id))

    async def add_question(self, question: Question) -> None:
        assert question.job_id not in self.questions, "pending_inputs.job_id is the primary key"
        self.questions[question.job_id] = copy.deepcopy(question)

    async def save_question(self, question: Question) -> None:
        self.questions[question.job_id].state = question.state

    async def pin_failures(self, login: str, since: datetime) -> list[datetime]:
        return [at for who, _, at in self.failures if who == login and at > since]

    async def account_pin_failures(self, account_id: str, since: datetime) -> list[datetime]:
        return [at for _, acc, at in self.failures if acc == account_id and at > since]

    async def lock_pin_entry(self, account_id: str) -> None:
        self.locks.append(("pin", account_id))

    # ------------------------------------------------------------- the directory

    async def rules(self) -> list[NewUserRule]:
        return sorted(self.rule_rows.values(), key=lambda r: (r.position, r.match))

    async def set_rule(self, rule: NewUserRule) -> None:
        self.rule_rows[rule.match] = rule

    async def remove_rule(self, match: str) -> bool:
        return self.rule_rows.pop(match, None) is not None

    async def known_users(self) -> list[Known]:
        return [
            Known(
                login=u.login,
                enabled=u.enabled,
                from_directory=u.login in self.profiles,
                groups=tuple(sorted(u.groups)),
                **{
                    k: getattr(self.profiles.get(u.login), k, None)
                    for k in ("full_name", "email", "card_id")
                },
            )
            for _, u in sorted(self.users.items())
        ]

    async def set_profile(self, user: DirectoryUser) -> None:
        self.profiles[user.login] = user
        self.users[user.login].email = user.email

    # ------------------------------------------------------------- quotas

    async def set_quota(self, quota: Quota) -> None:
        self.quota_rows[quota.group] = quota

    async def remove_quota(self, group: str) -> bool:
        return self.quota_rows.pop(group, None) is not None

    async def quotas(self, group: str | None = None) -> list[tuple[Quota, dict | None]]:
        found = []
        for name in sorted(self.quota_rows):
            if group is not None and name != group:
                continue
            runs = [r for r in self.quota_runs.values() if r["group_name"] == name]
            last = max(runs, key=lambda r: r["ran_at"], default=None)
            found.append(
                (
                    self.quota_rows[name],
                    {"last_period": last["period"], "last_run_at": last["ran_at"]}
                    if last
                    else None,
                )
            )
        return found

    async def claim_quota_period(self, group: str, period: str) -> bool:
        if (group, period) in self.quota_runs:
            return False
        self.quota_runs[(group, period)] = {
            "group_name": group,
            "period": period,
            "users": 0,
            "total": Decimal(0),
            "ran_at": datetime.now(UTC),
        }
        return True

    async def record_quota_run(self, group: str, period: str, users: int, total: Decimal) -> None:
        self.quota_runs[(group, period)].update(users=users, total=total)

    async def enabled_members(self, group: str) -> list[str]:
        return [u.login for _, u in sorted(self.users.items()) if group in u.groups and u.enabled]

    async def prune(self, older_than: datetime) -> dict[str, int]:
        # Only wrong PINs have times here; other finished rows all count as old.
        done = [j for j, q in self.questions.items() if q.state is not InputState.OPEN]
        for job_id in done:
            del self.questions[job_id]
        before = min(older_than, datetime.now(UTC) - PIN_WINDOW)
        kept = [f for f in self.failures if f[2] >= before]
        pruned = {
            "pending_inputs": len(done),
            "closed_jobs": len(self.closed),
            "pin_failures": len(self.failures) - len(kept),
        }
        self.closed.clear()
        self.failures = kept
        return pruned

    async def add_pin_failure(self, login: str, account_id: str, at: datetime) -> None:
        self.failures.append((login, account_id, at))

    # ------------------------------------------------------------- transactions

    async def post(self, posting: Posting) -> int | None:
        if await self.transaction_by_key(posting.op_key) is not None:
            return None
        assert sum(posting.entries.values()) == 0, "unbalanced"
        tx = FakeTransaction(
            id=len(self.transactions) + 1,
            op_key=posting.op_key,
            kind=posting.kind,
            description=posting.description,
            job_id=posting.job_id,
            created_by=posting.created_by,
            created_at=datetime.now(UTC),
        )
        await self.lock_accounts(posting.entries)
        for account_id in sorted(posting.entries):
            amount = posting.entries[account_id]
            if amount != 0:
                self.accounts[account_id].balance += amount
                tx.entries.append((account_id, amount, self.accounts[account_id].balance))
        self.transactions.append(tx)
        return tx.id

    async def transaction_by_key(self, op_key: str) -> int | None:
        return next((t.id for t in self.transactions if t.op_key == op_key), None)

    async def transaction(self, tx_id: int):
        tx = self.transactions[tx_id - 1]
        entries = [
            {"account_id": a, "amount": amount, "balance_after": after}
            for a, amount, after in tx.entries
        ]
        return tx, entries

    async def job_charge(self, job_id: uuid.UUID):
        tx_id = await self.transaction_by_key(f"job:{job_id}:charge")
        if tx_id is None:
            return None
        entries = self.transactions[tx_id - 1].entries
        paid = next((a, amount) for a, amount, _ in entries if not a.startswith("system:"))
        revenue = next(a for a, _, _ in entries if a.startswith("system:"))
        return {"account_id": paid[0], "amount": -paid[1], "revenue": revenue}

    async def refunded(self, job_id: uuid.UUID, account_id: str) -> Decimal:
        return sum(
            (
                amount
                for t in self.transactions
                if t.kind == "refund" and t.job_id == job_id
                for a, amount, _ in t.entries
                if a == account_id
            ),
            Decimal(0),
        )

    # ------------------------------------------------------------- reports

    async def statement(self, account_id: str, since: datetime | None, limit: int) -> list[dict]:
        lines = [
            {
                "created_at": t.created_at,
                "id": t.id,
                "kind": t.kind,
                "description": t.description,
                "job_id": t.job_id,
                "amount": amount,
                "balance_after": after,
                "closing": self.accounts[account_id].balance,
            }
            for t in self.transactions
            if since is None or t.created_at >= since
            for a, amount, after in t.entries
            if a == account_id
        ]
        return lines[:limit]

    def _entry(self, tx: FakeTransaction, account_id: str) -> Decimal:
        return sum((amount for a, amount, _ in tx.entries if a == account_id), Decimal(0))

    async def report_span(self) -> tuple[datetime | None, datetime | None]:
        times = [
            self.resolved_at[h.job_id]
            for h in self.holds.values()
            if h.state is HoldState.POSTED and h.job_id in self.resolved_at
        ] + [t.created_at for t in self.transactions if t.kind == "refund"]
        return (min(times), max(times)) if times else (None, None)

    async def usage(self, since: datetime | None, until: datetime | None) -> list[Usage]:
        def inside(at: datetime) -> bool:
            return (since is None or at >= since) and (until is None or at < until)

        sums: dict[tuple, dict] = {}

        def row(h: Hold) -> dict:
            groups = h.groups if h.groups is not None else tuple(self.users[h.user].groups)
            key = (h.user, h.printer, h.account_id, groups)
            return sums.setdefault(key, {"jobs": 0, "sides": 0, "color_sides": 0,
                                         "grayscale_sides": 0, "charged": Decimal(0),
                                         "refunded": Decimal(0)})  # fmt: skip

        for h in self.holds.values():
            if h.state is HoldState.POSTED and inside(self.resolved_at[h.job_id]):
                r = row(h)
                r["jobs"] += 1
                r["sides"] += h.sides * h.copies
                r["color_sides"] += (h.color_sides or 0) * h.copies
                r["grayscale_sides"] += (h.grayscale_sides or 0) * h.copies
                tx_id = await self.transaction_by_key(f"job:{h.job_id}:charge")
                if tx_id is not None:
                    r["charged"] -= self._entry(self.transactions[tx_id - 1], h.account_id)
        for t in self.transactions:
            if t.kind == "refund" and inside(t.created_at) and t.job_id in self.holds:
                h = self.holds[t.job_id]
                row(h)["refunded"] += self._entry(t, h.account_id)
        return [
            Usage(user=k[0], printer=k[1], account=k[2], groups=k[3], **v)
            for k, v in sorted(sums.items())
        ]

    def _period(self, account_id: str, since, until):
        for t in self.transactions:
            if any(a == account_id for a, _, _ in t.entries):
                before = since is not None and t.created_at < since
                after = until is not None and t.created_at >= until
                yield t, before, not before and not after

    async def invoice_lines(
        self, account_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict]:
        lines = []
        for t, _, inside in self._period(account_id, since, until):
            if inside and t.kind in ("charge", "refund"):
                h = self.holds.get(t.job_id)
                lines.append(
                    {
                        "created_at": t.created_at,
                        "id": t.id,
                        "kind": t.kind,
                        "job_id": t.job_id,
                        "description": t.description,
                        "created_by": t.created_by,
                        "amount": -self._entry(t, account_id),
                        "user_login": h and h.user,
                        "document_name": h and h.document_name,
                        "printer": h and h.printer,
                        "sides": h and h.sides * h.copies,
                        "comment": h and h.comment,
                    }
                )
        return lines[:limit]

    async def invoice_totals(
        self, account_id: str, since: datetime | None, until: datetime | None
    ) -> InvoiceTotals:
        sums = {"opening": Decimal(0), "charge": Decimal(0), "refund": Decimal(0),
                "other": Decimal(0)}  # fmt: skip
        for t, before, inside in self._period(account_id, since, until):
            amount = self._entry(t, account_id)
            if before:
                sums["opening"] += amount
            elif inside:
                sums[t.kind if t.kind in ("charge", "refund") else "other"] += amount
        return InvoiceTotals(
            opening=sums["opening"],
            charged=-sums["charge"],
            refunded=sums["refund"],
            other=sums["other"],
        )

    async def counts(self) -> dict:
        return {
            "transactions": len(self.transactions),
            "accounts": len(self.accounts),
            "pending_holds": sum(h.pending for h in self.holds.values()),
        }

    async def verify(self, max_hold_age: timedelta = MAX_HOLD_AGE) -> list[str]:
        """The checks that can fail in memory: a hold that outlived its job."""
        problems = []
        now = datetime.now(UTC)
        for h in self.holds.values():
            if h.pending and h.created_at < now - max_hold_age:
                problems.append(f"hold for job {h.job_id} is still pending since {h.created_at}")
            if h.pending and h.job_id in self.closed:
                problems.append(f"hold for job {h.job_id} is still pending but the job was closed")
            charged = await self.transaction_by_key(f"job:{h.job_id}:charge") is not None
            if h.pending and charged:
                problems.append(f"hold for job {h.job_id} is still pending but the job was charged")
            if h.state is HoldState.POSTED and h.amount > 0 and not charged:
                problems.append(f"hold for job {h.job_id} is posted but no charge exists")
        return problems
