"""The mixed setup under faults: Debian's heartbeat 3.0.6 beside vigil (a rolling upgrade).

The heartbeat setup's pair (the tutorial's `haresources.mysqld`: IPaddr + MariaDB,
each node its own datadir, the campaign's ha.cf) with one difference: the home
node, server5, still runs Debian's heartbeat 3.0.6, and server6, the node
upgraded first, runs vigil heartbeat. Both read the same ha.cf, haresources and
authkeys; heartbeat's ha.cf names Debian's ipfail (the tutorial's RHEL path
does not exist here) and a log file.

Heartbeat is several processes (the master and one reader and writer per
medium): its kill -9 and its SIGSTOP reach all of them, found by executable in
the node's PID namespace, as systemd's `KillMode=control-group` would.
"""

from __future__ import annotations

import contextlib
import os

from vigil.demo.heartbeat_scene import START_DEADLINE, poll
from vigil.lab import Lab
from vigil.torture.heartbeat_setup import HeartbeatSetup, SetupFailed, campaign_ha_cf

#: Debian's heartbeat 3.0.6 daemon.
HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
#: The node that still runs it: the home node of the tutorial's haresources.
HEARTBEAT_NODE = "server5"
#: Where the tutorial (RHEL, 64 bits) has ipfail, and where Debian has it.
IPFAIL_TUTORIAL = "/usr/lib64/heartbeat/ipfail"
IPFAIL_DEBIAN = "/usr/libexec/heartbeat/ipfail"
HA_LOG = "/var/log/ha-log"
#: heartbeat runs its resource scripts with this PATH (as its init script does)
HEARTBEAT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def heartbeat_ha_cf() -> str:
    """The campaign's ha.cf as heartbeat 3.0.6 on Debian reads it."""
    text = campaign_ha_cf().replace(IPFAIL_TUTORIAL, IPFAIL_DEBIAN)
    return f"logfile {HA_LOG}\n{text}"


class MixedSetup(HeartbeatSetup):
    """server5 on Debian's heartbeat 3.0.6, server6 on vigil heartbeat, one group."""

    name = "mixed"
    #: the nodes that run heartbeat 3.0.6 (the others run vigil heartbeat)
    heartbeat_nodes: frozenset[str] = frozenset({HEARTBEAT_NODE})

    def __init__(self, lab: Lab):
        super().__init__(lab)
        self.pair.timeline.note(f"{' and '.join(sorted(self.heartbeat_nodes))} run"
                                f"{'s' if len(self.heartbeat_nodes) == 1 else ''} "
                                "Debian's heartbeat 3.0.6")

    def configure(self) -> None:
        super().configure()
        for node in self.heartbeat_nodes:
            self.lab.host(node).write_file("/etc/ha.d/ha.cf", heartbeat_ha_cf())
        for node in ("server5", "server6"):
            self.broadcast_addresses(node)

    def broadcast_addresses(self, node: str) -> None:
        """heartbeat's bcast sends to the interface's broadcast address: give it one."""
        host = self.lab.host(node)
        for ifname, segment in (("eth0", "lan"), ("eth1", "hb")):
            cidr = f"{host.address(segment)}/24"
            host.run(f"ip addr del {cidr} dev {ifname} && ip addr add {cidr} brd + dev {ifname}")

    def after_boot(self, node: str) -> None:
        self.broadcast_addresses(node)
        self._start_daemon(node)

    def _start_daemon(self, node: str) -> None:
        if node not in self.heartbeat_nodes:
            super()._start_daemon(node)
            return
        host = self.lab.host(node)
        # heartbeat daemonizes: its first process exits at once (a spawned process that
        # short-lived can end before its launcher is seen to have started it)
        host.run(f"{HEARTBEAT} </dev/null >/dev/null 2>&1", env=HEARTBEAT_ENV, check=False)
        if not poll(lambda: host.run(["cl_status", "hbstatus"], check=False).returncode == 0,
                    START_DEADLINE, every=0.2):
            raise SetupFailed(f"heartbeat 3.0.6 did not start on {node}: "
                              f"{self.ha_log(node)[-400:]!r}")

    def ha_log(self, node: str) -> str:
        return self.lab.host(node).run(["tail", "-60", HA_LOG], check=False).stdout

    def heartbeat_pids(self, node: str) -> list[int]:
        """heartbeat's processes in the node (by executable; PIDs as the machine has them)."""
        found = []
        for pid in self.lab.host(node).pids():
            with contextlib.suppress(OSError):
                if os.path.realpath(f"/proc/{pid}/exe") == HEARTBEAT:
                    found.append(pid)
        return found

    def signal_daemon(self, node: str, signum: int) -> None:
        if node not in self.heartbeat_nodes:
            super().signal_daemon(node, signum)
            return
        for pid in self.heartbeat_pids(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def daemon_alive(self, node: str) -> bool:
        if node not in self.heartbeat_nodes:
            return super().daemon_alive(node)
        return bool(self.heartbeat_pids(node)) if self.lab.host(node).is_up() else False


class Heartbeat306Setup(MixedSetup):
    """Both nodes on Debian's heartbeat 3.0.6: the peer vigil is measured against.

    Its faults are the heartbeat setup's sequence restricted to the mixed setup's
    kinds, so `vigil torture --setup heartbeat --kinds power-off,kill-daemon,
    cut-medium,partition,stall,flap --seed S` gives vigil the same faults."""

    name = "heartbeat306"
    heartbeat_nodes = frozenset({"server5", "server6"})
