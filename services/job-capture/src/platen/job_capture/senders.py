"""Who may submit a job, ask about it or report its outcome. Pure rules.

The sender is the broker user named by a request's AMQP `user_id`, which RabbitMQ checks
against the user that signed in: a print server cannot claim to be another. A print
server submits CUPS jobs only, and only for itself; it may not touch a job another print
server submitted (job ids are random, but a guessed or leaked one must not let print
server A report B's job as failed, nor see its state). `platenctl` and other identities
that may send job-capture's commands are administrators: they submit API jobs and may
ask about any job.
"""

from __future__ import annotations

from dataclasses import dataclass

from platen.broker_setup import print_servers

NO_SENDER = "the request does not say who sends it (set the AMQP user_id property)"


@dataclass(frozen=True)
class Sender:
    user_id: str | None

    @property
    def print_server(self) -> str | None:
        return print_servers.name_of(self.user_id)


def refuse_submission(sender: Sender, source: str) -> str | None:
    """Why `sender` may not submit a job from `source` (None: it may)."""
    if sender.user_id is None:
        return NO_SENDER
    if sender.print_server is None and source == "cups":
        return "only a print server submits CUPS jobs"
    if sender.print_server is not None and source != "cups":
        return "a print server submits CUPS jobs only"
    return None


def refuse_access(sender: Sender, owner: str | None) -> str | None:
    """Why `sender` may not ask about or report on a job submitted by print server
    `owner` (None for an API job)."""
    if sender.user_id is None:
        return NO_SENDER
    if sender.print_server is not None and sender.print_server != owner:
        return "this job was not submitted by this print server"
    return None
