"""The container stack's test runs first: it is the longest single test of `make test`
(the images' build, then a whole stack through its health checks), so it starts at once
on one worker and runs beside the rest instead of after them, as a tail on its own."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A stable sort: everything else keeps its order.
    items.sort(key=lambda item: not item.nodeid.startswith("tests/containers/"))
