"""The service's readiness follows its background loops (platen.messaging.service): no
server. Moved from the metrics tests when metrics went to platen.operations."""

import asyncio
import contextlib

from platen.messaging.service import Runtime, background, readiness_checks


async def test_a_background_loop_that_ends_makes_the_service_not_ready():
    """The outbox relay and retention loops end only when the service stops; one that
    ends otherwise is logged and `/health/ready` names it, so the service is restarted."""
    rt = Runtime(spec=None, settings=None)  # type: ignore[arg-type]
    checks = readiness_checks(rt)
    release = asyncio.Event()

    async def loop() -> None:
        await release.wait()
        raise RuntimeError("a bug")

    async def forever() -> None:
        await asyncio.Event().wait()

    relay = background(rt, loop(), "outbox-relay")
    other = background(rt, forever(), "retention")
    assert await checks["tasks"]() is None
    release.set()
    with contextlib.suppress(RuntimeError):
        await relay
    assert await checks["tasks"]() == "background task ended: outbox-relay"
    other.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await other
