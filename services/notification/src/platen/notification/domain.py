"""What a desktop may see and answer, and who may sign in: the notification service's rules.

Pure Python: no database, no broker, no clock of its own (the time is passed in).

- A `Prompt` is a question put to one user's desktop about one of their jobs. It is open
  until the job moves on (authorised, cancelled, denied); only the job's user may answer
  it, from their own broker identity, before its deadline. Each answer accepted is
  forwarded to the ledger, which alone decides, as an `Answer`; the ledger's outcome (or
  its refusal) settles that answer once.
- A `DesktopIdentity` is a user's broker identity: issued when the ledger announces the
  user, revoked when the user is disabled, restored when enabled again. A credential is
  issued only to an enabled user.
- A `PrintServerIdentity` is a print server's broker identity: issued (or renewed) by an
  administrator, and removed; a removed one is withdrawn from the broker after the commit.
- A `SignedInDesktop` is one desktop a user signed in from with their directory password
  (a broker user of its own, `<login>~<desktop>`); the administrator revokes it alone.
  `SignInLimiter` counts failed sign-ins per login and per source address.
- `AnswerRates` limits how fast one user's desktops may answer (a token bucket per
  login): a desktop flooding answers has the excess dropped before any work is done for
  it, so it cannot slow anyone else's prompts.
- `desktop_options` is what one user's desktop is given of the client options the
  administrator set: the site's, then their groups' (which win), the more restrictive
  value where two groups disagree.
"""

from __future__ import annotations

import collections
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from platen.events.client_options import RESTRICTIVE
from platen.events.routing import desktop_broker_user, login_of_broker_user, login_of_key

# A prompt with less time left than this is not worth showing: nobody can answer it.
MIN_TTL_MS = 1000


class Refused(Exception):
    """The request is refused; the message says why, in words for the person who asked."""


def ttl_ms(expires_at: datetime, now: datetime) -> int | None:
    """The per-message TTL that makes a prompt vanish from the queue at its deadline, or
    None when the deadline is (as good as) past."""
    left = int((expires_at - now).total_seconds() * 1000)
    return left if left >= MIN_TTL_MS else None


@dataclass(frozen=True)
class Sender:
    """Who a reply says it is from, by each of the ways the broker tells us."""

    routing_key: str
    user_id: str | None


def sender_problem(
    sender: Sender, claimed_user: str, *, require_user_id: bool = False
) -> str | None:
    """Why a reply claiming to be from `claimed_user` cannot be trusted, or None.

    The routing key must be `user.<claimed_user>.<kind>` (topic permissions let a desktop
    publish only its own keys). When the reply carries the AMQP `user_id`, which RabbitMQ
    validates against the connection's user, it must name the same user; with
    `require_user_id` (every desktop signs in as its own broker user) it must be there.
    """
    login = login_of_key(sender.routing_key)
    if login is None:
        return f"routing key {sender.routing_key!r} is not user.<login>.<kind>"
    if login != claimed_user:
        return f"reply for {claimed_user} sent under {login}'s routing key"
    if require_user_id and sender.user_id is None:
        return f"reply for {claimed_user} carries no user_id"
    # A signed-in desktop's own broker user (`alice~pc1`) speaks for its login.
    if sender.user_id is not None and login_of_broker_user(sender.user_id) != claimed_user:
        return f"reply for {claimed_user} sent by broker user {sender.user_id}"
    return None


@dataclass
class Answer:
    """A user's answer to a prompt, forwarded to the ledger as the command `command_id`;
    its outcome is what the ledger replied (None while it has not)."""

    command_id: str
    job_id: uuid.UUID
    user: str
    action: str
    outcome: str | None = None

    def settle(self, outcome: str) -> None:
        """Record the ledger's outcome (`refused` when it refused the command)."""
        if self.outcome is not None:
            raise Refused(f"the answer to job {self.job_id} was settled already")
        self.outcome = outcome


