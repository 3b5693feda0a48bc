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
from platen.messaging.subscriptions import Subscriptions

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
)
