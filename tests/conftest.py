"""Suite-wide order: the unit and packaging tests first, with the QEMU guest runs started
beside them; every lab test waits until those guest runs have ended; the long lab tests
first among the lab tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigil.testing.early import GUEST_RUNS
from vigil.testing.guest import guest_unavailable_reason

pytest_plugins = ["vigil.testing.fixtures"]


def _needs_lab(item: pytest.Item) -> bool:
    return item.get_closest_marker("lab") is not None or \
        item.get_closest_marker("guest") is not None


def _order(item: pytest.Item) -> tuple[bool, bool]:
    """The unit and packaging tests first; then the lab tests, the long ones first, so that
    the lab tests spread over several processes (scripts/test) do not end on a long one."""
    lab = _needs_lab(item)
    return lab, not (lab and item.get_closest_marker("slow") is not None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    items.sort(key=_order)  # stable: each group keeps its order
    if config.option.collectonly or guest_unavailable_reason() is not None:
        return
    for item in items:
        module = getattr(item, "module", None)
        run_guest = getattr(module, "run_guest", None)
        if item.get_closest_marker("guest") is not None and callable(run_guest):
            GUEST_RUNS.start(module.__name__, run_guest)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # outside the per-test timeout: the wait is for the guests, not for this test
    if item.get_closest_marker("lab") is not None:
        GUEST_RUNS.wait()
    yield