@dataclass
class Prompt:
    """A question put to `user`'s desktop about their job `job_id`."""

    job_id: uuid.UUID
    user: str
    document_name: str
    expires_at: datetime
    state: str = "open"  # open | closed
    # The marks (platen.messaging.marks) the job carried when the question was put: its
    # answer, which comes from a desktop and carries none, is marked with them again.
    marks: dict[str, str] = field(default_factory=dict)

    def ttl_ms(self, now: datetime) -> int | None:
        """How long the question may wait in the user's queue, or None if not at all."""
        return ttl_ms(self.expires_at, now)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def answer_problem(self, user: str, now: datetime) -> str | None:
        """Why an answer from `user` is refused before reaching the ledger, or None."""
        if self.user != user:
            return "this job belongs to someone else"
        if self.state != "open":
            return "this job is no longer waiting for an answer"
        if self.expired(now):
            return "too late: the job's deadline has passed"
        return None

    def close(self) -> bool:
        """The job has moved on: no answer is taken any more. False if it was closed."""
        if self.state != "open":
            return False
        self.state = "closed"
        return True


def prompt_problem(prompt: Prompt | None, user: str, now: datetime) -> str | None:
    """Why an answer to `prompt` (None: the job asked nothing) is refused, or None."""
    if prompt is None:
        return "this job is not waiting for an answer"
    return prompt.answer_problem(user, now)


@dataclass
class DesktopIdentity:
    """The broker identity a user's desktop signs in as; `enabled` is what the broker must
    be made to match (permissions granted, or revoked and signed out)."""

    login: str
    enabled: bool = True

    def revoke(self) -> None:
        self.enabled = False

    def restore(self) -> None:
        self.enabled = True

    def issue_credential(self) -> None:
        """Whether a new password may be issued: only to an enabled user."""
        if not self.enabled:
            raise Refused(f"{self.login} is disabled")


@dataclass
class SignedInDesktop:
    """A desktop its user signed in from with their directory password: it connects as a
    broker user of its own, `username`, with its login's desktop permissions while the
    login is enabled. `revoked`: the administrator signed it out; the broker user must go."""

    login: str
    desktop: str
    signed_in_at: datetime
    source: str | None = None
    revoked: bool = False

    @property
    def username(self) -> str:
        return desktop_broker_user(self.login, self.desktop)

    def revoke(self) -> None:
        if self.revoked:
            raise Refused(f"{self.login}'s desktop {self.desktop} is signed out already")
        self.revoked = True


# Desktops one user may have signed in at once. Each is a broker user and a durable queue
# that receives a copy of every message for the user: without a cap, one ordinary user
# could sign in made-up desktops until the broker runs out of memory.
MAX_SIGNED_IN_DESKTOPS = 10


def room_for_desktop(signed_in: list[SignedInDesktop], desktop: str, limit: int) -> bool:
    """Whether `desktop` may sign in next to the user's `signed_in` desktops: one already
    signed in may always sign in again (a new credential for the same desktop)."""
    active = {d.desktop for d in signed_in if not d.revoked}
    return desktop in active or len(active) < limit


