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
