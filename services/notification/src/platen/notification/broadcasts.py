"""Administrator broadcasts: one message to every known desktop, or to a few."""

from __future__ import annotations

from platen.events.desktop import Broadcast, BroadcastNotice, BroadcastSent
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.notification.sending import send
from platen.notification.subscriptions import subscribe


@subscribe.command(Broadcast, senders=ADMIN)
async def on_broadcast(ctx: HandlerContext, cmd: Broadcast) -> BroadcastSent:
    if cmd.users:
        audience = sorted(set(cmd.users))
    else:
        # Every user the ledger announced (identities keeps them), but the disabled.
        audience = await ctx.store.enabled_logins()
    notice = BroadcastNotice(text=cmd.text, sender=cmd.sender)
    ttl = cmd.expires_in_minutes * 60_000 if cmd.expires_in_minutes else None
    for login in audience:
        await send(ctx, login, notice, expiration_ms=ttl)
    ctx.log.info("broadcast queued", desktops=len(audience), sender=cmd.sender)
    return BroadcastSent(desktops=len(audience))
