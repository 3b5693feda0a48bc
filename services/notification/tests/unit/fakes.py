"""In-memory stand-ins for the notification service's adapters: `FakeStore` has the
methods of `platen.notification.store.Store`, `FakeAdmin` those of the broker's management
API that `BrokerIdentities` calls."""

from __future__ import annotations

import copy
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from platen.broker_setup.broker_admin import Snapshot
from platen.broker_setup.permissions import Permissions
from platen.notification import domain
from platen.notification.domain import Answer, DesktopIdentity, PrintServerIdentity, Prompt


class FakeStore:
    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str, uuid.UUID | None]] = []
        self.desktops: dict[str, bool] = {}
        self.prompts: dict[uuid.UUID, Prompt] = {}
        self.answers: dict[str, Answer] = {}
        self.servers: dict[str, PrintServerIdentity] = {}
        self.added_at: dict[str, datetime] = {}
        self.contacts: dict[str, domain.Contact] = {}
        self.templates: dict[str, domain.NoticeTemplate] = {}
        # The mail outbox: source -> the row as the real table has it.
        self.mails: dict[str, dict] = {}
        self.options: dict[tuple[str, str], str] = {}
        self.user_groups: dict[str, tuple[list[str], datetime]] = {}
        self.revision = 0
        self.option_locks = 0
        self.signed_in: dict[tuple[str, str], domain.SignedInDesktop] = {}

    async def signed_in_desktop(self, login, desktop) -> domain.SignedInDesktop | None:
        found = self.signed_in.get((login, desktop))
        return copy.copy(found) if found else None

    async def signed_in_desktops(self, login=None) -> list[domain.SignedInDesktop]:
        return [
            copy.copy(d)
            for key, d in sorted(self.signed_in.items())
            if login is None or key[0] == login
        ]

    async def save_signed_in_desktop(self, desktop) -> None:
        self.signed_in[(desktop.login, desktop.desktop)] = copy.copy(desktop)

    async def forget_signed_in_desktop(self, login, desktop) -> None:
        found = self.signed_in.get((login, desktop))
        if found is not None and found.revoked:
            del self.signed_in[(login, desktop)]

    async def record_delivery(self, login, kind, job_id) -> None:
        self.deliveries.append((login, kind, job_id))

    async def prune(self, older_than) -> dict[str, int]:
        # No times kept here: everything finished counts as old.
        gone = {
            "deliveries": len(self.deliveries),
            "answers": [k for k, a in self.answers.items() if a.outcome is not None],
            "prompts": [k for k, p in self.prompts.items() if p.state == "closed"],
            "mail_outbox": [k for k, m in self.mails.items() if m["state"] != "pending"],
        }
        self.deliveries.clear()
        for key in gone["answers"]:
            del self.answers[key]
        for key in gone["prompts"]:
            del self.prompts[key]
        for key in gone["mail_outbox"]:
            del self.mails[key]
        return {t: v if isinstance(v, int) else len(v) for t, v in gone.items()}

    async def add_desktop_identity(self, login) -> DesktopIdentity:
        self.desktops.setdefault(login, True)
        return DesktopIdentity(login, self.desktops[login])

    async def desktop_identity(self, login, *, lock=False) -> DesktopIdentity | None:
        return DesktopIdentity(login, self.desktops[login]) if login in self.desktops else None

    async def save_desktop_identity(self, identity) -> None:
        self.desktops[identity.login] = identity.enabled

    async def desktop_identities(self) -> list[DesktopIdentity]:
        return [DesktopIdentity(login, on) for login, on in sorted(self.desktops.items())]

    async def enabled_logins(self) -> list[str]:
        return sorted(login for login, on in self.desktops.items() if on)

    async def lock_client_options(self) -> None:
        self.option_locks += 1

    async def next_options_revision(self) -> int:
        self.revision += 1
        return self.revision

    async def set_client_option(self, scope, key, value) -> None:
        self.options[(scope, key)] = value

    async def unset_client_option(self, scope, key) -> bool:
        return self.options.pop((scope, key), None) is not None

    async def client_options(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        site: dict[str, str] = {}
        groups: dict[str, dict[str, str]] = {}
        for (scope, key), value in self.options.items():
            (groups.setdefault(scope, {}) if scope else site)[key] = value
        return site, groups

    async def set_client_user_groups(self, login, groups, revision) -> bool:
        kept = self.user_groups.get(login)
        if kept is not None and kept[1] > revision:
            return False
        self.user_groups[login] = (sorted(set(groups)), revision)
        return True

    async def client_user_groups(self, login) -> list[str]:
        return list(self.user_groups.get(login, ([], None))[0])

    async def enabled_members(self, group) -> list[str]:
        return sorted(
            login
            for login, (groups, _) in self.user_groups.items()
            if group in groups and self.desktops.get(login)
        )

    async def add_prompt(self, prompt) -> bool:
        if prompt.job_id in self.prompts:
            return False
        self.prompts[prompt.job_id] = copy.copy(prompt)
        return True

    async def prompt(self, job_id) -> Prompt | None:
        found = self.prompts.get(job_id)
        return copy.copy(found) if found else None

    async def save_prompt(self, prompt) -> None:
        self.prompts[prompt.job_id] = copy.copy(prompt)

    async def add_answer(self, answer) -> None:
        assert answer.command_id not in self.answers
        self.answers[answer.command_id] = copy.copy(answer)

    async def waiting_answer(self, command_id) -> Answer | None:
        found = self.answers.get(command_id)
        return copy.copy(found) if found and found.outcome is None else None

    async def save_answer(self, answer) -> None:
        self.answers[answer.command_id] = copy.copy(answer)

    async def print_server(self, name) -> PrintServerIdentity | None:
        found = self.servers.get(name)
        return copy.copy(found) if found else None

    async def save_print_server(self, server) -> None:
        self.added_at.setdefault(server.name, datetime.now(UTC))
        self.servers[server.name] = copy.copy(server)

    async def forget_print_server(self, name) -> None:
        if name in self.servers and self.servers[name].removed:
            del self.servers[name]

    async def print_servers(self) -> list[PrintServerIdentity]:
        return [copy.copy(s) for _, s in sorted(self.servers.items())]

    async def print_server_list(self) -> list[dict]:
        return [
            {"name": s.name, "username": s.username, "added_at": self.added_at[s.name]}
            for _, s in sorted(self.servers.items())
            if not s.removed
        ]

    async def set_contact(self, contact) -> bool:
        kept = self.contacts.get(contact.login)
        if kept is not None and kept.revision >= contact.revision:
            return False
        self.contacts[contact.login] = contact
        return True

    async def contact(self, login) -> domain.Contact | None:
        return self.contacts.get(login)

    async def notice_template(self, name) -> domain.NoticeTemplate:
        return self.templates.get(name) or domain.default_template(name)

    async def save_notice_template(self, template) -> None:
        if template.custom:
            self.templates[template.name] = template
        else:
            self.templates.pop(template.name, None)

    async def queue_mail(self, source, login, recipient, subject, body, job_id) -> bool:
        if source in self.mails:
            return False
        self.mails[source] = {
            "id": len(self.mails) + 1,
            "source": source,
            "login": login,
            "recipient": recipient,
            "subject": subject,
            "body": body,
            "job_id": job_id,
            "state": "pending",
            "attempts": 0,
            "last_error": None,
        }
        return True

    async def claim_mail(self, limit, lease_seconds) -> list[domain.QueuedMail]:
        # No clock here: every pending row is due, and a claim takes it until recorded.
        due = [m for m in self.mails.values() if m["state"] == "pending" and not m.get("taken")]
        for m in due[:limit]:
            m["taken"] = True
        fields = ("id", "login", "recipient", "subject", "body", "attempts", "job_id")
        return [domain.QueuedMail(**{f: m[f] for f in fields}) for m in due[:limit]]

    def _mail(self, mail_id) -> dict:
        return next(m for m in self.mails.values() if m["id"] == mail_id)

    async def mail_sent(self, mail_id) -> None:
        m = self._mail(mail_id)
        m.update(state="sent", attempts=m["attempts"] + 1, last_error=None, taken=False)

    async def mail_refused(self, mail_id, error) -> None:
        m = self._mail(mail_id)
        m.update(state="refused", attempts=m["attempts"] + 1, last_error=error, taken=False)

    async def mail_retry(self, mail_id, error, delay_seconds) -> None:
        m = self._mail(mail_id)
        m.update(attempts=m["attempts"] + 1, last_error=error, taken=False)

    async def mail_outbox(self) -> list[dict]:
        return sorted(self.mails.values(), key=lambda m: m["id"])

    @asynccontextmanager
    async def session(self):
        """What `BrokerIdentities` opens to read the desired state (a pool's connection)."""
        yield self


class FakeAdmin:
    """Records the management API calls; `fail` makes the next calls raise."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.passwords: dict[str, str] = {}
        self.granted: dict[str, object] = {}
        self.connections: dict[str, int] = {}
        self.fail = 0

    def _call(self, *call) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("management API unreachable")
        self.calls.append(call)

    async def user_exists(self, name: str) -> bool:
        return name in self.passwords

    async def ensure_user(self, name: str) -> bool:
        self._call("ensure_user", name)
        if name in self.passwords:
            return False
        self.passwords[name] = "unknown to anybody"
        return True

    async def set_password(self, name: str, password: str) -> None:
        self._call("set_password", name)
        self.passwords[name] = password

    async def grant(self, name: str, permissions) -> None:
        self._call("grant", name)
        self.granted[name] = permissions

    async def revoke(self, name: str) -> None:
        self._call("revoke", name)
        self.granted.pop(name, None)

    async def disconnect(self, name: str, reason: str = "") -> int:
        self._call("disconnect", name)
        return self.connections.pop(name, 0)

    async def snapshot(self):
        self._call("snapshot")
        granted = {n: p for n, p in self.granted.items() if isinstance(p, Permissions)}
        return Snapshot(
            users=set(self.passwords),
            permissions={
                # Rights a test set by hand (not a Permissions) match no Permissions.
                n: {"configure": p.configure, "write": p.write, "read": p.read}
                if isinstance(p, Permissions)
                else {"set by hand": str(p)}
                for n, p in self.granted.items()
            },
            topics={
                n: {t.exchange: {"write": t.write, "read": t.read} for t in p.topics}
                for n, p in granted.items()
            },
            limits={
                n: {"max-connections": p.max_connections, "max-channels": p.max_channels}
                for n, p in granted.items()
            },
        )

    async def delete_user(self, name: str) -> None:
        self._call("delete_user", name)
        self.passwords.pop(name, None)
        self.granted.pop(name, None)  # the broker deletes a user's permissions with it


class FakeQueues:
    """The desktop queues declared on the broker."""

    def __init__(self) -> None:
        self.declared: set[str] = set()
        self.deleted: list[str] = []

    async def declare(self, identity: str) -> None:
        self.declared.add(identity)

    async def delete(self, identity: str) -> None:
        self.declared.discard(identity)
        self.deleted.append(identity)
