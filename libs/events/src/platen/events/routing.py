"""Exchange names and routing keys: the addresses of the contract."""

EVENTS = "platen.events"
COMMANDS = "platen.commands"
DESKTOP = "platen.desktop"
DESKTOP_REPLIES = "platen.desktop.replies"
DEAD_LETTER = "platen.dlx"
UNROUTED = "platen.unrouted"


def login_word(login: str) -> str:
    """A login as one word of a routing key: its dots written %2E. Written as itself,
    `first.last`'s key `user.first.last.answer` would have four words and match no
    binding, and a permission for `first`'s keys could be read as covering it. A login
    holds no %, so the encoding is one to one."""
    return login.replace(".", "%2E")


# A desktop signed in with the user's directory password (`platen-client --sign-in`) has a
# broker user of its own, `<login>~<desktop>`, so the administrator can sign one desktop out
# without the others. `~` is in no login (`base.LOGIN_PATTERN`) and no desktop id, so the
# name splits one way only. It has the permissions of the login's own broker user, but for
# its own queue (`permissions.desktop_user`), and its `user_id` speaks for that login.
DESKTOP_SEPARATOR = "~"
# A host name (kept in lower case, `identities.DesktopId`).
DESKTOP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$"


def desktop_queue(identity: str) -> str:
    """The queue a desktop identity reads: `desktop.<login>` for the administrator-issued
    credential (the login's own broker user), `desktop.<login>:<desktop>` for broker user
    `<login>~<desktop>`, a desktop signed in with the directory password. Each is bound to
    all of the login's keys, so every desktop of a user gets every message (one shared
    queue would hand each message to one of them only). `:` is in no login and no desktop
    id, and, unlike `~`, the AMQP codec (pamqp) takes it in a queue name."""
    login, _, desktop = identity.partition(DESKTOP_SEPARATOR)
    return f"desktop.{login}:{desktop}" if desktop else f"desktop.{login}"


def desktop_broker_user(login: str, desktop: str) -> str:
    return f"{login}{DESKTOP_SEPARATOR}{desktop}"


def login_of_broker_user(user: str) -> str:
    """The login a desktop's broker user speaks for: itself, or the part before `~`."""
    return user.split(DESKTOP_SEPARATOR, 1)[0]


def desktop_key(login: str, kind: str) -> str:
    return f"user.{login_word(login)}.{kind}"


def login_of_key(routing_key: str) -> str | None:
    """The login in a `user.<login word>.<kind>` routing key, or None if it has another
    shape (or its login word is not one `login_word` writes)."""
    parts = routing_key.split(".")
    if len(parts) != 3 or parts[0] != "user" or not parts[1]:
        return None
    login = parts[1].replace("%2E", ".")
    if "%" in login or login_word(login) != parts[1]:
        return None
    return login


# Replies to requests: a topic exchange, never the default one (which reaches every queue
# by name). A requester binds its reply queue under `reply.<its broker user>.<queue>` and
# names that key as the request's `reply_to`; the broker lets each identity bind only
# under its own user (a topic read permission), and a service answers only to a key under
# the request's broker-checked `user_id`.
REPLIES = "platen.replies"
# Dead letters put back: a topic exchange where each service queue is bound under its own
# name, and each service may publish only its own queues' names.
REPLAY = "platen.replay"
# What a service dead-letters itself (with the reason, secrets taken out): a topic
# exchange where each `<queue>.dlq` is bound under its queue's name, and each service may
# publish only its own queues' names. (`platen.dlx` is the broker's own, for what it
# dead-letters by the queues' arguments; no Platen identity writes to it.)
DEAD_LETTERS = "platen.dead-letters"

# What may stand in a reply key as itself; every other byte is written %XX. A broker user
# may hold dots (`platen-print-server.NAME`): written as itself, user `a`'s key
# `reply.a.b.q` would be user `a.b`'s too. Encoded, the user is one word, and the prefix
# `reply.<user>.` belongs to one user only.
_KEY_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def reply_user(user: str) -> str:
    """A broker user as one word of a reply key (no dot, no `*` or `#`), one to one."""
    return "".join(chr(b) if b in _KEY_SAFE else f"%{b:02X}" for b in user.encode())


def reply_prefix(user: str) -> str:
    """What every reply key of broker user `user` starts with."""
    return f"reply.{reply_user(user)}."


def reply_key(user: str, queue: str) -> str:
    """The key `user`'s queue `queue` receives replies under (the request's `reply_to`)."""
    return reply_prefix(user) + queue


def decision_prefix(print_server: str) -> str:
    """What every decision key of print server `print_server` (its name) starts with: on
    `platen.replies`, where job-capture tells a waiting CUPS backend its job was decided.
    The name is one word (encoded as a reply key's user), so no print server's prefix is
    another's."""
    return f"decision.{reply_user(print_server)}."


def decisions_of(print_server: str) -> str:
    """The topic pattern that covers every decision key of `print_server`: bound once by
    its agent, which serves all its jobs on one connection (job ids hold no dot)."""
    return f"{decision_prefix(print_server)}*"


def decision_key(print_server: str, job_id: object) -> str:
    """The key job-capture pushes job `job_id`'s decision under, for the backend of the
    print server that submitted it (which binds its reply queue under it)."""
    return f"{decision_prefix(print_server)}{job_id}"


# A print server named NAME signs in as broker user `[prefix]platen-print-server.NAME`
# (`platen.broker_setup.print_servers`): here, so that the CUPS backend, which has no
# messaging library, reads its own name the way job-capture reads a sender's.
PRINT_SERVER_MARKER = "platen-print-server."


def print_server_of(user: str | None) -> str | None:
    """The print server name in broker user `user` (None: not a print server's user).
    Unchecked: `platen.broker_setup.print_servers.name_of` also checks it is a valid name."""
    if not user or PRINT_SERVER_MARKER not in user:
        return None
    return user.split(PRINT_SERVER_MARKER, 1)[1]
