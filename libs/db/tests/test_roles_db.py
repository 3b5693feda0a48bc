"""Each service's own PostgreSQL roles, against a real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from platen.db import Migration, apply_migrations, create_pool
from platen.db.migrations import MigrationsPending
from platen.db.roles import provision, roles_for, with_login

ALPHA = [
    Migration("alpha", 1, "things", "CREATE TABLE things (id serial PRIMARY KEY, name text);"),
    Migration(
        "alpha",
        2,
        "guard",
        """CREATE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'no delete'; END $$;
           CREATE TRIGGER things_kept BEFORE DELETE ON things
               FOR EACH ROW EXECUTE FUNCTION no_delete();""",
    ),
]
BETA = [
    Migration(
        "beta", 1, "secrets", "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('x');"
    )
]


async def provisioned(database_url: str, schema: str, migrations, password: str) -> str:
    admin = await asyncpg.connect(database_url)
    try:
        roles = await provision(admin, schema, migrations, password)
    finally:
        await admin.close()
    return with_login(database_url, roles.runtime, password)


async def test_the_service_role_has_its_rows_and_nothing_more(database_url):
    alpha = await provisioned(database_url, "alpha", ALPHA, "pw-alpha")
    await provisioned(database_url, "beta", BETA, "pw-beta")
    conn = await asyncpg.connect(alpha, server_settings={"search_path": "alpha"})
    try:
        await conn.execute("INSERT INTO things (name) VALUES ('a')")
        await conn.execute("UPDATE things SET name = 'b'")
        assert await conn.fetchval("SELECT name FROM things") == "b"
        me = await conn.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        assert not any(me.values())
        for statement in (
            "SELECT * FROM beta.secrets",  # another service's schema
            "ALTER TABLE things DISABLE TRIGGER things_kept",
            "DROP TRIGGER things_kept ON things",
            "ALTER TABLE things ADD COLUMN x int",
            "CREATE TABLE mine (id int)",
            "CREATE SCHEMA mine",
            "CREATE TEMP TABLE things (id int)",
            "SET session_replication_role = replica",
            "TRUNCATE things",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        with pytest.raises(asyncpg.RaiseError, match="no delete"):
            await conn.execute("DELETE FROM things")
    finally:
        await conn.close()


async def test_the_owner_cannot_sign_in(database_url):
    await provisioned(database_url, "alpha", ALPHA, "pw")
    database = database_url.rsplit("/", 1)[1]
    owner = roles_for(database, "alpha").owner
    admin = await asyncpg.connect(database_url)
    try:
        assert not await admin.fetchval(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", owner
        )
        assert (
            await admin.fetchval(
                "SELECT tableowner FROM pg_tables "
                "WHERE schemaname = 'alpha' AND tablename = 'things'"
            )
            == owner
        )
    finally:
        await admin.close()


async def test_provisioning_again_applies_what_is_new_and_replaces_the_password(database_url):
    old = await provisioned(database_url, "alpha", ALPHA[:1], "first")
    new = await provisioned(database_url, "alpha", ALPHA, "second")
    conn = await asyncpg.connect(new)
    try:
        assert await conn.fetchval("SELECT count(*) FROM alpha.schema_migrations") == 2
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(old)


async def test_a_service_role_starts_on_a_migrated_schema_and_cannot_migrate(database_url):
    url = await provisioned(database_url, "alpha", ALPHA[:1], "pw")
    pool = await create_pool(url, "alpha")
    try:
        async with pool.acquire() as conn:
            # What the service does at start-up: nothing left to do, so no right needed.
            assert await apply_migrations(conn, "alpha", ALPHA[:1]) == []
            with pytest.raises(MigrationsPending, match="schema's owner"):
                await apply_migrations(conn, "alpha", ALPHA)
    finally:
        await pool.close()


async def test_a_schema_made_before_roles_passes_to_its_owner(database_url):
    admin = await asyncpg.connect(database_url)
    try:
        await apply_migrations(admin, "alpha", ALPHA)  # as a superuser, as before roles
    finally:
        await admin.close()
    url = await provisioned(database_url, "alpha", ALPHA, "pw")
    conn = await asyncpg.connect(url, server_settings={"search_path": "alpha"})
    try:
        await conn.execute("INSERT INTO things (name) VALUES ('a')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE things DISABLE TRIGGER things_kept")
    finally:
        await conn.close()


def test_role_names_fit_postgresql_and_name_their_database():
    roles = roles_for("test_0123456789ab", "job_capture")
    assert roles.runtime == "test_0123456789ab_job_capture"
    assert roles.owner == "test_0123456789ab_job_capture_owner"
    long = roles_for("d" * 80, "notification")
    assert (
        len(long.owner.encode()) <= 63 and long.owner != roles_for("d" * 81, "notification").owner
    )
