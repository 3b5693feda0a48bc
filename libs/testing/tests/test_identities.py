"""The tests' broker identities, issued once per worker: a later vhost gets exactly the
rights the installer gives, and a system already running keeps its passwords."""

import uuid

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from platen.broker_setup import broker_limits
from platen.broker_setup.broker_admin import BrokerAdmin
from platen.broker_setup.installation import (
    IDENTITY_MANAGER,
    MONITOR_RIGHTS,
    PRESENCE_MONITOR,
    identity_rights,
)
from platen.messaging.topology import all_queues
from platen.testing.identities import Identities


async def _publish(url: str, key: str) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange("platen.events", ensure=False)
        await ex.publish(aio_pika.Message(b"{}"), routing_key=key)


async def _policies(admin: BrokerAdmin) -> dict[str, tuple]:
    found = (await admin.http.get(f"/api/policies/{admin.vhost}")).json()
    return {p["name"]: (p["pattern"], p["definition"], p["priority"], p["apply-to"]) for p in found}


async def test_a_later_vhost_gets_the_installers_rights_and_the_first_keeps_its_passwords(
    infra, vhosts
):
    identities = Identities(infra)
    prefix = f"test-ids-{uuid.uuid4().hex[:6]}-"
    installed_on, _ = vhosts.create()
    granted_on, _ = vhosts.create()
    rights = dict(identity_rights(prefix).values())
    rights[prefix + PRESENCE_MONITOR] = MONITOR_RIGHTS
    try:
        first = identities.for_vhost(installed_on, prefix)  # the installer's own path
        second = identities.for_vhost(granted_on, prefix)  # the users kept, rights granted
        assert second.management_url == first.management_url
        for vhost in (installed_on, granted_on):
            async with BrokerAdmin(identities._management_url(), vhost) as admin:
                snapshot = await admin.snapshot()
                wrong = [u for u, granted in rights.items() if not snapshot.has(u, granted)]
                assert wrong == [], f"rights on {vhost} not the installer's"
                policies = await _policies(admin)
            assert set(policies) == {p.name for p in broker_limits.POLICIES}
            for policy in broker_limits.POLICIES:
                assert policies[policy.name][:2] == (policy.pattern, policy.definition)
        conn = await aio_pika.connect(second.services["pricing"])
        async with conn:
            ch = await conn.channel()
            for name in all_queues():  # passive: fails if the topology is not there
                await ch.declare_queue(name, passive=True)
        # Each identity keeps to its part on the granted vhost too ...
        await _publish(second.services["pricing"], "job.priced")
        with pytest.raises(ChannelAccessRefused):
            await _publish(second.services["pricing"], "job.printed")
        # ... and issuing the second did not sign the first system's services out.
        await _publish(first.services["pricing"], "job.priced")
        assert first.services["pricing"] != second.services["pricing"]
    finally:
        vhosts.delete(installed_on)
        vhosts.delete(granted_on)
        async with BrokerAdmin(identities._management_url(), "/") as admin:
            for user in (*rights, prefix + IDENTITY_MANAGER):
                await admin.delete_user(user)
