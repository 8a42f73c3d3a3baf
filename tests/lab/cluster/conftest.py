"""The etcd cluster the etcd backend's lab tests run on (`vigil.testing.etcd_cluster`)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from vigil.testing.etcd_cluster import start_members
from vigil.testing.pacemaker_cluster import topology


@pytest.fixture
def etcd(lab_factory):
    """server5, server6 and server7, each an etcd member, all three answering."""
    if shutil.which("etcd") is None:
        pytest.skip("Debian's etcd-server is not installed")
    lab = lab_factory(topology())
    return SimpleNamespace(lab=lab, members=start_members(lab))
