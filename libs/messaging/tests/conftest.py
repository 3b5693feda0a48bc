import pytest

from platen.db import apply_migrations, create_pool, load_migrations
from platen.events.discovery import signed_in_as
from platen.messaging.publisher import Publisher
from platen.messaging.service import MESSAGING_MIGRATIONS


@pytest.fixture
async def pool(database_url):
    pool = await create_pool(database_url, "svc")
    async with pool.acquire() as conn:
        await apply_migrations(conn, "svc", load_migrations("messaging", MESSAGING_MIGRATIONS))
        await conn.execute("CREATE TABLE svc.applied (message_id text, note text)")
    yield pool
    await pool.close()


@pytest.fixture
async def publisher(amqp_url, channel):
    pub = Publisher(amqp_url, "test")
    await pub.connect()
    yield pub
    await pub.close()


@pytest.fixture
def me(amqp_url) -> str:
    """The broker user these tests sign in as (the broker checks a `user_id` against it)."""
    return signed_in_as(amqp_url)
