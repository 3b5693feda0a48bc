"""The migrated template every whole-system test copies (platen.testing.system_template):
a copy is migrated, each service signs in to it as its own role, and only those roles
(and superusers) may connect to it, as `platen.db.roles.provision` leaves a database."""

from __future__ import annotations

import asyncpg

from platen.testing.isolation import drop_database

SCHEMAS = {
    "job-capture": "job_capture",
    "pricing": "pricing",
    "account-ledger": "ledger",
    "notification": "notification",
}


async def test_a_copy_is_migrated_and_only_its_services_roles_may_connect(infra, system_template):
    name, url, services = await system_template.copy()
    other, _, _ = await system_template.copy()
    try:
        assert sorted(services) == sorted(SCHEMAS)
        for service, service_url in services.items():
            conn = await asyncpg.connect(service_url)
            try:
                assert await conn.fetchval("SELECT current_database()") == name
                applied = await conn.fetchval(
                    f"SELECT count(*) FROM {SCHEMAS[service]}.schema_migrations"
                )
                assert applied > 0
                assert not await conn.fetchval(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                )
            finally:
                await conn.close()
        admin = await asyncpg.connect(url)
        try:
            acl = await admin.fetchval(
                "SELECT datacl::text[] FROM pg_database WHERE datname = $1", name
            )
            # PUBLIC's entry is the one with no grantee before '=': CREATE DATABASE gives
            # PUBLIC CONNECT, which the copy must not keep.
            assert not [entry for entry in acl if entry.startswith("=")]
            logins = {entry.split("=", 1)[0] for entry in acl}
            assert {s.split("//", 1)[1].split(":", 1)[0] for s in services.values()} <= logins
            # Each copy is its own: a row written in one is not in the other.
            await admin.execute("CREATE TABLE public.marker (x int)")
        finally:
            await admin.close()
        twin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/" + other)
        try:
            assert await twin.fetchval("SELECT to_regclass('public.marker')") is None
        finally:
            await twin.close()
    finally:
        await drop_database(infra.database_url, name)
        await drop_database(infra.database_url, other)
