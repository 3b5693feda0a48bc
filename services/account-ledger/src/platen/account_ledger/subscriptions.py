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
)
