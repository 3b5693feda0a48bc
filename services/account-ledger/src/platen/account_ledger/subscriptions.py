"""What the ledger publishes; each handler declares what it receives (`@subscribe.…`)."""

from platen.events.accounts import (
    BalanceChanged,
    BalanceLow,
    JobCharged,
    JobInputRequired,
    PinLocked,
    UserAdded,
    UserContactSet,
    UserDisabled,
    UserEnabled,
    UserGroupsSet,
)
from platen.events.jobs import JobAuthorized, JobCancelled, JobDenied
from platen.messaging.subscriptions import EVENT_QUEUE, Subscriptions

subscribe = Subscriptions(
    "account-ledger",
    command_prefix="ledger",
    publishes=(
        JobAuthorized,
        JobDenied,
        JobCancelled,
        JobCharged,
        JobInputRequired,
        BalanceChanged,
        BalanceLow,
        PinLocked,
        UserAdded,
        UserGroupsSet,
        UserDisabled,
        UserEnabled,
        UserContactSet,
    ),
    # Job events in batches: the charges of many jobs to one shared account then take its
    # row lock once per batch, not once per job (docs/ledger.md, "Charges in batches").
    batched=(EVENT_QUEUE,),
    # Of up to 64: with batches of 32, one hot account took 940 to 1,020 charges a second
    # with 32 batches in flight; of 64, 1,234 to 1,435 (bench/README.md, session 24). A
    # batch is what is ready, so a quiet queue's jobs still go one or two at a time.
    batch_size=64,
)
