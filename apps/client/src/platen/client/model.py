"""What the client knows and decides, apart from any window or terminal (the presenter).

It turns each message from the server into effects for a view (show a prompt, close it,
tell the user something, update the balance) and each answer of the user into the replies
to send. It decides nothing about money: the server checks every answer again.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from platen.client.config import Options
from platen.client.contract import (
    AnswerResult,
    BalanceNotice,
    BroadcastNotice,
    ClientOptionsNotice,
    DeniedNotice,
    JobAnswer,
    JobPrompt,
    LowBalanceNotice,
    PrintedNotice,
    PromptAccount,
    PromptClosed,
)
from platen.client.formatting import console_line
from platen.client.i18n import N_, _
from platen.client.recent import Favourites, RecentAccounts
from platen.client.serveroptions import Effective, effective
from platen.client.wire import Message, encode
from platen.events.identity_question import is_identity_question

# ----------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class ShowPrompt:
    prompt: JobPrompt


@dataclass(frozen=True)
class ClosePrompt:
    job_id: uuid.UUID
    text: str


@dataclass(frozen=True)
class Notify:
    """Something to tell the user: a title, the text, and how much it matters."""

    title: str
    text: str
    level: str = "info"  # info | warning | error
    message: Message | None = None


@dataclass(frozen=True)
class ShowBalance:
    balance: str
    available: str


@dataclass(frozen=True)
class ApplyOptions:
    """The options to run with now (from the server, narrowed by the desktop's own)."""

    options: Effective


Effect = ShowPrompt | ClosePrompt | Notify | ShowBalance | ApplyOptions


@dataclass(frozen=True)
class Choice:
    """The user's answer to one prompt."""

    action: str  # print | cancel
    account: str | None = None
    pin: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class RecentJob:
    """One of the user's last jobs, as the tray's "recent jobs" lists it."""

    job_id: uuid.UUID
    document: str
    printer: str | None
    outcome: str  # printed | denied | cancelled
    cost: Decimal | None = None


RECENT_JOBS = 10


class UnknownPrompt(KeyError):
    """The answer names a job that is not waiting (answered, closed, or never seen)."""


@dataclass
class ClientModel:
    login: str
    recent: RecentAccounts = field(default_factory=RecentAccounts)
    favourites: Favourites = field(default_factory=Favourites)
    prompts: dict[uuid.UUID, JobPrompt] = field(default_factory=dict)
    balance: BalanceNotice | None = None
    # Jobs whose answer is on its way: their popup is gone, the outcome not yet known.
    answered: dict[uuid.UUID, JobPrompt] = field(default_factory=dict)
    _closed: set[uuid.UUID] = field(default_factory=set)
    # The desktop's own options, and what it runs with once the server's are applied.
    local: Options | None = None
    options: Effective = field(init=False)
    options_revision: int = -1
    # The last jobs, newest last, one entry a job (what the tray's "recent jobs" shows).
    recent_jobs: OrderedDict[uuid.UUID, RecentJob] = field(default_factory=OrderedDict)
    # The printer each recent prompt was for: a "closed" message does not name it, and may
    # come after the answer's result has already let the prompt go.
    _printers: OrderedDict[uuid.UUID, str] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.options = effective({}, self._local())

    def _local(self) -> Options:
        return self.local or Options(login=self.login, url="")

    # ------------------------------------------------------------- from the server

    def receive(self, message: Message, now: datetime | None = None) -> list[Effect]:
        now = now or datetime.now(UTC)
        if isinstance(message, PrintedNotice | DeniedNotice | PromptClosed):
            self._remember(message)
        if isinstance(message, JobPrompt):
            return self._prompt(message, now)
        if isinstance(message, PromptClosed):
            return self._closed_by_server(message)
        if isinstance(message, AnswerResult):
            return self._result(message)
        if isinstance(message, ClientOptionsNotice):
            return self._server_options(message)
        if isinstance(message, BalanceNotice):
            self.balance = message
            if self.options.hide_balance:
                return []  # kept, to show at once if the balance is allowed again
            return [ShowBalance(str(message.balance), str(message.available))]
        if isinstance(message, PrintedNotice):
            # The balance window follows the ledger's own `balance` message, which comes
            # with the charge and knows what is still held.
            text = self.options.text(
                "template.printed",
                {
                    "document": message.document_name,
                    "printer": message.printer,
                    "cost": str(message.cost),
                    "balance": str(message.balance),
                },
                _('Printed "{document}" on {printer}: {cost}').format(
                    document=message.document_name, printer=message.printer, cost=message.cost
                )
                if self.options.hide_balance
                else console_line(message),
            )
            return [Notify(_("Job printed"), text, message=message)]
        if isinstance(message, DeniedNotice):
            text = self.options.text(
                "template.denied",
                {
                    "document": message.document_name,
                    "printer": message.printer,
                    "reason": message.reason,
                },
                console_line(message),
            )
            return [Notify(_("Job denied"), text, "error", message)]
        if isinstance(message, LowBalanceNotice):
            text = self.options.text(
                "template.low_balance",
                {
                    "balance": str(message.balance),
                    "available": str(message.available),
                    "threshold": str(message.threshold),
                },
                _("Your credit is low.") if self.options.hide_balance else console_line(message),
            )
            return [Notify(_("Low credit"), text, "warning", message)]
        if isinstance(message, BroadcastNotice):
            title = _("Message from {sender}").format(sender=message.sender)
            return [Notify(title, message.text, message=message)]
        return [Notify("Platen", console_line(message), message=message)]

    def _server_options(self, msg: ClientOptionsNotice) -> list[Effect]:
        # Notices may arrive out of order: the highest revision is the newest state.
        if msg.revision <= self.options_revision:
            return []
        self.options_revision = msg.revision
        was_hidden = self.options.hide_balance
        self.options = effective(msg.options, self._local())
        effects: list[Effect] = [ApplyOptions(self.options)]
        if was_hidden and not self.options.hide_balance and self.balance is not None:
            effects.append(ShowBalance(str(self.balance.balance), str(self.balance.available)))
        return effects

    def _remember(self, message: PrintedNotice | DeniedNotice | PromptClosed) -> None:
        if isinstance(message, PromptClosed) and message.outcome == "authorized":
            return  # on its way to the printer: its "printed" comes later
        known = self.recent_jobs.get(message.job_id)
        if known is not None and known.outcome == "printed":
            # Messages may arrive in any order: a job that printed was not cancelled.
            return
        if isinstance(message, PrintedNotice):
            job = RecentJob(
                message.job_id, message.document_name, message.printer, "printed", message.cost
            )
        elif isinstance(message, DeniedNotice):
            job = RecentJob(message.job_id, message.document_name, message.printer, "denied")
        else:
            printer = self._printers.get(message.job_id) or (known.printer if known else None)
            job = RecentJob(message.job_id, message.document_name, printer, message.outcome)
        self.recent_jobs.pop(message.job_id, None)
        self.recent_jobs[message.job_id] = job
        while len(self.recent_jobs) > RECENT_JOBS:
            self.recent_jobs.popitem(last=False)

    def hides(self, message: Message) -> bool:
        """Whether a message must not be shown as it is (the balance, while hidden)."""
        return isinstance(message, BalanceNotice) and self.options.hide_balance

    def _prompt(self, prompt: JobPrompt, now: datetime) -> list[Effect]:
        job = prompt.job_id
        if job in self.prompts or job in self._closed or job in self.answered:
            return []  # a redelivery after a reconnect: shown already
        self._printers[job] = prompt.printer
        while len(self._printers) > 4 * RECENT_JOBS:
            self._printers.popitem(last=False)
        if prompt.expires_at <= now:
            self._closed.add(job)
            return []  # too late to answer: nothing to show
        self.prompts[job] = prompt
        return [ShowPrompt(prompt)]

    def _closed_by_server(self, msg: PromptClosed) -> list[Effect]:
        was_open = self.prompts.pop(msg.job_id, None) is not None
        self.answered.pop(msg.job_id, None)
        self._closed.add(msg.job_id)
        titles = {
            "authorized": N_("Job sent to the printer"),
            "cancelled": N_("Job cancelled"),
            "denied": N_("Job denied"),
        }
        text = f'"{msg.document_name}": {msg.reason}'
        level = "info" if msg.outcome == "authorized" else "warning"
        effects: list[Effect] = []
        if was_open:
            effects.append(ClosePrompt(msg.job_id, text))
        effects.append(Notify(_(titles[msg.outcome]), text, level, msg))
        return effects

    def _result(self, msg: AnswerResult) -> list[Effect]:
        sent = self.answered.pop(msg.job_id, None)
        if msg.outcome == "refused":
            effects: list[Effect] = []
            # The job may still wait (a wrong PIN, an account not allowed): ask again.
            if sent is not None and msg.job_id not in self._closed:
                self.prompts[msg.job_id] = sent
                effects.append(ShowPrompt(sent))
            effects.append(Notify(_("Answer refused"), msg.reason or _("refused"), "error", msg))
            return effects
        self.prompts.pop(msg.job_id, None)
        self._closed.add(msg.job_id)
        if msg.outcome == "authorized":
            if msg.amount is not None:
                text = _("Charged {amount} to {account}").format(
                    amount=msg.amount, account=msg.account
                )
            else:
                text = _("OK")
            return [Notify(_("Job authorised"), text, message=msg)]
        return [Notify(f"Job {msg.outcome}", msg.reason or msg.outcome, "warning", msg)]

    def expire(self, now: datetime | None = None) -> list[Effect]:
        """Close the prompts whose deadline has passed (the server cancels their jobs)."""
        now = now or datetime.now(UTC)
        effects: list[Effect] = []
        for job, prompt in list(self.prompts.items()):
            if prompt.expires_at <= now:
                del self.prompts[job]
                self._closed.add(job)
                text = _('"{document}": no answer before its deadline')
                effects.append(ClosePrompt(job, text.format(document=prompt.document_name)))
        return effects

    # ---------------------------------------------------------------- from the user

    def answer(
        self, job_id: uuid.UUID, choice: Choice, *, apply_to_all: bool = False
    ) -> list[JobAnswer]:
        """The replies for the user's answer to `job_id` (and, if asked, to every other
        waiting job that the same answer fits). Raises UnknownPrompt for a job not waiting."""
        if job_id not in self.prompts:
            raise UnknownPrompt(str(job_id))
        choice = self._by_code(self.prompts[job_id], choice)
        jobs = self.jobs_for(job_id, choice) if apply_to_all else [job_id]
        replies = []
        for job in jobs:
            reply = JobAnswer(
                job_id=job,
                user=self.login,
                action=choice.action,
                account=choice.account if self.prompts[job].kind == "choose_account" else None,
                pin=choice.pin,
                comment=choice.comment,
            )
            # Checked as the server will check it (too long a PIN, a comment), before the
            # prompt is taken as answered: raises ContractError (a ValueError).
            encode(reply)
            replies.append(reply)
            self.answered[job] = self.prompts.pop(job)
        if choice.action == "print" and choice.account:
            self.recent.used(choice.account)
        return replies

    @staticmethod
    def _by_code(prompt: JobPrompt, choice: Choice) -> Choice:
        """An account typed by its code (console, scripts) named by its id when the prompt
        offers it, so that "all" finds it in the other jobs. The server would resolve the
        code too, and checks the choice whatever it is called."""
        typed = (choice.account or "").lower()
        if choice.pin is not None or not typed:
            return choice
        offered = next((a for a in prompt.accounts if (a.code or "").lower() == typed), None)
        return replace(choice, account=offered.account) if offered else choice

    def jobs_for(self, job_id: uuid.UUID, choice: Choice | None) -> list[uuid.UUID]:
        """The waiting jobs that "apply to all" would answer with `choice` (made for
        `job_id`, which comes first); with no choice yet, every job of the same kind."""
        first = self.prompts.get(job_id)
        if first is None:
            return []
        others = [
            j
            for j, p in self.prompts.items()
            if j != job_id
            and (
                p.kind == first.kind and not asks_identity(p)
                if choice is None
                else self._fits(p, first, choice)
            )
        ]
        return [job_id, *others]

    @staticmethod
    def _fits(prompt: JobPrompt, first: JobPrompt, choice: Choice) -> bool:
        """Whether `choice`, made for `first`, can answer `prompt` too."""
        if choice.action == "cancel":
            return True
        if asks_identity(prompt):
            # "Yes, I printed it" is said of one job at a time: a click meant for one's
            # own jobs must not vouch for a job someone else sent in one's name.
            return False
        if prompt.kind == "confirm":
            return True
        if choice.account is None or choice.pin is not None:
            return prompt.kind == first.kind
        return any(a.account == choice.account for a in prompt.accounts)

    def waiting(self) -> list[JobPrompt]:
        return list(self.prompts.values())

    def shared_accounts(self, prompt: JobPrompt, search: str = "") -> list[PromptAccount]:
        """The shared accounts a prompt offers: favourites first (in the order marked),
        then those used recently, then by name; only those whose name or code contains
        `search` (any case)."""
        personal = f"personal:{self.login}"
        options = [a for a in prompt.accounts if a.account != personal]
        needle = search.strip().lower()
        if needle:
            options = [a for a in options if needle in _searchable(a)]
        favourite = {a: i for i, a in enumerate(self.favourites.accounts)}
        rank = self.recent.rank()

        def order(a: PromptAccount) -> tuple:
            return (
                favourite.get(a.account, len(favourite)),
                rank.get(a.account, len(rank)),
                a.path.lower(),
            )

        return sorted(options, key=order)

    def toggle_favourite(self, account: str) -> bool:
        return self.favourites.toggle(account)

    def personal_account(self, prompt: JobPrompt) -> PromptAccount | None:
        personal = f"personal:{self.login}"
        return next((a for a in prompt.accounts if a.account == personal), None)


def asks_identity(prompt: JobPrompt) -> bool:
    """Whether the prompt asks the user if the job is theirs at all (see formatting)."""
    return bool(prompt.messages) and is_identity_question(prompt.messages[0])


def _searchable(account: PromptAccount) -> str:
    return " ".join(filter(None, (account.path, account.account, account.code))).lower()