class SignInLimiter:
    """Failed sign-ins, counted per login and per source address within a sliding window:
    over either limit, no attempt is checked against the directory until the oldest
    failure leaves the window (a correct password included, so that guessing stays slow
    however it is spread). Per-login stops guessing one user's password from many
    addresses; per-source stops one address guessing many users'. In memory, per
    process (a restart forgets, replicas each count their own), and bounded: a flood of
    made-up logins cannot grow it past `max_keys`."""

    def __init__(
        self,
        *,
        per_login: int = 5,
        per_source: int = 20,
        window: float = 300.0,
        max_keys: int = 100_000,
    ) -> None:
        self.per_login = per_login
        self.per_source = per_source
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str], collections.deque[float]] = {}

    def _limits(self, login: str, source: str) -> tuple[tuple[tuple[str, str], int], ...]:
        return ((("login", login), self.per_login), (("source", source), self.per_source))

    def _recent(self, key: tuple[str, str], now: float) -> collections.deque[float]:
        times = self._failures.get(key)
        if times is None:
            return collections.deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, login: str, source: str, now: float) -> float:
        """Seconds before an attempt for `login` from `source` is taken; 0: now."""
        wait = 0.0
        for key, limit in self._limits(login, source):
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + self.window - now)
        return wait

    def failed(self, login: str, source: str, now: float) -> None:
        if len(self._failures) >= self.max_keys:
            self._forget_some(now)
        for key, limit in self._limits(login, source):
            times = self._failures.setdefault(key, collections.deque(maxlen=limit))
            times.append(now)

    def _forget_some(self, now: float) -> None:
        """Make room for new keys, a tenth of `max_keys` at a time (so the sweep is rare).

        What goes first is what blocks nobody: counts that left the window, then counts
        under their limit, oldest last failure first. A key at its limit, which is holding
        a guesser back right now, goes only when nothing else is left. Clearing them all
        instead would let anyone reset a victim's count by flooding made-up logins."""
        keep = self.max_keys - max(1, self.max_keys // 10)
        for key in list(self._failures):
            self._recent(key, now)  # drops the key once its failures are out of the window
        if len(self._failures) <= keep:
            return
        limit_of = {"login": self.per_login, "source": self.per_source}

        def blocking_last_oldest_first(item: tuple[tuple[str, str], collections.deque[float]]):
            (kind, _), times = item
            return (len(times) >= limit_of[kind], times[-1])

        ordered = sorted(self._failures.items(), key=blocking_last_oldest_first)
        for key, _ in ordered[: len(self._failures) - keep]:
            del self._failures[key]


@dataclass
class PrintServerIdentity:
    """A print server's broker identity (`username` signs in for print server `name`)."""

    name: str
    username: str
    removed: bool = False

    def reissue(self, username: str) -> None:
        """Issued again (a new password): it is a print server again if it was removed."""
        self.username = username
        self.removed = False

    def remove(self) -> None:
        if self.removed:
            raise Refused(f"no print server named {self.name!r}")
        self.removed = True


# ----------------------------------------------------------------- answer rates


class Take(Enum):
    ALLOWED = "allowed"
    DROPPED = "dropped"  # over the limit, and the user was told already
    FIRST_DROPPED = "first dropped"  # over the limit now: tell the user, once


@dataclass
class TokenBucket:
    """`capacity` answers at once, refilled at `rate` per second. Times are seconds on a
    monotonic clock, passed in."""

    capacity: float
    rate: float
    tokens: float
    at: float
    limited: bool = False  # has dropped since the bucket was last full: the flood goes on

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)
        if self.tokens >= self.capacity:
            self.limited = False

    def take(self, now: float) -> Take:
        self.refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return Take.ALLOWED
        first, self.limited = not self.limited, True
        return Take.FIRST_DROPPED if first else Take.DROPPED


class AnswerRates:
    """One token bucket per login. Only logins the broker vouched for reach it (the sender
    is checked first), and a bucket that has refilled is forgotten when there are many,
    so its memory follows the users answering now."""

    def __init__(self, rate: float, burst: int, keep: int = 10_000) -> None:
        self.rate, self.burst, self.keep = rate, burst, keep
        self.buckets: dict[str, TokenBucket] = {}
        self.to_tell: set[str] = set()  # logins whose flood began and who are not told yet

    def take(self, login: str, now: float) -> Take:
        bucket = self.buckets.get(login)
        if bucket is None:
            if len(self.buckets) >= self.keep:
                self._forget_full(now)
            bucket = self.buckets[login] = TokenBucket(self.burst, self.rate, self.burst, now)
        taken = bucket.take(now)
        if taken is Take.FIRST_DROPPED:
            self.to_tell.add(login)
        return taken

    def tell(self, login: str) -> bool:
        """Whether `login` is to be told now that answers were dropped (once a flood)."""
        if login in self.to_tell:
            self.to_tell.discard(login)
            return True
        return False

    def _forget_full(self, now: float) -> None:
        for login, bucket in list(self.buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity:
                del self.buckets[login]


# ----------------------------------------------------------------- notice templates

# What each notice's template may say, by placeholder. The defaults are the client's
# English texts, so a site that changes nothing reads what it always read.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "low-balance": ("login", "balance", "available", "threshold"),
    "denied": ("login", "document", "printer", "reason"),
}
DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "low-balance": (
        "Low credit",
        "Low credit: your available balance is {available} (below {threshold}). "
        "Ask for a top-up before your next job.",
    ),
    "denied": ("Job denied: {document}", 'Denied "{document}" on {printer}: {reason}'),
}
# What one placeholder may put in a text: long enough for any real document name.
MAX_VALUE = 300


@dataclass(frozen=True)
class NoticeTemplate:
    name: str
    subject: str
    body: str
    custom: bool = False  # False: the built-in wording

    def render(self, values: dict[str, object]) -> tuple[str, str]:
        """(subject, body) with each placeholder replaced by its value, made harmless: a
        value (a document's name is the user's own text) becomes one line with no control
        character, so it cannot add a header or a line to the subject, and it is put in
        as text, never read again as a template, so it cannot name a placeholder."""
        clean = {k: _one_line(str(v)) for k, v in values.items()}
        return _fill(self.subject, clean), _fill(self.body, clean)


