"""The ledger's domain: when a job is charged, and what an account allows. Pure Python:
no database, no broker, no I/O.

When is a job charged? Read this file from top to bottom:

1. A priced job is routed (`route`): a user with no account or a disabled one is denied;
   a user whose selection is `auto` (and whose printer policy does not ask for a
   confirmation) is charged to their default account without a question; anyone else is
   asked (`Question`): to confirm, or to choose the account that pays.
2. The paying account is asked to reserve the job's cost (`hold_for`): it must be usable
   (enabled, and so are its parents), the user must be allowed to charge it (their own,
   granted to them or one of their groups, or opened by its PIN), and its available
   balance (funds already held count as spent) must cover the cost at the account's
   charge rate, down to its overdraft limit if it is restricted. If so, a `Hold` is made
   (pending) and the job is authorised; if not, the job is denied with the reason.
3. When the printer reports the job printed, or its fate stays unknown after the release
   timeout (unconfirmed: it may have printed), the pending hold is posted (`settle`): the
   only moment money leaves the account, once per job, whatever is redelivered.
4. A failed or cancelled job is never charged (`release`): its pending hold is voided, its
   open question cancelled, and a price arriving later holds nothing.

A hold moves pending -> posted or pending -> voided, once; the hold refuses anything else
(`IllegalTransition`), and re-applying the move it already made changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from platen.events.money import CENT

REVENUE = "system:revenue"
FUNDING = "system:funding"
# Charges credit one of these revenue accounts (migration 004 creates them), so that two
# charges paid by different accounts rarely wait for the same row lock.
REVENUE_SHARDS = 16

# Repeated wrong PINs lock PIN entry for a while: for the user who made them, and for the
# account they were made against, whoever made them (several users guessing one shared
# account's PIN in parallel are stopped together, not each after five).
PIN_ATTEMPTS = 5
PIN_ACCOUNT_ATTEMPTS = 10
PIN_WINDOW = timedelta(minutes=15)
# A PIN set on a shared account must be at least this long, and neither one character
# repeated nor a run (123456, 987654, abcdef): those are the first guesses.
PIN_MIN_LENGTH = 6

# A hold still pending after this long has outlived its job (the ledger's self-check
# reports it; PLATEN_MAX_HOLD_AGE_SECONDS changes it for the service).
MAX_HOLD_AGE = timedelta(days=1)


class NotFound(LookupError):
    """A user or account named in a command does not exist."""


class IllegalTransition(Exception):
    """A move the object's lifecycle does not allow (posting a voided hold, say)."""


# ----------------------------------------------------------------- account names


def personal_account(login: str) -> str:
    return f"personal:{login}"


def shared_account(path: str) -> str:
    return f"shared:{path}"


def revenue_account(job_id: uuid.UUID) -> str:
    """The revenue account a job's charge credits: fixed by the job id, so a retried
    charge and the job's refunds always name the same one."""
    digest = hashlib.blake2b(job_id.bytes, digest_size=4).digest()
    return f"{REVENUE}:{int.from_bytes(digest) % REVENUE_SHARDS:02d}"


# ----------------------------------------------------------------- money rules


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


def low_balance_transition(
    *, armed: bool, available: Decimal, threshold: Decimal
) -> tuple[bool, bool]:
    """(warn now, armed afterwards). One warning per downward crossing; recovering to the
    threshold or above re-arms it."""
    if available < threshold:
        return armed, False
    return False, True


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


def pin_locked_until(
    failures: list[datetime], now: datetime, limit: int = PIN_ATTEMPTS
) -> datetime | None:
    """When PIN entry opens again after `limit` failures in the window, or None if open."""
    recent = sorted(f for f in failures if now - f < PIN_WINDOW)
    if len(recent) < limit:
        return None
    return recent[-limit] + PIN_WINDOW


