"""The terminal presentations: `--json` (for scripts) and `--console` (for people).

Both read answers from stdin, one per line, in a thread so that a blocking read never
stops the messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import uuid
from typing import TextIO

from platen.client.answers import Answer, BadAnswer, parse_console, parse_json
from platen.client.app import ClientApp
from platen.client.contract import JobPrompt, PromptAccount
from platen.client.formatting import console_line, identity_question, json_line, prompt_lines
from platen.client.i18n import _
from platen.client.model import Notify, ShowBalance, UnknownPrompt
from platen.client.serveroptions import Effective
from platen.client.wire import Message


def _read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, stream: TextIO) -> None:
    for line in stream:
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


class _StdinView:
    def __init__(self, out: TextIO = sys.stdout, inp: TextIO = sys.stdin) -> None:
        self.out = out
        self.inp = inp
        self.app: ClientApp | None = None

    def emit(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def parse(self, line: str) -> Answer:
        raise NotImplementedError

    def job_of(self, answer: Answer) -> uuid.UUID:
        raise NotImplementedError

    def error(self, text: str, line: str) -> None:
        raise NotImplementedError

    async def run(self, app: ClientApp) -> None:
        self.app = app
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=_read_lines, args=(loop, lines, self.inp), daemon=True).start()
        while True:
            line = await lines.get()
            if line is None:
                await asyncio.Event().wait()  # stdin closed: keep showing messages
            elif line.strip():
                self.handle_line(app, line.strip())

    def handle_line(self, app: ClientApp, line: str) -> None:
        try:
            answer = self.parse(line)
            app.answer(self.job_of(answer), answer.choice, apply_to_all=answer.apply_to_all)
        except BadAnswer as exc:
            self.error(str(exc), line)
        except UnknownPrompt:
            self.error("no such job is waiting for your answer", line)


class JsonView(_StdinView):
    """One JSON object per line for every message; answers are JSON lines on stdin."""

    def message(self, message: Message) -> None:
        self.emit(json_line(message))

    def _client(self, kind: str, **fields) -> None:
        self.emit(json.dumps({"type": f"client.{kind}", **fields}, default=str))

    def show_prompt(self, prompt: JobPrompt) -> None:
        pass  # printed as a message already

    def close_prompt(self, job_id: uuid.UUID, text: str) -> None:
        self._client("prompt_closed", job_id=str(job_id), text=text)

    def notify(self, note: Notify) -> None:
        pass

    def show_balance(self, balance: ShowBalance) -> None:
        pass

    def apply_options(self, options: Effective) -> None:
        pass  # the `desktop.client_options` message itself was printed

    def status(self, state: str, detail: str) -> None:
        self._client("status", state=state, detail=detail)

    def answer_sent(self, job_id: uuid.UUID, action: str) -> None:
        self._client("answer_sent", job_id=str(job_id), action=action)

    def parse(self, line: str) -> Answer:
        return parse_json(line)

    def job_of(self, answer: Answer) -> uuid.UUID:
        assert isinstance(answer.job, uuid.UUID)
        return answer.job

    def error(self, text: str, line: str) -> None:
        self._client("error", error=text, input=line[:200])


def account_facts(account: PromptAccount) -> str:
    """ "clients/acme, code AC-1, available 10.00, rate 1" (what the server sent)."""
    facts = [account.path]
    if account.code:
        facts.append(_("code {code}").format(code=account.code))
    if account.available is not None:
        facts.append(_("available {amount}").format(amount=account.available))
    facts.append(_("rate {rate}").format(rate=account.charge_rate))
    return ", ".join(facts)


class ConsoleView(_StdinView):
    """Readable lines; waiting jobs are numbered, and answered by number."""

    def __init__(self, out: TextIO = sys.stdout, inp: TextIO = sys.stdin) -> None:
        super().__init__(out, inp)
        self.numbers: dict[int, uuid.UUID] = {}
        self._next = 1
        self._last_balance = ""

    def message(self, message: Message) -> None:
        pass  # each kind is shown through the effects below

    def show_prompt(self, prompt: JobPrompt) -> None:
        number = next((n for n, j in self.numbers.items() if j == prompt.job_id), None)
        if number is None:
            number, self._next = self._next, self._next + 1
            self.numbers[number] = prompt.job_id
        ask = (
            _("Job waiting for you to confirm:")
            if prompt.kind == "confirm"
            else _("Job waiting for you to choose the account that pays:")
        )
        if question := identity_question(prompt):
            self.emit(f"[{number}] !!! {question}")
            self.emit(
                "    "
                + _("If you did not, answer: cancel {number} (someone used your name).").format(
                    number=number
                )
            )
        self.emit(f"[{number}] {ask}")
        for line in prompt_lines(prompt):
            self.emit(f"    {line}")
        if prompt.kind == "choose_account":
            for a in prompt.accounts:
                self.emit(f"    account={a.account}  ({account_facts(a)})")
            if prompt.allow_pin:
                self.emit("    " + _("or a shared account by PIN: account=NAME pin=PIN"))
        waiting = len(self.app.model.jobs_for(prompt.job_id, None)) if self.app else 1
        also = (
            "  " + _("(add 'all' to answer your {count} waiting jobs)").format(count=waiting)
            if waiting > 1
            else ""
        )
        self.emit(
            f"    answer: print {number} ... | cancel {number}"
            + "   "
            + _("(by {time} UTC)").format(time=f"{prompt.expires_at:%H:%M:%S}")
            + also
        )

    def close_prompt(self, job_id: uuid.UUID, text: str) -> None:
        self.emit(_("closed: {text}").format(text=text))

    def notify(self, note: Notify) -> None:
        self.emit(
            f"{note.title}: {note.text}" if note.message is None else console_line(note.message)
        )

    def apply_options(self, options: Effective) -> None:
        pass  # the balance lines follow the model (hidden or not); a title has no place here

    def show_balance(self, balance: ShowBalance) -> None:
        line = _("Balance {balance} (available {available})").format(
            balance=balance.balance, available=balance.available
        )
        if line != self._last_balance:  # the same balance told twice is said once
            self._last_balance = line
            self.emit(line)

    def status(self, state: str, detail: str) -> None:
        print(f"({state}{': ' + detail if detail else ''})", file=sys.stderr, flush=True)

    def answer_sent(self, job_id: uuid.UUID, action: str) -> None:
        self.emit(_("sent: {action} job {job_id}").format(action=action, job_id=job_id))

    def parse(self, line: str) -> Answer:
        return parse_console(line)

    def job_of(self, answer: Answer) -> uuid.UUID:
        job = self.numbers.get(int(answer.job))
        if job is None:
            raise UnknownPrompt(str(answer.job))
        return job

    def error(self, text: str, line: str) -> None:
        self.emit(f"? {text}")