def default_template(name: str) -> NoticeTemplate:
    subject, body = DEFAULT_TEMPLATES[name]
    return NoticeTemplate(name, subject, body)


def template_problem(name: str, subject: str, body: str) -> str | None:
    """Why this template is refused, or None: it may name only its notice's placeholders,
    in plain braces (`{balance}`; `{{` and `}}` write a brace), and the subject is one line."""
    if name not in PLACEHOLDERS:
        return f"no notice named {name!r} (known: {', '.join(PLACEHOLDERS)})"
    if "\r" in subject or "\n" in subject:
        return "the subject must be one line"
    allowed = PLACEHOLDERS[name]
    for part, text in (("subject", subject), ("body", body)):
        try:
            fields = _fields(text)
        except ValueError as exc:
            return f"the {part} is not a valid template: {exc}"
        for field_name, spec in fields:
            if field_name not in allowed or spec:
                return (
                    f"the {part} names {{{field_name}{spec}}}, which the {name} notice does "
                    f"not have; it may use {', '.join('{' + p + '}' for p in allowed)}"
                )
    return None


def _fields(text: str) -> list[tuple[str, str]]:
    """Each placeholder of `text`: its name and whatever follows it (a conversion or a
    format spec, which templates may not use)."""
    found = []
    for _literal, field_name, spec, conversion in string.Formatter().parse(text):
        if field_name is None:
            continue
        extra = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        found.append((field_name, extra))
    return found


def _fill(template: str, values: dict[str, str]) -> str:
    # Only plain names pass `template_problem`, so format reads no attribute or index.
    return template.format_map(_Missing(values))


class _Missing(dict):
    """A placeholder with no value (a denial with no price) reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _one_line(value: str) -> str:
    text = "".join(
        " " if (ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85") else c for c in value
    )
    return text[:MAX_VALUE]


# ----------------------------------------------------------------- mail

# Between attempts at a mail the server did not take for now (4xx, no connection).
MAIL_RETRY_DELAYS = (5, 30, 120, 600, 1800, 3600)


class MailOutcome(Enum):
    SENT = "sent"
    RETRY = "retry"  # for now: try again later
    REFUSED = "refused"  # for good (5xx): recorded, never tried again


def smtp_outcome(code: int | None) -> MailOutcome:
    """What an SMTP reply code means for the mail: 5xx is a refusal for good; anything
    else that failed (4xx, no code: the server could not be reached) is tried again."""
    if code is not None and 500 <= code < 600:
        return MailOutcome.REFUSED
    return MailOutcome.RETRY


def retry_delay(attempts: int) -> int:
    """Seconds before the next attempt, after `attempts` failed ones (1 or more)."""
    return MAIL_RETRY_DELAYS[min(attempts, len(MAIL_RETRY_DELAYS)) - 1]


@dataclass(frozen=True)
class Contact:
    """How to reach a user by email, as the ledger last announced it (`revision`)."""

    login: str
    email: str | None
    email_notices: bool
    revision: int

    def wants_mail(self) -> bool:
        return self.email_notices and bool(self.email)


@dataclass(frozen=True)
class QueuedMail:
    """One mail of the outbox, as the sender claimed it (`attempts` before this one)."""

    id: int
    login: str
    recipient: str
    subject: str
    body: str
    attempts: int
    job_id: uuid.UUID | None = None


def desktop_options(
    site: dict[str, str], groups: dict[str, dict[str, str]], user_groups: list[str]
) -> dict[str, str]:
    """The options a member of `user_groups` is given: the site's, each overridden by the
    value their groups set. Where two of their groups set different values, the one that
    restricts the desktop more wins for a permission (hiding the balance, forbidding quit),
    and the group first by name for anything else (a title, a colour), so the answer never
    depends on the order the groups were listed in."""
    chosen = dict(site)
    from_groups: dict[str, str] = {}
    for group in sorted(set(user_groups)):
        for key, value in groups.get(group, {}).items():
            if key not in from_groups or RESTRICTIVE.get(key) == value:
                from_groups[key] = value
    chosen.update(from_groups)
    return chosen
