"""`vigil volume wait-connect` at boot: which startup timeout the metadata calls for.

A primary loses its peer (a degraded cluster), keeps running alone, and then
loses power too. When it boots alone, its wait for the peer is
`degr-wfc-timeout`, not the endless `wfc-timeout 0`: it gives up after those
seconds with drbdsetup's exit code 5. With `fencing resource-only` and a
fence-peer handler that outdates the peer, the wait is `outdated-wfc-timeout`.
The peer, which went down connected, waits the plain `wfc-timeout` and
connects.
"""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

STARTUP = "wfc-timeout 0; degr-wfc-timeout 3; outdated-wfc-timeout 2;"


@pytest.mark.parametrize("fenced", [False, True], ids=["degraded", "peer-outdated"])
def test_a_primary_that_lost_its_peer_waits_only_its_special_timeout_at_boot(volume_pair,
                                                                           fenced):
    pair = volume_pair
    options = {"startup": STARTUP}
    if fenced:
        for host in ("server5", "server6"):
            pair.host(host).write_file("/etc/vigil-test/fence-peer", "#!/bin/sh\nexit 7\n",
                                       mode=0o755)
        options |= {"disk": "fencing resource-only;",
                    "handlers": "fence-peer /etc/vigil-test/fence-peer;"}
    pair.start_pair(**options)
    for host in ("server5", "server6"):
        assert pair.status(host)["wait_kind"] == "wfc-timeout"

    pair.lab.crash("server6")
    pair.wait_status("server5", lambda s: s["connection"] != "Connected"
                     and (s["peer_disk"] == "Outdated" or not fenced), 20, "peer loss noticed")
    pair.lab.crash("server5")

    pair.lab.boot("server5")
    pair.up("server5")
    kind = "outdated-wfc-timeout" if fenced else "degr-wfc-timeout"
    limit = 2 if fenced else 3
    assert pair.status("server5")["wait_kind"] == kind
    began = time.monotonic()
    done = pair.vigil("server5", "wait-connect", "all", check=False, timeout=30)
    waited = time.monotonic() - began
    assert done.returncode == 5, done
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{pair.name}: waiting for the peer to connect, up to "
                               f"{limit} s ({kind}): ")
    assert lines[-1] == f"{pair.name}: no connection after {limit} s ({kind}); going on " \
        "without the peer"
    assert limit <= waited < limit + 10

    # The peer went down connected, as a secondary: the plain wfc-timeout (0: forever) and
    # it connects at once, server5 being up.
    pair.lab.boot("server6")
    pair.up("server6")
    assert pair.status("server6")["wait_kind"] == "wfc-timeout"
    done = pair.vigil("server6", "wait-connect", pair.name, check=False, timeout=60)
    assert done.returncode == 0, done
    assert "forever (wfc-timeout)" in done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[-1].startswith(f"{pair.name}: connected after ")
    # Connected again: a later wait (not a boot) is the plain one.
    assert pair.status("server5")["wait_kind"] == "wfc-timeout"
