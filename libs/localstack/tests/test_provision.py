"""The services' database roles, provisioned as an installer does (`python -m <service>
migrate` for each), against a real PostgreSQL: passwords made now, or kept by the
installer so that running again changes nothing a running service holds."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from platen.localstack.services import MODULES, provision

pytestmark = pytest.mark.integration


async def _signs_in(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidPasswordError:
        return False
    await conn.close()
    return True


async def test_provisioning_again_with_kept_passwords_changes_no_service_password(database_url):
    kept: dict[str, str] = {}

    def keeper(service: str) -> str:
        return kept.setdefault(service, f"kept-{uuid.uuid4().hex}")

    first = await asyncio.to_thread(provision, database_url, passwords=keeper)
    assert set(kept) == set(first) == set(MODULES)
    assert all(kept[name] in url for name, url in first.items())
    # As the compose stack's init at a second `up`, with the services still running.
    again = await asyncio.to_thread(provision, database_url, passwords=keeper)
    assert again == first
    assert all([await _signs_in(url) for url in first.values()])
    # Without a keeper every password is new, and the old ones are refused.
    renewed = await asyncio.to_thread(provision, database_url)
    assert all(renewed[name] != first[name] for name in MODULES)
    assert all([await _signs_in(url) for url in renewed.values()])
    assert not any([await _signs_in(url) for url in first.values()])