@dataclass(frozen=True)
class PinLock:
    """PIN entry is closed until `until`, for the user who guessed (`scope` "user") or for
    everyone on the account guessed at (`scope` "account")."""

    scope: str
    until: datetime

    def reason(self, now: datetime) -> str:
        minutes = max(1, int((self.until - now).total_seconds() // 60) + 1)
        whose = "" if self.scope == "user" else " for this account"
        return f"too many wrong PINs{whose}: try again in {minutes} minutes"


def pin_lock(
    user_failures: list[datetime], account_failures: list[datetime], now: datetime
) -> PinLock | None:
    """Whether PIN entry is closed now, by the user's own recent failures or by the
    account's (all users'); the later of the two if both."""
    locks = [
        PinLock(scope, until)
        for scope, failures, limit in (
            ("user", user_failures, PIN_ATTEMPTS),
            ("account", account_failures, PIN_ACCOUNT_ATTEMPTS),
        )
        if (until := pin_locked_until(failures, now, limit)) is not None
    ]
    return max(locks, key=lambda lock: lock.until, default=None)


def pin_lockout(
    user_failures: list[datetime], now: datetime, account_failures: list[datetime] = ()
) -> str | None:
    """Why PIN entry is refused now (too many recent wrong PINs), or None."""
    lock = pin_lock(user_failures, list(account_failures), now)
    return lock.reason(now) if lock else None


def pin_weakness(pin: str) -> str | None:
    """Why `pin` may not be set on an account, or None if it is strong enough."""
    if len(pin) < PIN_MIN_LENGTH:
        return f"a PIN needs at least {PIN_MIN_LENGTH} characters"
    if len(set(pin)) == 1:
        return "a PIN may not be one character repeated"
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {-1}):
        return "a PIN may not be a run such as 123456 or 654321"
    return None


# ----------------------------------------------------------------- users and accounts


@dataclass
class User:
    login: str
    # auto: charged with no question; confirm: confirms each job; choose: picks the account.
    account_selection: str = "auto"
    default_account: str | None = None
    low_balance_threshold: Decimal | None = None
    enabled: bool = True
    groups: list[str] = field(default_factory=list)
    deleted: bool = False
    email: str | None = None
    email_notices: bool = False  # wants low-balance and denial notices by email

    @property
    def personal_account(self) -> str:
        return personal_account(self.login)

    @property
    def pays_with(self) -> str:
        """The account charged unless the user picks another: their default, or their own."""
        return self.default_account or self.personal_account


@dataclass
class Account:
    """An account with what its rules need: the funds held on it, its parents (nearest
    first) and the grants on it and on its parents."""

    id: str
    kind: str  # personal, shared or system
    name: str
    balance: Decimal = Decimal(0)
    restricted: bool = True
    overdraft_limit: Decimal = Decimal(0)
    charge_rate: Decimal | None = None  # its own; None inherits its parent's
    enabled: bool = True
    owner: str | None = None
    parent: str | None = None
    pin_hash: str | None = None
    low_balance_armed: bool = True
    code: str | None = None  # a shared account's code, which users may search by
    balance_visible: bool = False  # whether those who may charge it see its balance
    held: Decimal = Decimal(0)
    parents: list[Account] = field(default_factory=list)
    # (principal kind, principal) granted on this account: "user" or "group", and who.
    grants: set[tuple[str, str]] = field(default_factory=set)

    @property
    def available(self) -> Decimal:
        return self.balance - self.held

    @property
    def available_shown_to_users(self) -> Decimal | None:
        """What the account popup may show of this account's funds: a personal account's
        own owner sees it; a shared account's users only where the administrator made
        its balance visible (it is hidden by default: a department's funds are not every
        member's business)."""
        if self.kind == "personal" or (self.kind == "shared" and self.balance_visible):
            return self.available
        return None

    @property
    def usable(self) -> bool:
        """Enabled, and so are all its parents."""
        return self.enabled and all(p.enabled for p in self.parents)

    @property
    def effective_charge_rate(self) -> Decimal:
        for acc in [self, *self.parents]:
            if acc.charge_rate is not None:
                return acc.charge_rate
        return Decimal(1)

    def may_be_charged_by(self, login: str, groups: list[str]) -> bool:
        """Whether `login` may charge this account by choosing it: their own personal
        account, or a shared account granted to them or one of their groups (on it or on
        a parent)."""
        if self.id == personal_account(login):
            return True
        if self.kind != "shared":
            return False
        wanted = {("user", login)} | {("group", g) for g in groups}
        # A grant on a parent reaches its children (the parents of a shared account are
        # shared accounts).
        return any(wanted & acc.grants for acc in [self, *self.parents])

    def opened_by(self, pin: str) -> bool:
        """Whether `pin` is this shared account's PIN."""
        return (
            self.kind == "shared" and self.pin_hash is not None and pin_matches(pin, self.pin_hash)
        )

    def can_pay(self, amount: Decimal) -> Decision:
        return authorize(
            balance=self.balance,
            held=self.held,
            cost=amount,
            restricted=self.restricted,
            overdraft_limit=self.overdraft_limit,
        )


# ----------------------------------------------------------------- jobs and holds


@dataclass(frozen=True)
class Job:
    """What the ledger knows of a priced job."""

    job_id: uuid.UUID
    user: str
    printer: str
    document_name: str
    sides: int
    copies: int
    cost: Decimal
    color_sides: int | None = None
    grayscale_sides: int | None = None
    duplex: bool | None = None
    messages: list[str] = field(default_factory=list)
    confirm: bool = False  # a printer policy wants this job confirmed

    def question(self, kind: str, expires_at: datetime) -> Question:
        """Ask its user (`confirm` or `choose_account`), until `expires_at`."""
        return Question(
            job_id=self.job_id,
            user=self.user,
            kind=kind,
            printer=self.printer,
            document_name=self.document_name,
            sides=self.sides,
            copies=self.copies,
            cost=self.cost,
            expires_at=expires_at,
            color_sides=self.color_sides,
            grayscale_sides=self.grayscale_sides,
        )


class HoldState(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


@dataclass
class Hold:
    """Funds reserved for one job, between authorisation and the printer's answer."""

    job_id: uuid.UUID
    account_id: str
    user: str
    base_cost: Decimal
    charge_rate: Decimal
    amount: Decimal
    printer: str
    document_name: str
    sides: int
    copies: int
    comment: str | None = None
    state: HoldState = HoldState.PENDING
    created_at: datetime | None = None
    # What reports group its charge by: the colour split of one copy (None: not known,
    # held before the ledger kept it) and its user's groups when it was held.
    color_sides: int | None = None
    grayscale_sides: int | None = None
    groups: tuple[str, ...] | None = None

    @property
    def pending(self) -> bool:
        return self.state is HoldState.PENDING

    def post(self) -> bool:
        """Charge it; False when it was posted already (nothing more to do)."""
        return self._move(HoldState.POSTED)

    def void(self) -> bool:
        """Release it; False when it was voided already (nothing more to do)."""
        return self._move(HoldState.VOIDED)

    def _move(self, to: HoldState) -> bool:
        if self.state is to:
            return False
        if not self.pending:
            raise IllegalTransition(f"hold for job {self.job_id} is {self.state}, not {to}")
        self.state = to
        return True


@dataclass(frozen=True)
class Posting:
    """A balanced ledger transaction to post, under a key that makes its retry a no-op."""

    op_key: str
    kind: str
    description: str
    entries: dict[str, Decimal]
    job_id: uuid.UUID | None = None
    created_by: str = "system"


class InputState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CANCELLED = "cancelled"


@dataclass
class Question:
    """A job waiting for its user: to confirm it, or to choose the account that pays."""

    job_id: uuid.UUID
    user: str
    kind: str  # confirm or choose_account
    printer: str
    document_name: str
    sides: int
    copies: int
    cost: Decimal
    expires_at: datetime
    state: InputState = InputState.OPEN
    color_sides: int | None = None
    grayscale_sides: int | None = None

    def refusal(self, login: str, *, enabled: bool) -> str | None:
        """Why `login` may not answer it now, or None (its deadline is checked apart: a
        late answer cancels the job)."""
        if self.user != login:
            return "this job belongs to someone else"
        if not enabled:
            return "your account is disabled"
        if self.state is InputState.ANSWERED:
            return "this job has been answered already"
        if self.state is InputState.CANCELLED:
            # Cancelled by an administrator, at CUPS, or at its deadline: say so, rather
            # than let the user think someone else answered for them.
            return "this job was cancelled and will not print"
        return None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def answer(self) -> None:
        if self.state is not InputState.OPEN:
            raise IllegalTransition(f"job {self.job_id} is {self.state}, it cannot be answered")
        self.state = InputState.ANSWERED

    def cancel(self) -> bool:
        """Cancel it while it waits; False when it was answered or cancelled already."""
        if self.state is not InputState.OPEN:
            return False
        self.state = InputState.CANCELLED
        return True

    def by_pin(self, account: str | None, pin: str | None) -> bool:
        """Whether an answer picks a shared account by its PIN (the PIN stands in for a
        grant)."""
        return pin is not None and self.kind == "choose_account" and account is not None


# ----------------------------------------------------------------- when is a job charged?


@dataclass(frozen=True)
class Deny:
    reason: str


@dataclass(frozen=True)
class ChargeTo:
    """Hold the job's cost on this account now, with no question."""

    account_id: str


@dataclass(frozen=True)
class Ask:
    """Ask the user first: `confirm` (paid by `default`) or `choose_account`."""

    kind: str
    default: str


def route(job: Job, user: User | None) -> Deny | ChargeTo | Ask:
    """Step 1: what happens to a priced job."""
    if user is None:
        return Deny(f"user {job.user!r} has no account")
    if user.deleted:
        return Deny("your account was deleted: ask an administrator")
    if not user.enabled:
        return Deny("your account is disabled: ask an administrator")
    selection = user.account_selection
    if selection == "auto" and job.confirm:
        selection = "confirm"  # a printer policy wants this job confirmed
    if selection == "auto":
        return ChargeTo(user.pays_with)
    return Ask("confirm" if selection == "confirm" else "choose_account", user.pays_with)


def hold_for(
    job: Job | Question,
    login: str,
    account: Account,
    *,
    groups: list[str],
    by_pin: bool = False,
    comment: str | None = None,
) -> Hold | Deny:
    """Step 2: reserve the job's cost on `account`, or why not.

    Access is checked here, at every job, not only when a default account is set: a grant
    taken away must stop the next job. A PIN stands in for access (`by_pin`).
    """
    if not account.usable:
        return Deny(f"account {account.name} is disabled")
    if not by_pin and not account.may_be_charged_by(login, groups):
        return Deny(f"you may no longer charge account {account.name}")
    rate = account.effective_charge_rate
    amount = charge_amount(job.cost, rate)
    decision = account.can_pay(amount)
    if not decision.authorized:
        return Deny(decision.reason or "")
    return Hold(
        job_id=job.job_id,
        account_id=account.id,
        user=login,
        base_cost=job.cost,
        charge_rate=rate,
        amount=amount,
        printer=job.printer,
        document_name=job.document_name,
        sides=job.sides,
        copies=job.copies,
        comment=comment,
        color_sides=job.color_sides,
        grayscale_sides=job.grayscale_sides,
        groups=tuple(sorted(groups)),
    )


@dataclass(frozen=True)
class Settled:
    hold: Hold
    posting: Posting | None  # None for a free job: nothing moves, the job still counts


def settle(hold: Hold | None, description: str) -> Settled | None:
    """Step 3: the job printed (or may have). Posts a pending hold, with the charge to
    record. None, and nothing changed, when there is no pending hold: posted means charged
    already (a late "printed" after "unconfirmed", or a redelivery); voided means the job
    failed or was cancelled, which job-capture never follows with "printed" (its states
    are final), so a "printed" then is not believed and charges nothing."""
    if hold is None or not hold.pending:
        return None
    hold.post()
    posting = None
    if hold.amount > 0:
        posting = Posting(
            op_key=f"job:{hold.job_id}:charge",
            kind="charge",
            description=description,
            entries={hold.account_id: -hold.amount, revenue_account(hold.job_id): hold.amount},
            job_id=hold.job_id,
            created_by=hold.user,
        )
    return Settled(hold, posting)


@dataclass(frozen=True)
class Released:
    hold: bool  # a pending hold was voided: its funds are available again
    question: bool  # a question still open was cancelled


def release(hold: Hold | None, question: Question | None) -> Released:
    """Step 4: the job failed or was cancelled. Voids a pending hold and cancels a
    question still open. A posted hold stays posted: job-capture's states are final, so a
    charged job does not fail afterwards, and money goes back only by a refund."""
    cancelled = question.cancel() if question is not None else False
    voided = hold.void() if hold is not None and hold.pending else False
    return Released(hold=voided, question=cancelled)


# ----------------------------------------------------------------- periodic quotas


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TERM = "term"


@dataclass(frozen=True)
class Quota:
    """What a group's members are given each period, into their personal accounts.

    A period is named by a key ("2026-12-01", "2026-W49", "2026-12", "term from
    2026-09-01"): a group's period is given once (the store claims it; `op_key` keeps
    each member's posting single too), however often a run is triggered.
    """

    group: str
    amount: Decimal
    period: Period
    cap: Decimal | None = None  # add no more than brings the balance to this
    reset: bool = False  # set the balance to `amount` instead of adding it
    terms: tuple[date, ...] = ()  # when each term starts (a `term` period only)

    def period_of(self, day: date) -> str | None:
        """The key of the period `day` falls in; None before the first term starts."""
        match self.period:
            case Period.DAY:
                return day.isoformat()
            case Period.WEEK:
                year, week, _ = day.isocalendar()
                return f"{year}-W{week:02d}"
            case Period.MONTH:
                return f"{day.year}-{day.month:02d}"
            case Period.TERM:
                started = [t for t in self.terms if t <= day]
                return f"term from {max(started).isoformat()}" if started else None

    def credit(self, account: Account) -> Decimal:
        """What this quota moves into `account` now (negative: a reset takes unspent
        credit back; never so much that the account could not cover its holds)."""
        if self.reset:
            change = self.amount - account.balance
            if change < 0 and not account.can_pay(-change).authorized:
                return Decimal(0)
            return change
        if self.cap is not None:
            return max(Decimal(0), min(self.amount, self.cap - account.balance))
        return self.amount

    def op_key(self, period: str, login: str) -> str:
        return f"quota:{self.group}:{period}:{login}"

    def description(self, period: str) -> str:
        return f"quota for {period} (group {self.group})"


# ----------------------------------------------------------------- the directory

ANYONE = "*"  # a new-user rule that matches anyone the directory knows


@dataclass(frozen=True)
class DirectoryUser:
    """A user as the site's directory (LDAP, the host's users) knows them."""

    login: str
    full_name: str | None = None
    email: str | None = None
    card_id: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewUserRule:
    """What a user the directory knows gets when Platen first meets them (on their first
    job, or at a sync): the first rule, by position, that matches one of their groups
    (or `ANYONE`)."""

    match: str
    position: int
    initial_balance: Decimal = Decimal(0)
    restricted: bool = True
    overdraft_limit: Decimal = Decimal(0)


def rule_for(groups: tuple[str, ...] | list[str], rules: list[NewUserRule]) -> NewUserRule | None:
    for rule in sorted(rules, key=lambda r: r.position):
        if rule.match == ANYONE or rule.match in groups:
            return rule
    return None


@dataclass(frozen=True)
class Known:
    """What the ledger holds of a user, as a sync compares it with the directory."""

    login: str
    enabled: bool
    from_directory: bool
    groups: tuple[str, ...]
    full_name: str | None = None
    email: str | None = None
    card_id: str | None = None


@dataclass
class SyncPlan:
    add: list[tuple[DirectoryUser, NewUserRule]] = field(default_factory=list)
    change: list[DirectoryUser] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
    # In the directory, but no new-user rule matches them: not added (and denied if they
    # print), until a rule does.
    no_rule: list[str] = field(default_factory=list)


class DirectoryEmpty(Exception):
    """The directory listed nobody: a wrong base or filter, or an outage, far more likely
    than a site with no users. A sync then changes nothing rather than disable everyone."""


def plan_sync(
    listed: list[DirectoryUser], known: list[Known], rules: list[NewUserRule]
) -> SyncPlan:
    """What a sync does: add the directory's users a rule matches; bring the groups, name,
    email and card of users the directory knows up to date; disable the users it once
    listed and lists no more (never delete: their history stays). Users made by hand and
    never in the directory are left alone."""
    if not listed:
        raise DirectoryEmpty("the directory listed no users; nothing was changed")
    by_login = {k.login: k for k in known}
    plan = SyncPlan()
    for d in sorted(listed, key=lambda u: u.login):
        k = by_login.get(d.login)
        if k is None:
            rule = rule_for(d.groups, rules)
            if rule is None:
                plan.no_rule.append(d.login)
            else:
                plan.add.append((d, rule))
        elif not k.from_directory or (
            tuple(sorted(k.groups)),
            k.full_name,
            k.email,
            k.card_id,
        ) != (tuple(sorted(d.groups)), d.full_name, d.email, d.card_id):
            plan.change.append(d)
    present = {d.login for d in listed}
    plan.disable = sorted(
        k.login for k in known if k.from_directory and k.enabled and k.login not in present
    )
    return plan


# ----------------------------------------------------------------- reports

REPORT_KEYS = ("user", "group", "printer", "account")
NO_GROUP = "(no group)"


@dataclass(kw_only=True)
class Tally:
    """Jobs, their printed sides (every copy) and money, summed. `charged` and `refunded`
    come from the ledger's postings (the paying account's entries), not from the holds:
    what a report shows is what the ledger moved."""

    jobs: int = 0
    sides: int = 0
    color_sides: int = 0
    grayscale_sides: int = 0
    charged: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)

    @property
    def amount(self) -> Decimal:
        """Charged, net of refunds."""
        return self.charged - self.refunded

    def add(self, other: Tally) -> None:
        self.jobs += other.jobs
        self.sides += other.sides
        self.color_sides += other.color_sides
        self.grayscale_sides += other.grayscale_sides
        self.charged += other.charged
        self.refunded += other.refunded


@dataclass(kw_only=True)
class Usage(Tally):
    """What was charged and refunded in a period for one user, printer, paying account
    and set of groups (the user's when the job was held): the store's pre-summed rows.
    The jobs charged in the period count (a free job too); a refund counts in the period
    it was made, against the job it refunds."""

    user: str
    printer: str
    account: str
    groups: tuple[str, ...]


@dataclass(kw_only=True)
class ReportLine(Tally):
    key: str


def report(usage: list[Usage], by: str) -> tuple[list[ReportLine], ReportLine]:
    """The lines of a report grouped `by` user, group, printer or account, ordered by key,
    and the total. The total counts each job and each cent once; by group, a job of a user
    in two groups is in both lines, so the lines may add up to more than the total (a
    user in no group is in `NO_GROUP`)."""
    if by not in REPORT_KEYS:
        raise ValueError(f"a report is by {', '.join(REPORT_KEYS)}, not {by!r}")
    lines: dict[str, ReportLine] = {}
    total = ReportLine(key="total")
    for u in usage:
        total.add(u)
        keys = (sorted(set(u.groups)) or [NO_GROUP]) if by == "group" else [getattr(u, by)]
        for key in keys:
            lines.setdefault(key, ReportLine(key=key)).add(u)
    return [lines[k] for k in sorted(lines)], total


@dataclass(frozen=True)
class InvoiceTotals:
    """An account's movements over a period, in sums: the invoice's total is `charged` −
    `refunded`; `opening` − that total + `other` (top-ups, transfers, adjustments, quotas)
    is `closing`, as its statement for the period shows."""

    opening: Decimal
    charged: Decimal
    refunded: Decimal
    other: Decimal

    @property
    def total(self) -> Decimal:
        return self.charged - self.refunded

    @property
    def closing(self) -> Decimal:
        return self.opening - self.total + self.other


# ----------------------------------------------------------------- deleting a user


def closed_to_money_in(account_id: str, owner: User | None) -> str | None:
    """Why no money may be paid into `account_id`, or None. A deleted user's personal
    account may only be emptied: money paid in could never be spent (they cannot print)
    nor seen (they cannot sign in). A refund of a job they printed still reaches it, as a
    correction of their history, and is then paid out by an adjustment."""
    if owner is not None and owner.deleted:
        return (
            f"{owner.login} was deleted: money paid into {account_id} could never be spent "
            "(a refund of their job still reaches it; pay it out with a negative adjustment)"
        )
    return None


def deletion_refusal(login: str, balance: Decimal, open_jobs: int) -> str | None:
    """Why `login` may not be deleted now, or None. Money left on their account would be
    lost with them, and a job held or waiting would be charged (or asked about) after
    they are gone: both are settled first."""
    if balance != 0:
        sign = "-" if balance > 0 else ""
        return (
            f"{login} still has a balance of {balance}: bring it to 0.00 first "
            f"(platenctl adjust {login} {sign}{abs(balance)} --reason ...)"
        )
    if open_jobs:
        return (
            f"{login} has {open_jobs} job(s) held or waiting for an answer: let them finish "
            "or cancel them first (platenctl jobs --user, platenctl job cancel)"
        )
    return None
