"""The bounds the broker keeps on Platen's queues, applied as policies by the installer.

Without them one desktop, or one flood of bad messages, could fill the broker's memory and
disk for everyone: a desktop that never reads its queue, or messages dead-lettered by the
thousand and kept for ever. The work queues of the services are not bounded: what waits
there is work Platen owes, and the services drain them.
"""

from __future__ import annotations

from dataclasses import dataclass

from platen.broker_setup.broker_admin import BrokerAdmin

DAY_MS = 24 * 3600 * 1000

# The largest message the broker accepts (rabbitmq.conf `max_message_size`; RabbitMQ's own
# default is 128 MiB), so that no identity can make it hold 50 MB messages. The largest
# legitimate message is a `capture.submit`: its document base64-encoded (4/3 of
# job-capture's PLATEN_MAX_DOCUMENT_BYTES, 16 MiB by default: 21.3 MiB) plus JSON and
# headers. 24 MiB leaves room for those (job-capture's tests check the two agree); raise
# both together.
MAX_MESSAGE_BYTES = 24 * 1024 * 1024


@dataclass(frozen=True)
class QueuePolicy:
    name: str
    pattern: str  # the queues it applies to (a regular expression on the name)
    definition: dict
    why: str


# The priority of Platen's policies (where several match a queue, the highest applies).
PRIORITY = 10

POLICIES = (
    QueuePolicy(
        "platen-desktop-queues",
        r"^desktop\.",
        # Everything sent to a desktop is a notice or a question with its own deadline:
        # the newest 1,000 are plenty for a desktop that was away, and none outlives a week.
        {"max-length": 1000, "max-length-bytes": 4 * 1024 * 1024, "message-ttl": 7 * DAY_MS},
        "a user's desktop queue: the newest 1,000 messages (4 MiB), none older than 7 days",
    ),
    QueuePolicy(
        "platen-dead-letters",
        r"(\.dlq|^platen\.unrouted)$",
        # Kept for an administrator to look at and replay (`platenctl dlq`): a month and
        # 10,000 messages (64 MiB) each, the oldest dropped first beyond that.
        {"max-length": 10000, "max-length-bytes": 64 * 1024 * 1024, "message-ttl": 30 * DAY_MS},
        "each dead-letter queue and the unrouted queue: 10,000 messages (64 MiB), 30 days",
    ),
)


async def apply(admin: BrokerAdmin) -> None:
    """Set every policy on the admin's vhost (idempotent: a policy is replaced)."""
    for policy in POLICIES:
        await admin.set_policy(policy.name, policy.pattern, policy.definition, priority=PRIORITY)
