"""cluster_backend etcd: a volume is promoted only where its group's lease is held. A small
HTTP server on loopback answers as etcd's JSON gateway does (tests/lab/cluster has etcd)."""

from __future__ import annotations

import base64
import json

import pytest

from vigil.cluster.witness import lease_refusal, volume_group
from vigil.config import haresources

from .test_etcd_gateway import FakeStore

GROUP = "IPaddr::198.51.100.100/24/eth0"
HARESOURCES = (f"server5.example.com {GROUP} drbddisk::mysqldata "
               "Filesystem::/dev/drbd1::/var/lib/mysql::ext4 mysqld\n"
               "server6.example.com 198.51.100.101 httpd\n")


def test_the_group_of_a_volume_is_the_one_whose_drbddisk_runs_it():
    parsed = haresources.parse(HARESOURCES)
    assert volume_group(parsed, "mysqldata") == GROUP
    assert volume_group(parsed, "other") is None
    bare = haresources.parse("server5.example.com 198.51.100.100 drbddisk\n")
    assert volume_group(bare, "anything") == "IPaddr::198.51.100.100"  # drbddisk: all


@pytest.fixture
def ha_dir(tmp_path):
    (tmp_path / "haresources").write_text(HARESOURCES)
    return tmp_path


def holding(name: str | None) -> FakeStore:
    kvs = [] if name is None else [{"key": "x", "value": base64.b64encode(
        name.encode()).decode()}]
    return FakeStore({"/v3/kv/range": lambda body: (200, json.dumps({"kvs": kvs}).encode())})


@pytest.mark.parametrize("holder, refused", [
    ("server5.example.com", None),
    ("server6.example.com", "held by server6.example.com, not by server5.example.com"),
    (None, "held by nobody"),
])
def test_only_the_lease_holder_may_promote(ha_dir, holder, refused):
    store = holding(holder)
    try:
        (ha_dir / "vigil.cf").write_text(f"cluster_backend etcd\netcd_endpoints "
                                         f"{store.endpoint}\netcd_prefix /web/\n")
        said = lease_refusal("mysqldata", "SERVER5.example.com", str(ha_dir))
        assert (said is None) if refused is None else (refused in said and "--force" in said)
        [(path, body)] = store.asked
        assert path == "/v3/kv/range"
        assert base64.b64decode(body["key"]).decode() == f"/web/groups/{GROUP}"
    finally:
        store.close()


def test_without_etcd_or_without_a_group_nothing_is_asked(ha_dir):
    assert lease_refusal("mysqldata", "server5.example.com", str(ha_dir)) is None  # no vigil.cf
    (ha_dir / "vigil.cf").write_text("stop_retries 3\n")
    assert lease_refusal("mysqldata", "server5.example.com", str(ha_dir)) is None
    (ha_dir / "vigil.cf").write_text("cluster_backend etcd\netcd_endpoints 127.0.0.1:9\n")
    assert lease_refusal("scratch", "server5.example.com", str(ha_dir)) is None  # in no group


def test_an_etcd_that_does_not_answer_refuses_the_promotion(ha_dir):
    (ha_dir / "vigil.cf").write_text("cluster_backend etcd\netcd_endpoints 127.0.0.1:9\n")
    said = lease_refusal("mysqldata", "server5.example.com", str(ha_dir))
    assert said is not None and "etcd does not say" in said and "--force" in said
    (ha_dir / "vigil.cf").write_text("cluster_backend etcd\n")  # no endpoints: a bad vigil.cf
    said = lease_refusal("mysqldata", "server5.example.com", str(ha_dir))
    assert said is not None and "vigil.cf cannot be read" in said
