"""Request and reply over the broker, for programs that are not services (platenctl, the
CUPS backend): a command or query to `platen.commands`, answered through
`platen.replies` on a reply queue of the client's own."""

from platen.rpc.client import Client, RequestFailed, amqp_message, connect

__all__ = ["Client", "RequestFailed", "amqp_message", "connect"]
