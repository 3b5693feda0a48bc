"""platenctl commands on one job: `job cancel`."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from platen.ctl.common import call, fail
from platen.events.jobs import AdminCancelJob, JobStatus

MAX_REASON = 400  # AdminCancelJob.reason's limit, checked here for a clear error
job_app = typer.Typer(help="One job: cancel it.", no_args_is_help=True)


@job_app.command("cancel")
def job_cancel(
    job_id: Annotated[uuid.UUID, typer.Argument(metavar="JOB")],
    reason: Annotated[str | None, typer.Option(help="Why; the user's desktop shows it.")] = None,
) -> None:
    """Cancel a job still waiting for a decision (e.g. held for its user's confirmation):
    never charged, its hold released, its user told why. A job already sent to its
    printer is refused: refund it once charged."""
    if reason is not None and len(reason) > MAX_REASON:
        raise fail(f"the reason is {len(reason)} characters; at most {MAX_REASON} are kept")
    status: JobStatus = call(AdminCancelJob(job_id=job_id, reason=reason or None))
    typer.echo(f"{status.job_id}: {status.state} ({status.reason})")


def register(app: typer.Typer) -> None:
    app.add_typer(job_app, name="job")
