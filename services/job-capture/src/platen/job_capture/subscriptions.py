"""What job-capture publishes; each handler declares what it receives (`@subscribe.…`)."""

from platen.events import jobs
from platen.messaging.subscriptions import Subscriptions

subscribe = Subscriptions(
    "job-capture",
    command_prefix="capture",
    # What a job's transitions queue (domain.Job): from capture to its one outcome.
    publishes=(
        jobs.JobCaptured,
        jobs.JobPrinted,
        jobs.JobFailed,
        jobs.JobCancelled,
        jobs.JobDenied,
        jobs.JobUnconfirmed,
    ),
    # A decision, pushed to the waiting CUPS backend of the job's print server (`decisions`).
    to_print_servers=(jobs.JobStatus,),
)
