"""What pricing publishes; each handler declares what it receives (`@subscribe.…`)."""

from platen.events.jobs import JobDenied, JobPriced
from platen.messaging.subscriptions import Subscriptions

subscribe = Subscriptions("pricing", command_prefix="pricing", publishes=(JobPriced, JobDenied))
