"""pytest fixtures that build lab hosts and always tear them down.

Load with `pytest_plugins = ["vigil.testing.fixtures"]` in a conftest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from vigil.lab import Lab, Topology, pair_topology, seed_topology

LabFactory = Callable[[Topology], Lab]


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root: they create network and mount namespaces")


@pytest.fixture
def lab_factory() -> Iterator[LabFactory]:
    """Build labs from topologies; every lab built is torn down after the test."""
    _require_root()
    built: list[Lab] = []

    def build(topology: Topology) -> Lab:
        lab = Lab(topology)
        built.append(lab)
        return lab.up()

    yield build
    failures = []
    for lab in reversed(built):
        try:
            lab.down()
        except Exception as exc:  # report every lab, not only the first
            failures.append(f"{lab.run_id}: {exc}")
    if failures:
        pytest.fail("lab teardown failed: " + "; ".join(failures))


@pytest.fixture
def seed_lab(lab_factory: LabFactory) -> Lab:
    """The tutorial's hosts: server5, server6, rs1, rs2, client, gateway."""
    return lab_factory(seed_topology())


@pytest.fixture
def pair_lab(lab_factory: LabFactory) -> Lab:
    """The two directors with both links, a client and the ping node."""
    return lab_factory(pair_topology())
