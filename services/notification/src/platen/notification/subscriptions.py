"""What notification publishes; each handler declares what it receives (`@subscribe.…`).

It announces no event: it speaks to users' desktops, and to the ledger with the answers
they give."""

from platen.events.accounts import AnswerJob
from platen.events.desktop import DESKTOP_KINDS
from platen.messaging.subscriptions import Subscriptions

subscribe = Subscriptions(
    "notification", command_prefix="notification", sends=(AnswerJob,), to_desktops=DESKTOP_KINDS
)
