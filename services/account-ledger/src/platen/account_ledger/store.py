"""The ledger's database adapter: every SQL statement of the service.

`Store(conn)` works inside the caller's transaction (a delivery's, made by the
dispatcher): it takes and returns domain objects, or plain rows for views and reports.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from platen.account_ledger.domain import (
    MAX_HOLD_AGE,
    PIN_WINDOW,
    Account,
    DirectoryUser,
    Hold,
    HoldState,
    InputState,
    InvoiceTotals,
    Known,
    NewUserRule,
    NotFound,
    Period,
    Posting,
    Question,
    Quota,
    Usage,
    User,
    personal_account,
    shared_account,
)

# The columns a command may change, so that a column name never comes from a message.
_USER_SETTINGS = {
    "account_selection",
    "default_account",
    "low_balance_threshold",
    "email",
    "email_notices",
}
_ACCOUNT_SETTINGS = {
    "restricted",
    "overdraft_limit",
    "charge_rate",
    "enabled",
    "pin_hash",
    "code",
    "balance_visible",
}

__all__ = ["MAX_HOLD_AGE", "NotFound", "PostedBefore", "Store", "verify"]


class PostedBefore(Exception):
    """A charge a batch put off was posted before (its key taken): the batch must not
    commit with its figures, and is handled again one message at a time."""


def _hold(r: asyncpg.Record) -> Hold:
    return Hold(
        job_id=r["job_id"],
        account_id=r["account_id"],
        user=r["user_login"],
        base_cost=r["base_cost"],
        charge_rate=r["charge_rate"],
        amount=r["amount"],
        printer=r["printer"],
        document_name=r["document_name"],
        sides=r["pages"],  # the column predates the name: printed sides of one copy
        copies=r["copies"],
        comment=r["comment"],
        state=HoldState(r["state"]),
        created_at=r["created_at"],
        color_sides=r["color_sides"],
        grayscale_sides=r["grayscale_sides"],
        groups=tuple(r["user_groups"]) if r["user_groups"] is not None else None,
    )


def _user(r: asyncpg.Record, groups: list[str]) -> User:
    return User(
        login=r["login"],
        account_selection=r["account_selection"],
        default_account=r["default_account"],
        low_balance_threshold=r["low_balance_threshold"],
        enabled=r["enabled"],
        groups=groups,
        deleted=r["deleted_at"] is not None,
        email=r["email"],
        email_notices=r["email_notices"],
    )


def _account(r: asyncpg.Record, grants: set[tuple[str, str]]) -> Account:
    return Account(
        id=r["id"],
        kind=r["kind"],
        name=r["name"],
        balance=r["balance"],
        restricted=r["restricted"],
        overdraft_limit=r["overdraft_limit"],
        charge_rate=r["charge_rate"],
        enabled=r["enabled"],
        owner=r["owner_login"],
        parent=r["parent_id"],
        pin_hash=r["pin_hash"],
        low_balance_armed=r["low_balance_armed"],
        code=r["code"],
        balance_visible=r["balance_visible"],
        grants=grants,
    )


class _Statements:
    """The store's connection: sends first what the store has put off (`Store.flush`), so
    that no statement of the store, a read or a write, ever sees the tables without it."""

    def __init__(self, conn: asyncpg.Connection, store: Store) -> None:
        self._conn = conn
        self._store = store

    async def execute(self, *args, **kwargs):
        await self._store.flush()
        return await self._conn.execute(*args, **kwargs)

    async def executemany(self, *args, **kwargs):
        await self._store.flush()
        return await self._conn.executemany(*args, **kwargs)

    async def fetch(self, *args, **kwargs):
        await self._store.flush()
        return await self._conn.fetch(*args, **kwargs)

    async def fetchrow(self, *args, **kwargs):
        await self._store.flush()
        return await self._conn.fetchrow(*args, **kwargs)

    async def fetchval(self, *args, **kwargs):
        await self._store.flush()
        return await self._conn.fetchval(*args, **kwargs)


class Store:
    """One transaction's view of the ledger's tables.

    A store lives as long as its transaction (one delivery's, or one batch's: the batch
    path gives all of a batch's messages one store). It remembers what the transaction
    holds, so that a batch of jobs on one hot account takes each lock and reads each
    unchanging row once, not once per job:
    - the locks it has taken (jobs, users shared, accounts locked), which last until the
      transaction ends: taken again, they are skipped;
    - the users it has shared and the accounts it has locked, as read the first time:
      their settings, groups, parents and grants. While the rows are locked no other
      transaction changes the accounts' settings or deletes the users; a change of a
      user's settings or of a grant committed meanwhile is seen by the next transaction,
      as if it had come after this one. Any write of this store to those tables forgets
      everything read.
    - of the accounts it has locked, the balance, funds held and low-balance flag, kept up
      to date with its own writes: every writer of those (an entry, a hold made, posted or
      voided, the flag) takes the account's row lock first, so no other transaction
      changes them while it is held. (The database's floor checks still read the tables.)
    - of the jobs it has locked, their marks (closed, seen) and holds, kept up to date with
      its own writes: every writer of those takes the job's lock first.
    Questions, entries and everything else are read each time.

    In a batch (`defer_writes`), the holds it makes and the charges it posts on accounts
    it has locked are written together, in one statement each kind, when the batch ends
    or before the store's next other statement, whichever comes first; the handlers see
    the figures the writes will leave (kept above) at once. The database's triggers check
    every row of those statements in order, as they would one at a time (the floor of a
    restricted account counts the holds written before it in the statement): a decision
    taken in memory that the database would not take fails the batch, which is then
    handled again one message at a time, never writes a wrong row.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        # Every statement of the store goes through `_Statements`, which first writes what
        # a batch has put off (`defer_writes`): whatever a statement reads, it reads the
        # tables as they would be had every write been made at once.
        self.conn = _Statements(conn, self)
        self._raw = conn
        # Writes put off until the batch ends or another statement is sent (a batch only:
        # `defer_writes`): new holds, in order; then postings of charges and holds' new
        # states, in order (see `flush` for why the second kind may be written as a group).
        self._deferring = False
        self._holds_later: list[Hold] = []
        self._postings_later: list[Posting] = []
        self._states_later: list[tuple[uuid.UUID, str]] = []
        self._jobs_locked: set[str] = set()
        self._users_shared: set[str] = set()
        self._accounts_locked: set[str] = set()
        self._users: dict[str, User] = {}
        self._groups: dict[str, list[str]] = {}
        # id -> (the account and its parents, nearest first, as read; their grants)
        self._chains: dict[str, tuple[list[asyncpg.Record], dict[str, set[tuple[str, str]]]]] = {}
        # Of jobs this transaction has locked, which only it can change until it ends (every
        # writer of a job's hold, question or closed mark takes the job's lock first): their
        # [closed, seen] marks and their holds, kept up to date with its own writes.
        self._marks: dict[uuid.UUID, list[bool]] = {}
        self._holds: dict[uuid.UUID, Hold] = {}
        # Of accounts this transaction has locked: [balance, funds held, low-balance flag],
        # as read or as this store's writes left them. Exact while the lock is held: every
        # writer of a balance (an entry), of a hold (made, posted or voided) or of the flag
        # locks the account's row first, so only this transaction changes them.
        self._money: dict[str, list] = {}

    def _forget(self) -> None:
        """This transaction wrote users, groups, accounts or grants: read them again."""
        self._users.clear()
        self._groups.clear()
        self._chains.clear()
        self._money.clear()

    # ------------------------------------------------------------- writes put off

    def defer_writes(self) -> None:
        """This store serves a batch: put off its holds and charges (see the class) until
        `flush`, which the batch calls before it commits."""
        self._deferring = True

    async def flush(self) -> None:
        """Write what was put off: the new holds in one statement, in the order they were
        made; then the charges' transactions and entries in one, in order; then the holds'
        new states in one. Only a new hold is never put off behind a charge or a state
        (`add_hold` flushes first), so the one reordering is within a run of settlements:
        each job's charge is written before its hold is marked posted, as alone, but a
        later job's charge may be written before an earlier job's hold is marked. That
        changes no check: the charge of a held job is exempt from the floor (its money
        was checked when it was held), the revenue side is a credit, and a hold's state
        only needs its own charge written before it."""
        if self._holds_later:
            holds, self._holds_later = self._holds_later, []
            await self._insert_holds(holds)
        if self._postings_later:
            postings, self._postings_later = self._postings_later, []
            await self._insert_postings(postings)
        if self._states_later:
            states, self._states_later = self._states_later, []
            await self._raw.execute(
                """UPDATE holds h SET state = s.state, resolved_at = now()
                     FROM unnest($1::uuid[], $2::text[]) AS s (job_id, state)
                    WHERE h.job_id = s.job_id""",
                [job_id for job_id, _ in states],
                [state for _, state in states],
            )

    async def _insert_holds(self, holds: list[Hold]) -> None:
        # A hold's groups are an array, and unnest would flatten an array of arrays: each
        # is sent as JSON text instead.
        await self._raw.execute(
            """INSERT INTO holds (job_id, account_id, user_login, base_cost, charge_rate,
                                  amount, state, printer, document_name, pages, copies,
                                  comment, color_sides, grayscale_sides, user_groups)
               SELECT h.job_id, h.account_id, h.user_login, h.base_cost, h.charge_rate,
                      h.amount, h.state, h.printer, h.document_name, h.pages, h.copies,
                      h.comment, h.color_sides, h.grayscale_sides,
                      CASE WHEN h.groups IS NOT NULL THEN
                          ARRAY(SELECT jsonb_array_elements_text(h.groups::jsonb)) END
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[],
                             $5::numeric[], $6::numeric[], $7::text[], $8::text[],
                             $9::text[], $10::int[], $11::int[], $12::text[], $13::int[],
                             $14::int[], $15::text[]) WITH ORDINALITY
                      AS h (job_id, account_id, user_login, base_cost, charge_rate, amount,
                            state, printer, document_name, pages, copies, comment,
                            color_sides, grayscale_sides, groups, n)
                ORDER BY h.n""",
            [h.job_id for h in holds],
            [h.account_id for h in holds],
            [h.user for h in holds],
            [h.base_cost for h in holds],
            [h.charge_rate for h in holds],
            [h.amount for h in holds],
            [h.state.value for h in holds],
            [h.printer for h in holds],
            [h.document_name for h in holds],
            [h.sides for h in holds],
            [h.copies for h in holds],
            [h.comment for h in holds],
            [h.color_sides for h in holds],
            [h.grayscale_sides for h in holds],
            [json.dumps(list(h.groups)) if h.groups is not None else None for h in holds],
        )

    async def _insert_postings(self, postings: list[Posting]) -> None:
        entries = [
            (p.op_key, acc, p.entries[acc])
            for p in postings
            for acc in sorted(p.entries)
            if p.entries[acc] != 0
        ]
        written = await self._raw.fetchval(
            """WITH tx AS (
                   INSERT INTO transactions (op_key, kind, job_id, description, created_by)
                   SELECT t.op_key, t.kind, t.job_id, t.description, t.created_by
                     FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[])
                          WITH ORDINALITY AS t (op_key, kind, job_id, description,
                                                created_by, n)
                    ORDER BY t.n
                   ON CONFLICT (op_key) DO NOTHING RETURNING id, op_key),
               written AS (
                   INSERT INTO entries (transaction_id, account_id, amount, balance_after)
                   SELECT tx.id, e.account_id, e.amount, 0
                     FROM unnest($6::text[], $7::text[], $8::numeric[]) WITH ORDINALITY
                              AS e (op_key, account_id, amount, n)
                     JOIN tx ON tx.op_key = e.op_key
                    ORDER BY e.n)
               SELECT count(*) FROM tx""",
            [p.op_key for p in postings],
            [p.kind for p in postings],
            [p.job_id for p in postings],
            [p.description for p in postings],
            [p.created_by for p in postings],
            [op_key for op_key, _, _ in entries],
            [acc for _, acc, _ in entries],
            [amount for _, _, amount in entries],
        )
        if written != len(postings):
            # A key posted already: the balances kept in memory counted it. Never kept:
            # the batch rolls back and its messages are handled one at a time, which
            # sees the key and posts nothing.
            raise PostedBefore(f"{len(postings) - written} of a batch's charges posted before")

    # ------------------------------------------------------------- locks

    async def lock_job(self, job_id: uuid.UUID) -> None:
        """Take a job's events one at a time (until this transaction ends): a price and a
        cancellation handled at once must not both see "no hold yet"."""
        await self.lock_jobs([job_id])

    async def lock_jobs(self, job_ids: Iterable[uuid.UUID]) -> None:
        """`lock_job` for several jobs, in one fixed order (by id): two batches sharing
        jobs queue up instead of deadlocking."""
        wanted = sorted({str(j) for j in job_ids} - self._jobs_locked)
        if not wanted:
            return
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(j, 7)) "
            "FROM unnest($1::text[]) WITH ORDINALITY AS t (j, n) ORDER BY n",
            wanted,
        )
        self._jobs_locked.update(wanted)

    async def share_users(self, logins: Iterable[str]) -> None:
        """`share_user` for several users, in one fixed order (by login)."""
        wanted = sorted(set(logins) - self._users_shared)
        if not wanted:
            return
        # Each user is read in the statement that shares them, with their groups: a job
        # needs both, and a batch of jobs on one account has many users.
        rows = await self.conn.fetch(
            """SELECT u.*, ARRAY(SELECT m.group_name FROM group_members m
                                  WHERE m.login = u.login ORDER BY m.group_name) AS member_of
                 FROM users u WHERE u.login = ANY($1::text[])
                ORDER BY u.login FOR KEY SHARE OF u""",
            wanted,
        )
        self._users_shared.update(wanted)
        for r in rows:
            self._groups[r["login"]] = list(r["member_of"])
            self._users[r["login"]] = _user(r, list(r["member_of"]))

    async def payers(self, logins: Iterable[str]) -> set[str]:
        """Every account these users' jobs may be charged to without asking them: their
        own and their default (a superset: which one pays is decided job by job)."""
        logins = set(logins)
        if logins <= self._users.keys():  # shared and read already
            chosen = {self._users[login].default_account for login in logins}
            return {personal_account(login) for login in logins} | (chosen - {None})
        rows = await self.conn.fetch(
            "SELECT default_account FROM users WHERE login = ANY($1::text[]) "
            "AND default_account IS NOT NULL",
            list(logins),
        )
        return {personal_account(login) for login in logins} | {r[0] for r in rows}

    async def read_marks(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Read the marks (`job_marks`) of these jobs, locked by this transaction, in one
        statement, for their handlers to find."""
        wanted = [j for j in set(job_ids) if str(j) in self._jobs_locked and j not in self._marks]
        if not wanted:
            return
        rows = await self.conn.fetch(
            """SELECT j.id,
                      EXISTS (SELECT 1 FROM closed_jobs c WHERE c.job_id = j.id) AS closed,
                      EXISTS (SELECT 1 FROM holds h WHERE h.job_id = j.id)
                      OR EXISTS (SELECT 1 FROM pending_inputs p WHERE p.job_id = j.id) AS seen
                 FROM unnest($1::uuid[]) AS j (id)""",
            wanted,
        )
        for r in rows:
            self._marks[r["id"]] = [r["closed"], r["seen"]]

    async def lock_holds(self, job_ids: Iterable[uuid.UUID]) -> set[str]:
        """Lock the holds of these jobs (locked by this transaction) and keep them for their
        handlers; returns the accounts they are on."""
        wanted = sorted(j for j in set(job_ids) if str(j) in self._jobs_locked)
        rows = await self.conn.fetch(
            "SELECT * FROM holds WHERE job_id = ANY($1::uuid[]) ORDER BY job_id FOR UPDATE",
            wanted,
        )
        for r in rows:
            self._holds[r["job_id"]] = _hold(r)
        return {r["account_id"] for r in rows}

    async def lock_accounts(self, account_ids: Iterable[str]) -> None:
        """Lock rows in one fixed order (by id): two transactions touching the same
        accounts queue up instead of deadlocking. Rows this transaction has locked
        already are not asked for again."""
        wanted = sorted(set(account_ids) - self._accounts_locked)
        if not wanted:
            return
        await self.conn.execute(
            "SELECT 1 FROM accounts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", wanted
        )
        self._accounts_locked.update(wanted)

    async def lock_user(self, login: str) -> None:
        await self.conn.execute("SELECT 1 FROM users WHERE login = $1 FOR UPDATE", login)

    async def share_user(self, login: str) -> None:
        """Keep the user from being deleted until this transaction ends (a job being held
        for them). KEY SHARE: it waits only for a delete (`lock_user`, FOR UPDATE), so
        neither their other jobs nor a change of their settings (which updates the row
        after locking their account, the other order) wait for it or deadlock with it."""
        await self.share_users([login])

    # ------------------------------------------------------------- users

    async def user(self, login: str) -> User | None:
        if login in self._users:
            known = self._users[login]
            return dataclasses.replace(known, groups=list(known.groups))
        r = await self.conn.fetchrow("SELECT * FROM users WHERE login = $1", login)
        if r is None:
            return None
        user = _user(r, await self.user_groups(login))
        if login in self._users_shared:  # not deleted before this transaction ends
            self._users[login] = dataclasses.replace(user, groups=list(user.groups))
        return user

    async def user_groups(self, login: str) -> list[str]:
        if login in self._groups:
            return list(self._groups[login])
        rows = await self.conn.fetch(
            "SELECT group_name FROM group_members WHERE login = $1 ORDER BY group_name", login
        )
        groups = [r["group_name"] for r in rows]
        if login in self._users_shared:
            self._groups[login] = groups
        return list(groups)

    async def add_user(self, login: str, *, restricted: bool) -> bool:
        """The user and their personal account; False when the user exists already."""
        self._forget()
        created = await self.conn.fetchval(
            "INSERT INTO users (login) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", login
        )
        if created:
            await self.conn.execute(
                "INSERT INTO accounts (id, kind, name, owner_login, restricted) "
                "VALUES ($1, 'personal', $2, $2, $3)",
                personal_account(login),
                login,
                restricted,
            )
        return bool(created)

    async def set_groups(self, login: str, groups: list[str]) -> int:
        """Replace `login`'s groups; returns this change's revision, to announce with it.
        Counting in the user's row takes its lock first, so two changes of one user's
        groups at once run one after the other (replacing memberships row by row would
        otherwise mix the two) and are numbered in the order they commit."""
        self._forget()
        revision = await self.conn.fetchval(
            """UPDATE users SET groups_revision = groups_revision + 1 WHERE login = $1
               RETURNING groups_revision""",
            login,
        )
        await self.conn.execute("DELETE FROM group_members WHERE login = $1", login)
        if groups:
            await self.conn.executemany(
                "INSERT INTO groups (name) VALUES ($1) ON CONFLICT DO NOTHING",
                [(g,) for g in groups],
            )
            await self.conn.executemany(
                "INSERT INTO group_members (group_name, login) VALUES ($1, $2)",
                [(g, login) for g in sorted(set(groups))],
            )
        return revision

    async def update_user(self, login: str, **settings) -> None:
        self._forget()
        for column, value in settings.items():
            assert column in _USER_SETTINGS, column
            await self.conn.execute(
                f"UPDATE users SET {column} = $2 WHERE login = $1", login, value
            )

    async def next_contact(self, login: str) -> tuple[str | None, bool, int]:
        """How `login` is reached now (email, email_notices) and the next revision of it,
        counted in the user's row (locked until the transaction ends)."""
        self._forget()
        r = await self.conn.fetchrow(
            """UPDATE users SET contact_revision = contact_revision + 1 WHERE login = $1
               RETURNING email, email_notices, contact_revision""",
            login,
        )
        return r["email"], r["email_notices"], r["contact_revision"]

    async def open_jobs(self, login: str) -> int:
        """The user's jobs still held (on any account) or waiting for their answer."""
        return await self.conn.fetchval(
            """SELECT (SELECT count(*) FROM holds WHERE user_login = $1 AND state = 'pending')
                    + (SELECT count(*) FROM pending_inputs
                        WHERE user_login = $1 AND state = 'open')""",
            login,
        )

    async def delete_user(self, login: str) -> datetime | None:
        """Mark the user deleted and disabled, with their personal account disabled;
        returns when they were deleted (the first time, if they were already). Their
        groups stay, as history."""
        self._forget()
        await self.conn.execute(
            "UPDATE users SET deleted_at = coalesce(deleted_at, now()), enabled = false "
            "WHERE login = $1",
            login,
        )
        await self.conn.execute(
            "UPDATE accounts SET enabled = false WHERE kind = 'personal' AND owner_login = $1",
            login,
        )
        return await self.conn.fetchval("SELECT deleted_at FROM users WHERE login = $1", login)

    async def set_enabled(self, login: str, enabled: bool) -> bool:
        """True when this changed it."""
        self._forget()
        return bool(
            await self.conn.fetchval(
                "UPDATE users SET enabled = $2 WHERE login = $1 AND enabled <> $2 RETURNING true",
                login,
                enabled,
            )
        )

    async def user_summaries(self, group: str | None, limit: int) -> list[asyncpg.Record]:
        """Users ordered by login (members of `group` only, when given), at most `limit`,
        each with their personal account's balance, funds held and groups, in one query."""
        return await self.conn.fetch(
            """SELECT u.login, u.enabled, a.restricted, a.overdraft_limit, a.balance,
                      (SELECT coalesce(sum(h.amount), 0)::numeric(14, 2) FROM holds h
                        WHERE h.account_id = a.id AND h.state = 'pending') AS held,
                      ARRAY(SELECT m.group_name FROM group_members m
                             WHERE m.login = u.login ORDER BY m.group_name) AS groups
                 FROM users u
                 JOIN accounts a ON a.kind = 'personal' AND a.owner_login = u.login
                WHERE u.deleted_at IS NULL AND ($1::text IS NULL OR EXISTS (
                      SELECT 1 FROM group_members g WHERE g.login = u.login AND g.group_name = $1))
                ORDER BY u.login
                LIMIT $2""",
            group,
            limit,
        )

    # ------------------------------------------------------------- accounts

    async def account(self, account_id: str) -> Account | None:
        """The account with its held funds, its parents (nearest first) and the grants on
        each. For an account this transaction has locked, what does not move money is
        read once (see the class), and only its balance, held funds and low-balance flag
        again."""
        if account_id in self._chains:
            chain, grants = self._chains[account_id]
            if account_id not in self._money:
                now = await self.conn.fetchrow(
                    """SELECT balance, low_balance_armed,
                              (SELECT coalesce(sum(amount), 0)::numeric(14, 2) FROM holds
                                WHERE account_id = $1 AND state = 'pending') AS held
                         FROM accounts WHERE id = $1""",
                    account_id,
                )
                self._money[account_id] = [now["balance"], now["held"], now["low_balance_armed"]]
            acc, *parents = [_account(r, grants[r["id"]]) for r in chain]
            acc.parents = parents
            acc.balance, acc.held, acc.low_balance_armed = self._money[account_id]
            return acc
        chain = await self.conn.fetch(
            """WITH RECURSIVE chain AS (
                   SELECT a.*, 0 AS depth FROM accounts a WHERE id = $1
                   UNION ALL
                   SELECT p.*, c.depth + 1 FROM accounts p JOIN chain c ON p.id = c.parent_id)
               SELECT * FROM chain ORDER BY depth""",
            account_id,
        )
        if not chain:
            return None
        grants: dict[str, set[tuple[str, str]]] = {r["id"]: set() for r in chain}
        for r in await self.conn.fetch(
            "SELECT account_id, principal_kind, principal FROM account_access "
            "WHERE account_id = ANY($1::text[])",
            list(grants),
        ):
            grants[r["account_id"]].add((r["principal_kind"], r["principal"]))
        acc, *parents = [_account(r, grants[r["id"]]) for r in chain]
        acc.parents = parents
        acc.held = await self.held(account_id)
        if account_id in self._accounts_locked:
            self._chains[account_id] = (chain, grants)
            self._money[account_id] = [acc.balance, acc.held, acc.low_balance_armed]
        return acc

    async def resolve(self, ref: str) -> str:
        """The id of the account `ref` names: an id, a login (their personal account) or a
        shared account's path."""
        if ref.startswith(("personal:", "shared:", "system:")):
            candidates = [ref]
        else:
            candidates = [personal_account(ref), shared_account(ref)]
        for candidate in candidates:
            if await self.conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", candidate):
                return candidate
        if by_code := await self.account_with_code(ref):
            return by_code
        raise NotFound(f"no account or user named {ref!r}")

    async def account_with_code(self, code: str) -> str | None:
        """The shared account with this code (codes are compared without case)."""
        return await self.conn.fetchval(
            "SELECT id FROM accounts WHERE lower(code) = lower($1)", code
        )

    async def account_ids(self, kind: str | None = None) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT id FROM accounts WHERE $1::text IS NULL OR kind = $1 ORDER BY kind, name",
            kind,
        )
        return [r["id"] for r in rows]

    async def shared_account_ids(self) -> list[str]:
        rows = await self.conn.fetch("SELECT id FROM accounts WHERE kind = 'shared' ORDER BY name")
        return [r["id"] for r in rows]

    async def add_shared_account(self, account: Account) -> bool:
        """False when it exists already."""
        self._forget()
        return bool(
            await self.conn.fetchval(
                """INSERT INTO accounts (id, kind, name, parent_id, restricted, overdraft_limit,
                                         charge_rate, pin_hash, enabled, code, balance_visible)
                   VALUES ($1, 'shared', $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (id) DO NOTHING RETURNING true""",
                account.id,
                account.name,
                account.parent,
                account.restricted,
                account.overdraft_limit,
                account.charge_rate,
                account.pin_hash,
                account.enabled,
                account.code,
                account.balance_visible,
            )
        )

    async def update_account(self, account_id: str, **settings) -> None:
        self._forget()
        for column, value in settings.items():
            assert column in _ACCOUNT_SETTINGS, column
            await self.conn.execute(
                f"UPDATE accounts SET {column} = $2 WHERE id = $1", account_id, value
            )

    async def set_low_balance_armed(self, account_id: str, armed: bool) -> None:
        if account_id in self._money:
            self._money[account_id][2] = armed
        await self.conn.execute(
            "UPDATE accounts SET low_balance_armed = $2 WHERE id = $1", account_id, armed
        )

    async def grant(self, account_id: str, principals: list[tuple[str, str]]) -> None:
        self._forget()
        await self.conn.executemany(
            "INSERT INTO account_access VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(account_id, kind, who) for kind, who in principals],
        )

    async def revoke(self, account_id: str, principals: list[tuple[str, str]]) -> None:
        self._forget()
        await self.conn.executemany(
            "DELETE FROM account_access WHERE account_id = $1 AND principal_kind = $2 "
            "AND principal = $3",
            [(account_id, kind, who) for kind, who in principals],
        )

    async def any_pin_accounts(self) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT 1 FROM accounts WHERE kind = 'shared' AND pin_hash IS NOT NULL "
                "AND enabled LIMIT 1"
            )
        )

    async def held(self, account_id: str) -> Decimal:
        return await self.conn.fetchval(
            "SELECT coalesce(sum(amount), 0)::numeric(14, 2) FROM holds "
            "WHERE account_id = $1 AND state = 'pending'",
            account_id,
        )

    async def balance(self, account_id: str) -> Decimal:
        if account_id in self._money:
            return self._money[account_id][0]
        return await self.conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)

    # ------------------------------------------------------------- jobs: holds, questions

    async def job_closed(self, job_id: uuid.UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM closed_jobs WHERE job_id = $1", job_id))

    async def close_job(self, job_id: uuid.UUID) -> None:
        if job_id in self._marks:
            self._marks[job_id][0] = True
        await self.conn.execute(
            "INSERT INTO closed_jobs (job_id) VALUES ($1) ON CONFLICT DO NOTHING", job_id
        )

    async def job_seen(self, job_id: uuid.UUID) -> bool:
        """Whether the job was held or asked about already."""
        return bool(
            await self.conn.fetchval(
                "SELECT 1 FROM holds WHERE job_id = $1 UNION ALL SELECT 1 FROM pending_inputs "
                "WHERE job_id = $1",
                job_id,
            )
        )

    async def job_marks(self, job_id: uuid.UUID) -> tuple[bool, bool]:
        """`job_closed` and `job_seen` in one statement (or none: read for the batch)."""
        if job_id in self._marks:
            closed, seen = self._marks[job_id]
            return closed, seen
        r = await self.conn.fetchrow(
            """SELECT EXISTS (SELECT 1 FROM closed_jobs WHERE job_id = $1) AS closed,
                      EXISTS (SELECT 1 FROM holds WHERE job_id = $1)
                      OR EXISTS (SELECT 1 FROM pending_inputs WHERE job_id = $1) AS seen""",
            job_id,
        )
        return r["closed"], r["seen"]

    async def hold(self, job_id: uuid.UUID, *, lock: bool = False) -> Hold | None:
        if job_id in self._holds:  # locked, and kept up to date
            return dataclasses.replace(self._holds[job_id])
        r = await self.conn.fetchrow(
            f"SELECT * FROM holds WHERE job_id = $1 {'FOR UPDATE' if lock else ''}", job_id
        )
        return _hold(r) if r else None

    async def pending_holds(self, account_id: str) -> list[Hold]:
        rows = await self.conn.fetch(
            "SELECT * FROM holds WHERE account_id = $1 AND state = 'pending' ORDER BY created_at",
            account_id,
        )
        return [_hold(r) for r in rows]

    async def add_hold(self, hold: Hold) -> tuple[Decimal, Decimal, bool]:
        """Make the hold; returns its account's balance, funds held (this hold's included)
        and low-balance flag right after, read in the same statement."""
        if hold.job_id in self._marks:
            self._marks[hold.job_id][1] = True
        money = self._money.get(hold.account_id) if self._deferring else None
        if money is not None:
            # Its account is locked and its figures known: written with the batch's other
            # holds (`flush`), after every write made before it.
            if self._postings_later or self._states_later:
                await self.flush()
            self._holds_later.append(hold)
            money[1] += hold.amount
            return money[0], money[1], money[2]
        # The outer SELECT reads the statement's snapshot, which the new row is not in:
        # its amount is added to the holds already pending.
        r = await self.conn.fetchrow(
            """WITH added AS (
                   INSERT INTO holds (job_id, account_id, user_login, base_cost, charge_rate,
                                      amount, state, printer, document_name, pages, copies,
                                      comment, color_sides, grayscale_sides, user_groups)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                   RETURNING account_id, amount)
               SELECT a.balance, a.low_balance_armed,
                      ((SELECT coalesce(sum(h.amount), 0) FROM holds h
                         WHERE h.account_id = a.id AND h.state = 'pending')
                       + added.amount)::numeric(14, 2) AS held
                 FROM added JOIN accounts a ON a.id = added.account_id""",
            hold.job_id,
            hold.account_id,
            hold.user,
            hold.base_cost,
            hold.charge_rate,
            hold.amount,
            hold.state.value,
            hold.printer,
            hold.document_name,
            hold.sides,
            hold.copies,
            hold.comment,
            hold.color_sides,
            hold.grayscale_sides,
            list(hold.groups) if hold.groups is not None else None,
        )
        if hold.account_id in self._money:
            self._money[hold.account_id] = [r["balance"], r["held"], r["low_balance_armed"]]
        return r["balance"], r["held"], r["low_balance_armed"]

    async def save_hold(self, hold: Hold) -> None:
        """Record the hold's new state (posted or voided), and when it was resolved."""
        if self._deferring:
            self._states_later.append((hold.job_id, hold.state.value))
        else:
            await self.conn.execute(
                "UPDATE holds SET state = $2, resolved_at = now() WHERE job_id = $1",
                hold.job_id,
                hold.state.value,
            )
        if hold.job_id in self._holds:
            self._holds[hold.job_id].state = hold.state
        if hold.account_id in self._money:  # pending until now: its funds are no longer held
            self._money[hold.account_id][1] -= hold.amount

    async def question(self, job_id: uuid.UUID, *, lock: bool = False) -> Question | None:
        r = await self.conn.fetchrow(
            f"SELECT * FROM pending_inputs WHERE job_id = $1 {'FOR UPDATE' if lock else ''}",
            job_id,
        )
        if r is None:
            return None
        return Question(
            job_id=r["job_id"],
            user=r["user_login"],
            kind=r["kind"],
            printer=r["printer"],
            document_name=r["document_name"],
            sides=r["pages"],
            copies=r["copies"],
            cost=r["cost"],
            expires_at=r["expires_at"],
            state=InputState(r["state"]),
            color_sides=r["color_sides"],
            grayscale_sides=r["grayscale_sides"],
        )

    async def add_question(self, question: Question) -> None:
        if question.job_id in self._marks:
            self._marks[question.job_id][1] = True
        await self.conn.execute(
            """INSERT INTO pending_inputs (job_id, user_login, kind, printer, document_name,
                                           pages, copies, cost, expires_at, state,
                                           color_sides, grayscale_sides)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
            question.job_id,
            question.user,
            question.kind,
            question.printer,
            question.document_name,
            question.sides,
            question.copies,
            question.cost,
            question.expires_at,
            question.state.value,
            question.color_sides,
            question.grayscale_sides,
        )

    async def save_question(self, question: Question) -> None:
        await self.conn.execute(
            "UPDATE pending_inputs SET state = $2 WHERE job_id = $1",
            question.job_id,
            question.state.value,
        )

    async def pin_failures(self, login: str, since: datetime) -> list[datetime]:
        return await self._pin_failure_times("user_login", login, since)

    async def account_pin_failures(self, account_id: str, since: datetime) -> list[datetime]:
        return await self._pin_failure_times("account_id", account_id, since)

    async def _pin_failure_times(self, column: str, key: str, since: datetime) -> list[datetime]:
        # `column` is one of the two above, never a message's value.
        rows = await self.conn.fetch(
            f"SELECT failed_at FROM pin_failures WHERE {column} = $1 AND failed_at > $2",
            key,
            since,
        )
        return [r["failed_at"] for r in rows]

    async def lock_pin_entry(self, account_id: str) -> None:
        # An advisory lock, not the account's row: holds lock account rows in id order,
        # and this must not take one out of that order.
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('pin:' || $1, 0))", account_id
        )

    async def add_pin_failure(self, login: str, account_id: str, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO pin_failures (user_login, account_id, failed_at) VALUES ($1, $2, $3)",
            login,
            account_id,
            at,
        )

    # ------------------------------------------------------------- transactions

    async def post(self, posting: Posting) -> int | None:
        """Post a balanced transaction; None when its op_key was posted before. The
        accounts are locked first (in id order, as everywhere), then the transaction and
        its entries are written in one statement, the entries in account order."""
        entries = posting.entries
        accounts = sorted(entries)
        await self.lock_accounts(accounts)
        # The entries' triggers (balance, floor) see the transaction's row: the entries
        # are made from it, so it is inserted first, and a trigger's queries see the rows
        # the statement wrote before.
        tx_id = await self.conn.fetchval(
            """WITH tx AS (
                   INSERT INTO transactions (op_key, kind, job_id, description, created_by)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (op_key) DO NOTHING RETURNING id),
               written AS (
                   INSERT INTO entries (transaction_id, account_id, amount, balance_after)
                   SELECT tx.id, e.account_id, e.amount, 0
                     FROM tx, unnest($6::text[], $7::numeric[]) WITH ORDINALITY
                              AS e (account_id, amount, n)
                    ORDER BY e.n)
               SELECT id FROM tx""",
            posting.op_key,
            posting.kind,
            posting.job_id,
            posting.description,
            posting.created_by,
            [acc for acc in accounts if entries[acc] != 0],
            [entries[acc] for acc in accounts if entries[acc] != 0],
        )
        if tx_id is not None:
            for acc in accounts:
                if acc in self._money:
                    self._money[acc][0] += entries[acc]
        return tx_id

    async def settle(self, posting: Posting | None, hold: Hold) -> None:
        """Post a held job's charge (if any) and record its hold's new state: in a batch,
        put off (`flush`) when this transaction has locked every account the charge
        touches (so writing it later takes no lock out of order); else at once, as `post`
        and `save_hold`."""
        if posting is not None:
            if self._deferring and self._accounts_locked.issuperset(posting.entries):
                self._postings_later.append(posting)
                for acc, amount in posting.entries.items():
                    if acc in self._money:
                        self._money[acc][0] += amount
            else:
                await self.post(posting)
        await self.save_hold(hold)

    async def transaction_by_key(self, op_key: str) -> int | None:
        return await self.conn.fetchval("SELECT id FROM transactions WHERE op_key = $1", op_key)

    async def transaction(self, tx_id: int) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
        tx = await self.conn.fetchrow("SELECT * FROM transactions WHERE id = $1", tx_id)
        entries = await self.conn.fetch(
            "SELECT account_id, amount, balance_after FROM entries WHERE transaction_id = $1 "
            "ORDER BY id",
            tx_id,
        )
        return tx, entries

    async def job_charge(self, job_id: uuid.UUID) -> asyncpg.Record | None:
        """The account a job's charge took from, the amount, and the revenue account it
        credited (before migration 004, `system:revenue`)."""
        return await self.conn.fetchrow(
            """SELECT e.account_id, -e.amount AS amount, r.account_id AS revenue
               FROM transactions t
               JOIN entries e ON e.transaction_id = t.id AND e.account_id NOT LIKE 'system:%'
               JOIN entries r ON r.transaction_id = t.id AND r.account_id LIKE 'system:%'
               WHERE t.op_key = $1""",
            f"job:{job_id}:charge",
        )

    async def refunded(self, job_id: uuid.UUID, account_id: str) -> Decimal:
        return await self.conn.fetchval(
            """SELECT coalesce(sum(e.amount), 0) FROM transactions t
               JOIN entries e ON e.transaction_id = t.id AND e.account_id = $2
               WHERE t.kind = 'refund' AND t.job_id = $1""",
            job_id,
            account_id,
        )

    # ------------------------------------------------------------- reports

    async def statement(
        self, account_id: str, since: datetime | None, limit: int
    ) -> list[asyncpg.Record]:
        """At most `limit` lines from `since`, each with the account's balance now
        (`closing`), read in the same statement as the lines so that they agree."""
        return await self.conn.fetch(
            """SELECT t.created_at, t.id, t.kind, t.description, t.job_id, e.amount,
                      e.balance_after, (SELECT balance FROM accounts WHERE id = $1) AS closing
               FROM entries e JOIN transactions t ON t.id = e.transaction_id
               WHERE e.account_id = $1 AND ($2::timestamptz IS NULL OR t.created_at >= $2)
               ORDER BY e.id LIMIT $3""",
            account_id,
            since,
            limit,
        )

    async def report_span(self) -> tuple[datetime | None, datetime | None]:
        """When the first and the last charge or refund a report counts were made (a
        charge by when its hold was posted, as `usage` counts it)."""
        r = await self.conn.fetchrow(
            """SELECT least(h.first, t.first) AS first, greatest(h.last, t.last) AS last
                 FROM (SELECT min(resolved_at) AS first, max(resolved_at) AS last
                         FROM holds WHERE state = 'posted') h,
                      (SELECT min(created_at) AS first, max(created_at) AS last
                         FROM transactions WHERE kind = 'refund') t"""
        )
        return r["first"], r["last"]

    async def usage(self, since: datetime | None, until: datetime | None) -> list[Usage]:
        """What was charged in [since, until) (jobs by when their hold was posted, with
        the charge's entry on the paying account) and refunded in it (by when the refund
        was made), summed by user, printer, paying account and the user's groups of the
        time (today's for a hold made before the ledger kept them)."""
        rows = await self.conn.fetch(
            """WITH facts AS (
                   SELECT h.job_id, 1 AS jobs, h.pages * h.copies AS sides,
                          coalesce(h.color_sides, 0) * h.copies AS color_sides,
                          coalesce(h.grayscale_sides, 0) * h.copies AS grayscale_sides,
                          coalesce(-e.amount, 0) AS charged, 0 AS refunded
                     FROM holds h
                     LEFT JOIN transactions t ON t.op_key = 'job:' || h.job_id || ':charge'
                     LEFT JOIN entries e ON e.transaction_id = t.id
                                        AND e.account_id = h.account_id
                    WHERE h.state = 'posted'
                      AND ($1::timestamptz IS NULL OR h.resolved_at >= $1)
                      AND ($2::timestamptz IS NULL OR h.resolved_at < $2)
                   UNION ALL
                   SELECT t.job_id, 0, 0, 0, 0, 0, e.amount
                     FROM transactions t
                     JOIN holds h ON h.job_id = t.job_id
                     JOIN entries e ON e.transaction_id = t.id AND e.account_id = h.account_id
                    WHERE t.kind = 'refund'
                      AND ($1::timestamptz IS NULL OR t.created_at >= $1)
                      AND ($2::timestamptz IS NULL OR t.created_at < $2))
               SELECT h.user_login, h.printer, h.account_id,
                      coalesce(h.user_groups, ARRAY(SELECT m.group_name FROM group_members m
                                                     WHERE m.login = h.user_login
                                                     ORDER BY m.group_name)) AS groups,
                      sum(f.jobs)::int AS jobs, sum(f.sides)::int AS sides,
                      sum(f.color_sides)::int AS color_sides,
                      sum(f.grayscale_sides)::int AS grayscale_sides,
                      sum(f.charged)::numeric(14, 2) AS charged,
                      sum(f.refunded)::numeric(14, 2) AS refunded
                 FROM facts f JOIN holds h ON h.job_id = f.job_id
                GROUP BY 1, 2, 3, 4
                ORDER BY 1, 2, 3, 4""",
            since,
            until,
        )
        return [
            Usage(
                user=r["user_login"],
                printer=r["printer"],
                account=r["account_id"],
                groups=tuple(r["groups"]),
                jobs=r["jobs"],
                sides=r["sides"],
                color_sides=r["color_sides"],
                grayscale_sides=r["grayscale_sides"],
                charged=r["charged"],
                refunded=r["refunded"],
            )
            for r in rows
        ]

    async def invoice_lines(
        self, account_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[asyncpg.Record]:
        """The charges to `account_id` and its refunds in [since, until), oldest first, at
        most `limit`, each with its job's user, document, sides and the user's comment."""
        return await self.conn.fetch(
            """SELECT t.created_at, t.id, t.kind, t.job_id, t.description, t.created_by,
                      -e.amount AS amount, h.user_login, h.document_name, h.printer,
                      h.pages * h.copies AS sides, h.comment
                 FROM entries e JOIN transactions t ON t.id = e.transaction_id
                 LEFT JOIN holds h ON h.job_id = t.job_id
                WHERE e.account_id = $1 AND t.kind IN ('charge', 'refund')
                  AND ($2::timestamptz IS NULL OR t.created_at >= $2)
                  AND ($3::timestamptz IS NULL OR t.created_at < $3)
                ORDER BY e.id LIMIT $4""",
            account_id,
            since,
            until,
            limit,
        )

    async def invoice_totals(
        self, account_id: str, since: datetime | None, until: datetime | None
    ) -> InvoiceTotals:
        """The account's sums over [since, until): before it, charges, refunds, the rest.
        Sums of entries, not balances after a line, so a long period needs no lines."""
        r = await self.conn.fetchrow(
            """SELECT
                 coalesce(sum(e.amount) FILTER (
                     WHERE $2::timestamptz IS NOT NULL AND t.created_at < $2), 0) AS opening,
                 coalesce(-sum(e.amount) FILTER (WHERE inside AND t.kind = 'charge'), 0)
                     AS charged,
                 coalesce(sum(e.amount) FILTER (WHERE inside AND t.kind = 'refund'), 0)
                     AS refunded,
                 coalesce(sum(e.amount) FILTER (
                     WHERE inside AND t.kind NOT IN ('charge', 'refund')), 0) AS other
               FROM entries e JOIN transactions t ON t.id = e.transaction_id,
                    LATERAL (SELECT ($2::timestamptz IS NULL OR t.created_at >= $2)
                                AND ($3::timestamptz IS NULL OR t.created_at < $3) AS inside) w
               WHERE e.account_id = $1""",
            account_id,
            since,
            until,
        )
        return InvoiceTotals(**dict(r))

    async def counts(self) -> asyncpg.Record:
        return await self.conn.fetchrow(
            """SELECT (SELECT count(*) FROM transactions) AS transactions,
                      (SELECT count(*) FROM accounts) AS accounts,
                      (SELECT count(*) FROM holds WHERE state = 'pending') AS pending_holds"""
        )

    async def verify(self, max_hold_age: timedelta = MAX_HOLD_AGE) -> list[str]:
        """Every violation of the ledger's invariants, as sentences; empty when sound.

        A hold has outlived its job when it is still pending after `max_hold_age`, after
        the job was closed (cancelled or failed), or after the job was charged.
        """
        conn = self.conn
        problems = []
        for r in await conn.fetch(
            """SELECT transaction_id, sum(amount) AS total FROM entries
               GROUP BY transaction_id HAVING sum(amount) <> 0"""
        ):
            problems.append(f"transaction {r['transaction_id']} sums to {r['total']}, not 0")
        for r in await conn.fetch(
            """SELECT t.id FROM transactions t LEFT JOIN entries e ON e.transaction_id = t.id
               GROUP BY t.id HAVING count(e.id) < 2"""
        ):
            problems.append(f"transaction {r['id']} has fewer than two entries")
        for r in await conn.fetch(
            """SELECT a.id, a.balance, coalesce(sum(e.amount), 0) AS total
               FROM accounts a LEFT JOIN entries e ON e.account_id = a.id
               GROUP BY a.id, a.balance HAVING a.balance <> coalesce(sum(e.amount), 0)"""
        ):
            problems.append(
                f"account {r['id']} has balance {r['balance']} but its entries sum to {r['total']}"
            )
        total = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM entries")
        if total != 0:
            problems.append(f"all entries sum to {total}, not 0")
        for r in await conn.fetch(
            "SELECT job_id, created_at FROM holds WHERE state = 'pending' "
            "AND created_at < now() - $1::interval",
            max_hold_age,
        ):
            problems.append(f"hold for job {r['job_id']} is still pending since {r['created_at']}")
        for r in await conn.fetch(
            """SELECT h.job_id FROM holds h JOIN closed_jobs c ON c.job_id = h.job_id
               WHERE h.state = 'pending'"""
        ):
            problems.append(f"hold for job {r['job_id']} is still pending but the job was closed")
        for r in await conn.fetch(
            """SELECT h.job_id FROM holds h
               JOIN transactions t ON t.op_key = 'job:' || h.job_id || ':charge'
               WHERE h.state = 'pending'"""
        ):
            problems.append(f"hold for job {r['job_id']} is still pending but the job was charged")
        for r in await conn.fetch(
            """SELECT h.job_id FROM holds h
               WHERE h.state = 'posted' AND h.amount > 0 AND NOT EXISTS (
                   SELECT 1 FROM transactions t
                   WHERE t.op_key = 'job:' || h.job_id || ':charge')"""
        ):
            problems.append(f"hold for job {r['job_id']} is posted but no charge exists")
        for r in await conn.fetch(
            """SELECT t.job_id, sum(e.amount) AS refunded,
                      (SELECT -sum(e2.amount) FROM transactions t2
                         JOIN entries e2 ON e2.transaction_id = t2.id
                         JOIN accounts a2 ON a2.id = e2.account_id AND a2.kind <> 'system'
                        WHERE t2.op_key = 'job:' || t.job_id || ':charge') AS charged
               FROM transactions t JOIN entries e ON e.transaction_id = t.id
               JOIN accounts a ON a.id = e.account_id AND a.kind <> 'system'
               WHERE t.kind = 'refund' GROUP BY t.job_id"""
        ):
            if r["charged"] is None or r["refunded"] > r["charged"]:
                problems.append(
                    f"job {r['job_id']} was refunded {r['refunded']} but charged {r['charged']}"
                )
        return problems

    # ------------------------------------------------------------- retention

    # ------------------------------------------------------------- the directory

    async def rules(self) -> list[NewUserRule]:
        rows = await self.conn.fetch("SELECT * FROM new_user_rules ORDER BY position, match")
        return [NewUserRule(**dict(r)) for r in rows]

    async def set_rule(self, rule: NewUserRule) -> None:
        await self.conn.execute(
            """INSERT INTO new_user_rules
                   (match, position, initial_balance, restricted, overdraft_limit)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (match) DO UPDATE SET position = $2, initial_balance = $3,
                   restricted = $4, overdraft_limit = $5""",
            rule.match,
            rule.position,
            rule.initial_balance,
            rule.restricted,
            rule.overdraft_limit,
        )

    async def remove_rule(self, match: str) -> bool:
        gone = await self.conn.execute("DELETE FROM new_user_rules WHERE match = $1", match)
        return gone != "DELETE 0"

    async def known_users(self) -> list[Known]:
        rows = await self.conn.fetch(
            """SELECT u.login, u.enabled, u.from_directory, u.full_name, u.email, u.card_id,
                      ARRAY(SELECT m.group_name FROM group_members m
                            WHERE m.login = u.login ORDER BY m.group_name) AS groups
               FROM users u ORDER BY u.login"""
        )
        return [Known(**{**dict(r), "groups": tuple(r["groups"])}) for r in rows]

    async def set_profile(self, user: DirectoryUser) -> None:
        """What the directory says of `user`; from now on a sync keeps them up to date."""
        self._forget()
        await self.conn.execute(
            """UPDATE users SET full_name = $2, email = $3, card_id = $4, from_directory = true
               WHERE login = $1""",
            user.login,
            user.full_name,
            user.email,
            user.card_id,
        )

    # ------------------------------------------------------------- quotas

    async def set_quota(self, quota: Quota) -> None:
        await self.conn.execute(
            "INSERT INTO groups (name) VALUES ($1) ON CONFLICT DO NOTHING", quota.group
        )
        await self.conn.execute(
            """INSERT INTO quotas (group_name, amount, period, cap, reset, terms)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (group_name) DO UPDATE SET amount = $2, period = $3, cap = $4,
                   reset = $5, terms = $6""",
            quota.group,
            quota.amount,
            str(quota.period),
            quota.cap,
            quota.reset,
            list(quota.terms),
        )

    async def remove_quota(self, group: str) -> bool:
        gone = await self.conn.execute("DELETE FROM quotas WHERE group_name = $1", group)
        return gone != "DELETE 0"

    async def quotas(self, group: str | None = None) -> list[tuple[Quota, asyncpg.Record | None]]:
        """Each quota (or `group`'s) by group, with its last run (None: never run)."""
        rows = await self.conn.fetch(
            """SELECT q.*, r.period AS last_period, r.ran_at AS last_run_at
               FROM quotas q
               LEFT JOIN LATERAL (SELECT period, ran_at FROM quota_runs r
                                  WHERE r.group_name = q.group_name
                                  ORDER BY ran_at DESC LIMIT 1) r ON true
               WHERE $1::text IS NULL OR q.group_name = $1
               ORDER BY q.group_name""",
            group,
        )
        return [
            (
                Quota(
                    group=r["group_name"],
                    amount=r["amount"],
                    period=Period(r["period"]),
                    cap=r["cap"],
                    reset=r["reset"],
                    terms=tuple(r["terms"]),
                ),
                r if r["last_period"] is not None else None,
            )
            for r in rows
        ]

    async def claim_quota_period(self, group: str, period: str) -> bool:
        """Take `group`'s `period` to give it; False when it was given already. A second
        run at the same moment waits here for the first to commit, then gets False."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO quota_runs (group_name, period) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                group,
                period,
            )
        )

    async def record_quota_run(self, group: str, period: str, users: int, total: Decimal) -> None:
        await self.conn.execute(
            "UPDATE quota_runs SET users = $3, total = $4 WHERE group_name = $1 AND period = $2",
            group,
            period,
            users,
            total,
        )

    async def enabled_members(self, group: str) -> list[str]:
        return [
            r["login"]
            for r in await self.conn.fetch(
                """SELECT u.login FROM group_members m JOIN users u ON u.login = m.login
                   WHERE m.group_name = $1 AND u.enabled ORDER BY u.login""",
                group,
            )
        ]

    async def prune(self, older_than: datetime) -> dict[str, int]:
        """Delete what nothing waits on any more from before `older_than` (see
        platen.operations.retention): questions answered or cancelled, the marks of jobs
        closed before any hold, and wrong PINs (never one still inside the lock-out
        window, whatever the retention). Open questions, holds of any state and the journal
        (transactions, entries: postings are never pruned) are kept."""
        pins_before = min(older_than, datetime.now(older_than.tzinfo) - PIN_WINDOW)
        statements = {
            "pending_inputs": (
                "DELETE FROM pending_inputs WHERE state <> 'open' AND created_at < $1"
            ),
            "closed_jobs": "DELETE FROM closed_jobs WHERE closed_at < $1",
        }
        pruned = {
            table: int((await self.conn.execute(sql, older_than)).split()[-1])
            for table, sql in statements.items()
        }
        gone = await self.conn.execute("DELETE FROM pin_failures WHERE failed_at < $1", pins_before)
        pruned["pin_failures"] = int(gone.split()[-1])
        return pruned


async def verify(conn: asyncpg.Connection, max_hold_age: timedelta = MAX_HOLD_AGE) -> list[str]:
    """The ledger's invariant check on one connection, for tools outside the service
    (the end-to-end tests, the benchmark)."""
    return await Store(conn).verify(max_hold_age)
