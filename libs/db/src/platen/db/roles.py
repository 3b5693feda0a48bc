"""Each service's own PostgreSQL roles: an owner that runs its migrations, and the role the
service signs in as, which may only read and write its schema's rows.

The owner (`<database>_<schema>_owner`) cannot log in: it owns the schema, its tables and
its trigger functions, and only it (or a superuser) can alter, disable or drop them. The
installer (`make run`, the test harness, an administrator) runs the migrations as the owner
before the service starts, with `python -m <service module> migrate`. The service itself
signs in as `<database>_<schema>`: no superuser, not a member of the owner, with SELECT,
INSERT, UPDATE and DELETE on its schema's tables and nothing on any other schema. So a
service cannot turn off the ledger's triggers, nor read another service's tables.

Role names carry the database's name because roles belong to the whole PostgreSQL server,
where several Platen databases may live (the tests make one per test).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import zlib
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import structlog

from platen.db.migrations import Migration, apply_migrations

log = structlog.get_logger(__name__)

_SCRAM_ITERATIONS = 4096


@dataclass(frozen=True)
class ServiceRoles:
    owner: str
    runtime: str


def roles_for(database: str, schema: str) -> ServiceRoles:
    base = re.sub(r"[^a-z0-9_]", "_", f"{database}_{schema}".lower())
    if len(base) > 50:  # a role name is at most 63 bytes, with "_owner" after it
        base = f"{base[:41]}_{zlib.crc32(base.encode()):08x}"
    return ServiceRoles(owner=f"{base}_owner", runtime=base)


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, 7677). Made here so
    that the password itself is never sent to the server, where a statement log could
    keep it."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def with_login(dsn: str, user: str, password: str) -> str:
    """`dsn` signed in as `user`."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(
        parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}")
    )


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"unsafe identifier {name!r}")
    return f'"{name}"'


async def _ensure_role(admin: asyncpg.Connection, role: str, login: bool) -> None:
    exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    rights = "LOGIN NOINHERIT" if login else "NOLOGIN"
    await admin.execute(
        f"{verb} ROLE {_ident(role)} {rights} NOSUPERUSER NOCREATEDB NOCREATEROLE "
        "NOREPLICATION NOBYPASSRLS"
    )


async def _take_ownership(admin: asyncpg.Connection, schema: str, owner: str) -> None:
    """Give the owner a schema made before there were roles (by a superuser, say)."""
    s, o = _ident(schema), _ident(owner)
    await admin.execute(f"ALTER SCHEMA {s} OWNER TO {o}")
    tables = await admin.fetch(
        "SELECT c.oid::regclass::text AS name FROM pg_class c "
        "WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND c.relowner <> $2::regrole",
        schema,
        owner,
    )
    for t in tables:  # a table's serial sequences follow it
        await admin.execute(f"ALTER TABLE {t['name']} OWNER TO {o}")
    functions = await admin.fetch(
        "SELECT p.oid::regprocedure::text AS name FROM pg_proc p "
        "WHERE p.pronamespace = $1::regnamespace AND p.proowner <> $2::regrole",
        schema,
        owner,
    )
    for f in functions:
        await admin.execute(f"ALTER FUNCTION {f['name']} OWNER TO {o}")


async def provision(
    admin: asyncpg.Connection, schema: str, migrations: list[Migration], password: str
) -> ServiceRoles:
    """Make (or bring up to date) the service's roles on `admin`'s database, apply its
    migrations as the owner, grant the runtime role its rows and set its password.

    `admin` is a superuser's connection (the installer's). Safe to run again: each run
    applies what is new and replaces the runtime role's password.
    """
    database = await admin.fetchval("SELECT current_database()")
    roles = roles_for(database, schema)
    s, owner, runtime = _ident(schema), _ident(roles.owner), _ident(roles.runtime)
    # The database's own privileges are one catalog row that every service's provisioning
    # updates: one at a time.
    key = zlib.crc32(f"platen-roles:{database}".encode()) & 0x7FFFFFFF
    await admin.execute("SELECT pg_advisory_lock($1)", key)
    try:
        await _ensure_role(admin, roles.owner, login=False)
        await _ensure_role(admin, roles.runtime, login=True)
        await admin.execute(f"ALTER ROLE {runtime} PASSWORD {_literal(scram_verifier(password))}")
        db = _ident_any(database)
        await admin.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        await admin.execute(f"GRANT CONNECT ON DATABASE {db} TO {runtime}")
        if await admin.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await _take_ownership(admin, schema, roles.owner)
        else:
            await admin.execute(f"CREATE SCHEMA {s} AUTHORIZATION {owner}")
        await admin.execute(f"SET ROLE {owner}")
        try:
            applied = await apply_migrations(admin, schema, migrations)
        finally:
            await admin.execute("RESET ROLE")
        await admin.execute(f"REVOKE ALL ON SCHEMA {s} FROM PUBLIC")
        await admin.execute(f"GRANT USAGE ON SCHEMA {s} TO {runtime}")
        await admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {runtime}"
        )
        await admin.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {runtime}")
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", key)
    log.info(
        "database roles provisioned",
        schema=schema,
        owner=roles.owner,
        runtime=roles.runtime,
        migrations_applied=len(applied),
    )
    return roles


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create the database `name` on `admin_dsn`'s server (a superuser's) unless it exists:
    the installer's first step (`make run`, the containers' init job)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"CREATE DATABASE {_ident_any(name)}")
    finally:
        await conn.close()


def _literal(text: str) -> str:
    # A SCRAM verifier holds base64 and "$:" only; refuse anything a quote could break.
    if "'" in text or "\\" in text:
        raise ValueError("unexpected quote in a password verifier")
    return f"'{text}'"


def _ident_any(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
