"""Fixtures for replicated-volume lab tests: a pair of hosts running `vigil volume`.

The lab is built here (not through `lab_factory`) so that teardown runs in
this order: unmount what the test mounted, `vigil volume down` on every host,
tear the lab down, and only then check the machine-global loop devices the
daemons attached: any that is still ours is detached (aborting a dead FUSE
connection if it must) and the test fails, so a leak never goes unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from vigil.lab import Lab, pair_topology
from vigil.lab.host import Host
from vigil.replication import loopdev
from vigil.testing import wait_until

VIGIL = [sys.executable, "-m", "vigil"]
RESOURCE = "r0"

TEMPLATE = """\
resource {name} {{
  protocol {protocol};
  net {{
    ping-int {ping_int}; ping-timeout 5; connect-int 1; timeout 20;
    cram-hmac-alg sha1; shared-secret "{secret}";
{net}
  }}
  disk {{
    c-plan-ahead 20; c-fill-target 16M; c-max-rate 400M; c-min-rate 4M;
{disk}
  }}
  handlers {{
{handlers}
  }}
  startup {{ {startup} }}
  on server5.example.com {{
    device /dev/drbd1; disk {backing}; address 198.51.100.5:7789; meta-disk internal;
  }}
  on server6.example.com {{
    device /dev/drbd1; disk {backing}; address 198.51.100.6:7789; meta-disk internal;
  }}
}}
"""


@dataclass
class VolumePair:
    lab: Lab
    name: str = RESOURCE
    backing: str = "/var/lib/vigil/r0.img"
    loops: list[loopdev.LoopIdentity] = field(default_factory=list)

    def host(self, name: str) -> Host:
        return self.lab.host(name)

    def vigil(self, host: str, *args: str, check: bool = True,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.host(host).run([*VIGIL, "volume", *args], check=check, timeout=timeout)

    def configure(self, host: str, protocol: str = "C", net: str = "", disk: str = "",
                  secret: str = "s3cret", handlers: str = "", startup: str = "",
                  text: str | None = None, ping_int: str = "1") -> None:
        """Write the resource file (the template, or `text` as given)."""
        if text is None:
            text = TEMPLATE.format(name=self.name, protocol=protocol, net=net, disk=disk,
                                   ping_int=ping_int,
                                   backing=self.backing, secret=secret, handlers=handlers,
                                   startup=startup)
        self.host(host).write_file(f"/etc/drbd.d/{self.name}.res", text)

    def create(self, host: str, size: str = "64M") -> None:
        self.host(host).run(["truncate", "-s", size, self.backing])
        self.vigil(host, "create-md", self.name)

    def up(self, host: str, *extra: str) -> None:
        self.vigil(host, "up", self.name, *extra)
        state = json.loads(self.host(host).read_file(f"/run/vigil/volume/{self.name}/state.json"))
        identity = loopdev.LoopIdentity(**state["loop"])
        if identity not in self.loops:
            self.loops.append(identity)

    def log_tail(self, host: str, lines: int = 40) -> str:
        """The end of the host's volume daemon log (for a failure's message)."""
        try:
            text = self.host(host).read_file(f"/var/log/vigil/volume-{self.name}.log")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def status(self, host: str) -> dict[str, Any]:
        return json.loads(self.vigil(host, "status", self.name, "--json").stdout)

    def wait_status(self, host: str, condition: Callable[[dict[str, Any]], bool],
                    timeout: float = 30, what: str = "") -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> bool:
            last.clear()
            last.update(self.status(host))
            return condition(last)

        keys = ("connection", "replication", "role", "disk", "peer_disk", "reason",
                "split_brain")
        wait_until(check, timeout, lambda: f"{host}: {what or 'status'} (last: "
                   + str({k: last.get(k) for k in keys}) + ")")
        return dict(last)

    def wait_synced(self, *hosts: str, timeout: float = 60) -> None:
        for host in hosts or ("server5", "server6"):
            self.vigil(host, "wait-sync", self.name, "--timeout", str(timeout),
                       timeout=timeout + 10)

    def data_digest(self, host: str, size: int) -> str:
        """sha256 of the data area of the host's backing file, read from outside."""
        digest = hashlib.sha256()
        with open(self.host(host).path(self.backing), "rb") as backing:
            left = size
            while left:
                chunk = backing.read(min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
        return digest.hexdigest()

    def write_blocks(self, host: str, blocks: list[int], tag: bytes) -> None:
        """Write distinct 4 KiB blocks through the device with O_DIRECT."""
        script = "; ".join(
            f"printf '%s' '{(tag + b'-%d-' % b).decode()}' | dd of=/dev/drbd1 bs=4096 "
            f"seek={b} conv=sync,notrunc oflag=direct status=none" for b in blocks)
        self.host(host).run(script, timeout=60)

    def read_block(self, host: str, block: int) -> bytes:
        """One 4 KiB block of the host's backing file, read from outside."""
        with open(self.host(host).path(self.backing), "rb") as backing:
            backing.seek(block * 4096)
            return backing.read(4096)

    def daemon_pid(self, host: str) -> int:
        state = json.loads(self.host(host).read_file(f"/run/vigil/volume/{self.name}/state.json"))
        return int(state["pid"])

    def start_pair(self, size: str = "64M", **options: str) -> None:
        """Both nodes configured and up, server5 primary, initial sync done."""
        for host in ("server5", "server6"):
            self.configure(host, **options)
            self.create(host, size)
            self.up(host)
        self.wait_status("server5", lambda s: s["connection"] == "Connected", 30, "connected")
        self.vigil("server5", "primary", "--force", self.name)
        self.wait_synced()


def _mounts_of_device(host: Host) -> list[str]:
    done = host.run(["cat", "/proc/self/mountinfo"], check=False)
    points = []
    for line in done.stdout.splitlines():
        _, _, right = line.partition(" - ")
        source = right.split()[1] if len(right.split()) > 1 else ""
        if source == "/dev/drbd1" or source.startswith("/dev/loop"):
            points.append(line.split()[4])
    return points


def _teardown_host(pair: VolumePair, host: Host) -> None:
    if not host.is_up():
        return
    for point in reversed(_mounts_of_device(host)):
        host.run(["umount", "-l", point], check=False)
    done = pair.vigil(host.name, "down", pair.name, check=False, timeout=60)
    if done.returncode != 0:
        try:  # the pid is inside the host's PID namespace: signal it from there
            pid = pair.daemon_pid(host.name)
            host.run(["kill", "-TERM", str(pid)], check=False)
            wait_until(lambda: host.run(["kill", "-0", str(pid)], check=False).returncode != 0,
                       15, "daemon exit")
        except Exception:
            pass
        pair.vigil(host.name, "down", pair.name, check=False, timeout=60)


@pytest.fixture
def volume_pair() -> Iterator[VolumePair]:
    if os.geteuid() != 0:
        pytest.skip("volume lab tests need root (namespaces, FUSE, loop devices)")
    lab = Lab(pair_topology())
    lab.up()
    pair = VolumePair(lab)
    try:
        yield pair
    finally:
        errors = []
        for host in lab.hosts.values():
            try:
                _teardown_host(pair, host)
            except Exception as exc:
                errors.append(f"{host.name}: {exc}")
        try:
            lab.down()
        except Exception as exc:
            errors.append(f"lab down: {exc}")
        leaked = []
        for identity in pair.loops:
            if loopdev.is_ours(identity):
                leaked.append(identity.name)
                loopdev.force_detach(identity)
        if leaked:
            errors.append(f"loop devices left attached (now detached): {leaked}")
        if errors:
            pytest.fail("volume teardown: " + "; ".join(errors))
