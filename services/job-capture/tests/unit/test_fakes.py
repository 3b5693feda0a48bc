"""The FakeStore the service-layer tests run on answers to the same calls as the Store."""

import inspect

from platen.job_capture.store import Store

from .fakes import FakeStore


def methods(cls) -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(fn).parameters)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_fake_store_has_the_stores_methods_and_parameters():
    fake = methods(FakeStore)
    assert fake.pop("put")  # test set-up only
    assert fake == methods(Store)
    for name in fake:
        assert inspect.iscoroutinefunction(getattr(FakeStore, name)), name
