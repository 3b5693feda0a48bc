"""Every SQL statement of the notification service: the domain objects in and out of its
tables, over one connection (a delivery's transaction, or one of the reconciler's)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import asyncpg

from platen.notification.domain import (
    Answer,
    Contact,
    DesktopIdentity,
    NoticeTemplate,
    PrintServerIdentity,
    Prompt,
    QueuedMail,
    SignedInDesktop,
    default_template,
)


def _prompt(row: asyncpg.Record) -> Prompt:
    return Prompt(
        job_id=row["job_id"],
        user=row["user_login"],
        document_name=row["document_name"],
        expires_at=row["expires_at"],
        state=row["state"],
        marks=json.loads(row["marks"]) if row["marks"] else {},
    )


def _answer(row: asyncpg.Record) -> Answer:
    return Answer(
        command_id=row["command_id"],
        job_id=row["job_id"],
        user=row["user_login"],
        action=row["action"],
        outcome=row["outcome"],
    )


class Store:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------- deliveries

    async def record_delivery(self, login: str, kind: str, job_id: uuid.UUID | None) -> None:
        await self.conn.execute(
            "INSERT INTO deliveries (user_login, kind, job_id) VALUES ($1, $2, $3)",
            login,
            kind,
            job_id,
        )

    # ------------------------------------------------------------ desktop identities

    async def add_desktop_identity(self, login: str) -> DesktopIdentity:
        """The identity of a user the ledger announced: a new one is enabled; one known
        already keeps its state (the announcement may be a redelivery)."""
        await self.conn.execute(
            "INSERT INTO desktop_users (login) VALUES ($1) ON CONFLICT DO NOTHING", login
        )
        identity = await self.desktop_identity(login)
        assert identity is not None
        return identity

    async def desktop_identity(self, login: str, *, lock: bool = False) -> DesktopIdentity | None:
        """`lock`: until the transaction ends, so that two sign-ins of one user are counted
        one after the other."""
        enabled = await self.conn.fetchval(
            "SELECT enabled FROM desktop_users WHERE login = $1" + (" FOR UPDATE" if lock else ""),
            login,
        )
        return None if enabled is None else DesktopIdentity(login, enabled)

    async def save_desktop_identity(self, identity: DesktopIdentity) -> None:
        await self.conn.execute(
            """INSERT INTO desktop_users (login, enabled) VALUES ($1, $2)
               ON CONFLICT (login) DO UPDATE SET enabled = $2, changed_at = now()""",
            identity.login,
            identity.enabled,
        )

    async def desktop_identities(self) -> list[DesktopIdentity]:
        rows = await self.conn.fetch("SELECT login, enabled FROM desktop_users ORDER BY login")
        return [DesktopIdentity(r["login"], r["enabled"]) for r in rows]

    async def enabled_logins(self) -> list[str]:
        rows = await self.conn.fetch("SELECT login FROM desktop_users WHERE enabled ORDER BY login")
        return [r["login"] for r in rows]

    # --------------------------------------------------------- signed-in desktops

    async def signed_in_desktop(self, login: str, desktop: str) -> SignedInDesktop | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM signed_in_desktops WHERE login = $1 AND desktop = $2", login, desktop
        )
        return None if row is None else SignedInDesktop(**dict(row))

    async def signed_in_desktops(self, login: str | None = None) -> list[SignedInDesktop]:
        """`login`'s desktops (every user's if None), revoked ones included."""
        rows = await self.conn.fetch(
            """SELECT * FROM signed_in_desktops WHERE $1::text IS NULL OR login = $1
               ORDER BY login, desktop""",
            login,
        )
        return [SignedInDesktop(**dict(r)) for r in rows]

    async def save_signed_in_desktop(self, desktop: SignedInDesktop) -> None:
        await self.conn.execute(
            """INSERT INTO signed_in_desktops (login, desktop, signed_in_at, source, revoked)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (login, desktop) DO UPDATE
               SET signed_in_at = $3, source = $4, revoked = $5""",
            desktop.login,
            desktop.desktop,
            desktop.signed_in_at,
            desktop.source,
            desktop.revoked,
        )

    async def forget_signed_in_desktop(self, login: str, desktop: str) -> None:
        """Once the broker user of a revoked desktop is gone (not if it signed in again)."""
        await self.conn.execute(
            "DELETE FROM signed_in_desktops WHERE login = $1 AND desktop = $2 AND revoked",
            login,
            desktop,
        )

    # ------------------------------------------------------------------------ prompts

    async def add_prompt(self, prompt: Prompt) -> bool:
        """Record a prompt; False if this job was asked already."""
        inserted = await self.conn.fetchval(
            """INSERT INTO prompts (job_id, user_login, document_name, expires_at, marks)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING RETURNING 1""",
            prompt.job_id,
            prompt.user,
            prompt.document_name,
            prompt.expires_at,
            json.dumps(prompt.marks) if prompt.marks else None,
        )
        return bool(inserted)

    async def prompt(self, job_id: uuid.UUID) -> Prompt | None:
        """The prompt about `job_id`, locked until the transaction ends."""
        row = await self.conn.fetchrow("SELECT * FROM prompts WHERE job_id = $1 FOR UPDATE", job_id)
        return None if row is None else _prompt(row)

    async def save_prompt(self, prompt: Prompt) -> None:
        await self.conn.execute(
            "UPDATE prompts SET state = $2 WHERE job_id = $1", prompt.job_id, prompt.state
        )

    async def add_answer(self, answer: Answer) -> None:
        await self.conn.execute(
            """INSERT INTO answers (command_id, job_id, user_login, action)
               VALUES ($1, $2, $3, $4)""",
            answer.command_id,
            answer.job_id,
            answer.user,
            answer.action,
        )

    async def waiting_answer(self, command_id: str | None) -> Answer | None:
        """The answer forwarded as `command_id` that the ledger has not replied to, locked."""
        row = await self.conn.fetchrow(
            "SELECT * FROM answers WHERE command_id = $1 AND outcome IS NULL FOR UPDATE",
            command_id,
        )
        return None if row is None else _answer(row)

    async def save_answer(self, answer: Answer) -> None:
        await self.conn.execute(
            "UPDATE answers SET outcome = $2 WHERE command_id = $1",
            answer.command_id,
            answer.outcome,
        )

    # ------------------------------------------------------------------ print servers

    async def print_server(self, name: str) -> PrintServerIdentity | None:
        """Print server `name` (a removed one too, until it is withdrawn), locked."""
        row = await self.conn.fetchrow(
            "SELECT name, username, removed_at FROM print_servers WHERE name = $1 FOR UPDATE",
            name,
        )
        if row is None:
            return None
        return PrintServerIdentity(row["name"], row["username"], row["removed_at"] is not None)

    async def save_print_server(self, server: PrintServerIdentity) -> None:
        await self.conn.execute(
            """INSERT INTO print_servers (name, username) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET username = $2,
                   removed_at = CASE WHEN $3 THEN coalesce(print_servers.removed_at, now()) END""",
            server.name,
            server.username,
            server.removed,
        )

    async def forget_print_server(self, name: str) -> None:
        """Delete a removed print server once the broker no longer knows it."""
        await self.conn.execute(
            "DELETE FROM print_servers WHERE name = $1 AND removed_at IS NOT NULL", name
        )

    async def print_servers(self) -> list[PrintServerIdentity]:
        """Every print server the broker must be made to match, the removed ones too."""
        rows = await self.conn.fetch(
            "SELECT name, username, removed_at FROM print_servers ORDER BY name"
        )
        return [
            PrintServerIdentity(r["name"], r["username"], r["removed_at"] is not None) for r in rows
        ]

    async def print_server_list(self) -> list[asyncpg.Record]:
        """The print servers that have an identity (for `platenctl printserver list`)."""
        return await self.conn.fetch(
            """SELECT name, username, added_at FROM print_servers
               WHERE removed_at IS NULL ORDER BY name"""
        )

    # ------------------------------------------------------------------ email notices

    async def set_contact(self, contact: Contact) -> bool:
        """Keep `contact` unless a later revision is kept already (the ledger's messages
        about one user may arrive out of order); False if it was older news."""
        kept = await self.conn.fetchval(
            """INSERT INTO contacts (login, email, email_notices, revision)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (login) DO UPDATE
                   SET email = $2, email_notices = $3, revision = $4
                   WHERE contacts.revision < $4
               RETURNING 1""",
            contact.login,
            contact.email,
            contact.email_notices,
            contact.revision,
        )
        return bool(kept)

    async def contact(self, login: str) -> Contact | None:
        row = await self.conn.fetchrow("SELECT * FROM contacts WHERE login = $1", login)
        if row is None:
            return None
        return Contact(row["login"], row["email"], row["email_notices"], row["revision"])

    async def notice_template(self, name: str) -> NoticeTemplate:
        """The template of notice `name`: the administrator's, else the built-in one."""
        row = await self.conn.fetchrow(
            "SELECT subject, body FROM notice_templates WHERE name = $1", name
        )
        if row is None:
            return default_template(name)
        return NoticeTemplate(name, row["subject"], row["body"], custom=True)

    async def save_notice_template(self, template: NoticeTemplate) -> None:
        """Save an administrator's template; a template that is not custom is forgotten,
        so the built-in wording (and the client's translations of it) applies again."""
        if not template.custom:
            await self.conn.execute("DELETE FROM notice_templates WHERE name = $1", template.name)
            return
        await self.conn.execute(
            """INSERT INTO notice_templates (name, subject, body) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET subject = $2, body = $3, changed_at = now()""",
            template.name,
            template.subject,
            template.body,
        )

    async def queue_mail(
        self,
        source: str,
        login: str,
        recipient: str,
        subject: str,
        body: str,
        job_id: uuid.UUID | None,
    ) -> bool:
        """Queue a mail for the sender; False if the mail for `source` was queued already."""
        inserted = await self.conn.fetchval(
            """INSERT INTO mail_outbox (source, login, recipient, subject, body, job_id)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source) DO NOTHING RETURNING 1""",
            source,
            login,
            recipient,
            subject,
            body,
            job_id,
        )
        return bool(inserted)

    async def claim_mail(self, limit: int, lease_seconds: float) -> list[QueuedMail]:
        """Up to `limit` due mails, taken for `lease_seconds`: no other sender (replica)
        claims them before then. Rows another sender is claiming are skipped, not awaited."""
        rows = await self.conn.fetch(
            """UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => $2)
               WHERE id IN (
                   SELECT id FROM mail_outbox
                   WHERE state = 'pending' AND next_attempt_at <= now()
                   ORDER BY next_attempt_at, id LIMIT $1
                   FOR UPDATE SKIP LOCKED)
               RETURNING id, login, recipient, subject, body, attempts, job_id""",
            limit,
            lease_seconds,
        )
        return [QueuedMail(**dict(r)) for r in sorted(rows, key=lambda r: r["id"])]

    async def mail_sent(self, mail_id: int) -> None:
        await self.conn.execute(
            """UPDATE mail_outbox SET state = 'sent', attempts = attempts + 1, done_at = now(),
                   last_error = NULL
               WHERE id = $1""",
            mail_id,
        )

    async def mail_refused(self, mail_id: int, error: str) -> None:
        """The mail server refused it for good: recorded, never tried again."""
        await self.conn.execute(
            """UPDATE mail_outbox SET state = 'refused', attempts = attempts + 1,
                   done_at = now(), last_error = $2
               WHERE id = $1""",
            mail_id,
            error,
        )

    async def mail_retry(self, mail_id: int, error: str, delay_seconds: float) -> None:
        await self.conn.execute(
            """UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                   next_attempt_at = now() + make_interval(secs => $3)
               WHERE id = $1""",
            mail_id,
            error,
            delay_seconds,
        )

    async def mail_outbox(self) -> list[asyncpg.Record]:
        """Every mail of the outbox, oldest first (for tests and support)."""
        return await self.conn.fetch("SELECT * FROM mail_outbox ORDER BY id")

    # ---------------------------------------------------------------- client options

    async def lock_client_options(self) -> None:
        """Taken by every change of options or groups, and before each options notice is
        composed, until the transaction ends: notices are then numbered in the order of
        the states they describe (another transaction's change waits, not interleaves)."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('client_options'))")

    async def next_options_revision(self) -> int:
        return await self.conn.fetchval("SELECT nextval('client_options_revision')")

    async def set_client_option(self, scope: str, key: str, value: str) -> None:
        """Option `key` of `scope` ('' for the site, else a group's name)."""
        await self.conn.execute(
            """INSERT INTO client_options (scope, key, value) VALUES ($1, $2, $3)
               ON CONFLICT (scope, key) DO UPDATE SET value = $3, changed_at = now()""",
            scope,
            key,
            value,
        )

    async def unset_client_option(self, scope: str, key: str) -> bool:
        """Remove option `key` of `scope`; False if it was not set."""
        done = await self.conn.execute(
            "DELETE FROM client_options WHERE scope = $1 AND key = $2", scope, key
        )
        return done != "DELETE 0"

    async def client_options(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """The site's options, and each group's."""
        site: dict[str, str] = {}
        groups: dict[str, dict[str, str]] = {}
        for r in await self.conn.fetch("SELECT scope, key, value FROM client_options"):
            (groups.setdefault(r["scope"], {}) if r["scope"] else site)[r["key"]] = r["value"]
        return site, groups

    async def set_client_user_groups(self, login: str, groups: list[str], revision: int) -> bool:
        """`login`'s groups as of the ledger's change number `revision`; False (nothing
        changed) if a later change is already kept."""
        done = await self.conn.fetchval(
            """INSERT INTO client_user_groups (login, groups, revision) VALUES ($1, $2, $3)
               ON CONFLICT (login) DO UPDATE SET groups = $2, revision = $3
               WHERE client_user_groups.revision <= $3
               RETURNING 1""",
            login,
            sorted(set(groups)),
            revision,
        )
        return bool(done)

    async def client_user_groups(self, login: str) -> list[str]:
        groups = await self.conn.fetchval(
            "SELECT groups FROM client_user_groups WHERE login = $1", login
        )
        return list(groups or [])

    async def enabled_members(self, group: str) -> list[str]:
        """The enabled users whose desktops a change of `group`'s options concerns."""
        rows = await self.conn.fetch(
            """SELECT d.login FROM desktop_users d JOIN client_user_groups g USING (login)
               WHERE d.enabled AND $1 = ANY (g.groups) ORDER BY d.login""",
            group,
        )
        return [r["login"] for r in rows]

    # ------------------------------------------------------------------- retention

    async def prune(self, older_than: datetime) -> dict[str, int]:
        """Delete what nothing waits on any more from before `older_than` (see
        platen.operations.retention): deliveries (support history), answers the ledger has
        replied to, and prompts that are closed or whose deadline passed that long ago (no
        answer is taken after the deadline). An open, answerable prompt and an answer still
        waiting for the ledger's reply are kept."""
        statements = {
            "deliveries": "DELETE FROM deliveries WHERE sent_at < $1",
            "answers": "DELETE FROM answers WHERE outcome IS NOT NULL AND answered_at < $1",
            "prompts": """DELETE FROM prompts
                          WHERE (state = 'closed' AND created_at < $1) OR expires_at < $1""",
            # Mail sent or refused; a mail still pending is kept however old.
            "mail_outbox": "DELETE FROM mail_outbox WHERE state <> 'pending' AND done_at < $1",
        }
        return {
            table: int((await self.conn.execute(sql, older_than)).split()[-1])
            for table, sql in statements.items()
        }
