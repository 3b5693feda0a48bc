"""Exchange names and routing keys: the addresses of the contract."""

EVENTS = "platen.events"
COMMANDS = "platen.commands"
DESKTOP = "platen.desktop"
DESKTOP_REPLIES = "platen.desktop.replies"
DEAD_LETTER = "platen.dlx"
UNROUTED = "platen.unrouted"


def desktop_queue(login: str) -> str:
    return f"desktop.{login}"


def desktop_key(login: str, kind: str) -> str:
    return f"user.{login}.{kind}"


def login_of_key(routing_key: str) -> str | None:
    """The login in a `user.<login>.<kind>` routing key, or None if it has another shape."""
    parts = routing_key.split(".")
    if len(parts) != 3 or parts[0] != "user" or not parts[1]:
        return None
    return parts[1]
