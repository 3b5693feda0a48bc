"""Entry point of the job-capture service."""

from pathlib import Path

from platen.events.jobs import (
    AnalyseDocument,
    CancelJob,
    GetJobStatus,
    JobAuthorized,
    JobCancelled,
    JobDenied,
    JobPriced,
    KeepJobAlive,
    ListJobs,
    ReportOutcome,
    SubmitJob,
)
from platen.events.print_identity import (
    GetPrinterIdentity,
    ListPrinterIdentities,
    SetPrinterIdentity,
)
from platen.job_capture import handlers, presence, print_identity
from platen.job_capture.analyse_only import on_analyse
from platen.job_capture.backend_reports import on_cancel, on_heartbeat
from platen.job_capture.expiry import start_expiry
from platen.job_capture.store import Store
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="job-capture",
    schema="job_capture",
    migrations=Path(__file__).parent / "migrations",
    handlers={
        "events": {
            JobPriced: handlers.on_priced,
            JobAuthorized: handlers.on_authorized,
            JobDenied: handlers.on_denied,
            JobCancelled: handlers.on_cancelled,
        },
        "commands": {
            SubmitJob: handlers.on_submit,
            ListJobs: handlers.on_list,
            GetJobStatus: handlers.on_status,
            ReportOutcome: handlers.on_outcome,
            AnalyseDocument: on_analyse,
            CancelJob: on_cancel,
            KeepJobAlive: on_heartbeat,
            SetPrinterIdentity: print_identity.on_set,
            GetPrinterIdentity: print_identity.on_get,
            ListPrinterIdentities: print_identity.on_list,
        },
    },
    on_ready=[start_expiry, presence.start],
    store=Store,
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
