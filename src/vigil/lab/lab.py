"""A lab: several hosts on one machine, joined by switches, built from a topology.

Switches are Linux bridges in the lab's own network namespace (`<run>-sw`);
each host port is a veth pair with one end in the host (`eth0`, `eth1`) and
the other on the bridge. Nothing is created in the machine's root network
namespace. Every name carries the run id, so labs never clash, and the lab's
state file lets `vigil lab down --all` remove what an earlier run left.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from vigil.errors import EnvironmentProblem, UsageError
from vigil.kernel import namespaces
from vigil.kernel.netlink import create_named_netns, delete_named_netns, iproute
from vigil.kernel.nftables import Nftables
from vigil.lab import delay
from vigil.lab.host import (
    PRIVATE_DIRECTORIES,
    RUN_DIRECTORIES,
    Host,
    LabError,
    LabProcess,
    children_of,
    is_zombie,
    launch_logged,
)
from vigil.lab.topology import HostSpec, Port, Topology
from vigil.replication.loopdev import abort_fuse

#: Where labs keep their state; not under /etc or /var, which hosts overlay.
DEFAULT_ROOT = Path(os.environ.get("VIGIL_LAB_ROOT", "/tmp/vigil-lab"))
STATE_FILE = "state.json"
#: The switch namespace's nftables table that implements partitions.
PARTITION_TABLE = "vigil_lab"
#: The switch namespace's nftables table that drops a share of a host's frames (`lossy`).
LOSS_TABLE = "vigil_lab_loss"
#: A boot takes ~0.05 s; the margin is for a machine saturated by other work (an overlay
#: mount was seen to wait more than 30 s behind a package installation's disk flushes).
BOOT_TIMEOUT = 120.0
#: A host's processes still alive this long after SIGKILL are stuck in the kernel:
#: its FUSE connections are aborted (see `_power_off`).
FUSE_ABORT_AFTER = 0.5
REQUIRED_PROGRAMS = ("nsenter", "unshare", "nft", "sysctl")


def new_run_id(prefix: str | None = None) -> str:
    prefix = prefix or os.environ.get("VIGIL_LAB_PREFIX", "vl")
    return f"{prefix}{secrets.token_hex(3)}"


def topology_to_json(topology: Topology) -> dict[str, Any]:
    return asdict(topology)


def topology_from_json(data: dict[str, Any]) -> Topology:
    hosts = tuple(
        HostSpec(
            name=h["name"],
            hostname=h["hostname"],
            role=h.get("role", ""),
            ports=tuple(
                Port(
                    segment=p["segment"],
                    ifname=p["ifname"],
                    addresses=tuple(p["addresses"]),
                    mac=p["mac"],
                )
                for p in h["ports"]
            ),
        )
        for h in data["hosts"]
    )
    return Topology(
        name=data["name"],
        segments=tuple(data["segments"]),
        hosts=hosts,
        addresses=dict(data.get("addresses", {})),
        description=data.get("description", ""),
    )


def _check_environment() -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem("vigil lab needs root (network and mount namespaces)")
    if not Path("/proc/self/ns/net").exists():
        raise EnvironmentProblem("this kernel has no network namespaces")
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if missing:
        raise EnvironmentProblem(
            f"vigil lab needs {', '.join(missing)} (packages util-linux, nftables, procps)"
        )


@dataclass
class Plug:
    """A powered-off host's remains to wait for: its mount namespace (by inode, held open
    by `mnt_fd` until the wait ends), its FUSE connections, and when its init was killed
    (clock ticks since boot)."""

    mnt_inode: int | None
    fuse: list[int]
    pulled_at: int
    #: A freed namespace's inode number goes to the next one made (another lab's host
    #: booting meanwhile): holding the namespace open keeps the number ours.
    mnt_fd: int | None = None

    def older_in_mount_namespace(self) -> list[int]:
        """Processes in the host's mount namespace that started before its init was killed."""
        if self.mnt_inode is None:
            return []
        return [pid for pid in namespaces.pids_in_namespace("mnt", self.mnt_inode)
                if (started := namespaces.process_start_time(pid)) is not None
                and started <= self.pulled_at]

    def release(self) -> None:
        """Let the namespace go (once nothing of the host runs in it); once only."""
        fd, self.mnt_fd = self.mnt_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class Lab:
    """Build, operate and tear down a topology of hosts. Use it as a context manager."""

    def __init__(
        self,
        topology: Topology,
        run_id: str | None = None,
        root: Path | None = None,
        detached: bool = False,
    ):
        self.topology = topology
        self.run_id = run_id or new_run_id()
        self.root = root or DEFAULT_ROOT
        self.directory = self.root / self.run_id
        self.switch_netns = f"{self.run_id}-sw"
        self.hosts: dict[str, Host] = {spec.name: Host(self, spec) for spec in topology.hosts}
        self.processes: list[LabProcess] = []
        self.cut_pairs: set[tuple[str, str]] = set()
        #: ports taken off their bridges by `delayed`
        self.detours: list[delay.Detour] = []
        #: A detached lab outlives the process that built it (`vigil lab up`).
        self.detached = detached
        self._owner = (os.getpid(), namespaces.process_start_time(os.getpid()))
        self._cleanup_registered = False
        self._previous_handlers: dict[int, Any] = {}
        self.keep_files = os.environ.get("VIGIL_LAB_KEEP") == "1"
        #: Our own holder processes, kept so that their exit status is collected.
        self._holders: dict[str, subprocess.Popen[bytes]] = {}
        #: Hosts boot from threads of their own; each saves the state, one at a time.
        self._save_lock = threading.RLock()

    # -- lookup ----------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        """A host by short name (`server5`) or hostname (`server5.example.com`)."""
        for host in self.hosts.values():
            if name in (host.name, host.hostname):
                return host
        known = ", ".join(self.hosts)
        raise UsageError(f"no host {name!r} in lab {self.run_id} (hosts: {known})")

    def __getitem__(self, name: str) -> Host:
        return self.host(name)

    def address(self, name: str) -> str:
        """A named address of the topology (`vip`, `ping`)."""
        try:
            return self.topology.addresses[name]
        except KeyError:
            raise UsageError(f"topology {self.topology.name} names no address {name!r}") from None

    # -- state file ------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def save(self) -> None:
        """Write the state file whole: a snapshot under a lock, through a temporary name
        of this writer's own, so that threads and processes saving at once never share one."""
        with self._save_lock:
            self._save_locked()

    def _save_locked(self) -> None:
        state = {
            "run_id": self.run_id,
            "created": time.time(),
            "detached": self.detached,
            "owner_pid": None if self.detached else self._owner[0],
            "owner_start": None if self.detached else self._owner[1],
            "switch_netns": self.switch_netns,
            "topology": topology_to_json(self.topology),
            "hosts": {name: host.to_json() for name, host in self.hosts.items()},
            "processes": [p.to_json() for p in self.processes],
            "cut_pairs": sorted(self.cut_pairs),
            "detours": [d.to_json() for d in self.detours],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_name(
            f"{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        )
        try:
            temporary.write_text(json.dumps(state, indent=1))
            temporary.replace(self.state_path)
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def load(cls, run_id: str, root: Path | None = None) -> Lab:
        root = root or DEFAULT_ROOT
        path = root / run_id / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"no lab {run_id!r} (no {path})") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"lab state {path} is unreadable: {exc}") from None
        lab = cls(topology_from_json(state["topology"]), run_id=run_id, root=root)
        lab.detached = state.get("detached", False)
        lab._owner = (state.get("owner_pid"), state.get("owner_start"))  # type: ignore[assignment]
        for name, data in state.get("hosts", {}).items():
            if name in lab.hosts:
                lab.hosts[name].restore(data)
        lab.processes = [LabProcess.from_json(p) for p in state.get("processes", [])]
        lab.cut_pairs = {tuple(pair) for pair in state.get("cut_pairs", [])}  # type: ignore[misc]
        lab.detours = [delay.Detour.from_json(d) for d in state.get("detours", [])]
        return lab

    def owner_alive(self) -> bool:
        """Whether the process that built this (non-detached) lab still runs."""
        pid, start = self._owner
        if self.detached or pid is None:
            return False
        return namespaces.process_start_time(pid) == start

    # -- building ----------------------------------------------------------------------------
    def up(self) -> Lab:
        """Build the switches and boot every host. On failure nothing is left behind."""
        _check_environment()
        if self.directory.exists():
            raise UsageError(f"lab {self.run_id} already exists ({self.directory})")
        for name in [self.switch_netns, *(h.netns for h in self.hosts.values())]:
            if namespaces.named_netns_path(name).exists():
                raise UsageError(f"network namespace {name} already exists")
        self.directory.mkdir(parents=True)
        self.save()
        if not self.detached:
            self._register_cleanup()
        try:
            self._build_switches()
            for host in self.hosts.values():
                self._boot(host)
            self.save()
        except BaseException:
            self.down()
            raise
        return self

    def _build_switches(self) -> None:
        switch_path = create_named_netns(self.switch_netns)
        # Bridged frames must not enter the IP hooks (br_netfilter may be built in).
        subprocess.run(
            ["nsenter", f"--net={switch_path}", "sysctl", "-q", "-w",
             "net.bridge.bridge-nf-call-iptables=0",
             "net.bridge.bridge-nf-call-ip6tables=0",
             "net.bridge.bridge-nf-call-arptables=0"],
            capture_output=True,
            check=False,
        )
        with iproute(switch_path) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            for segment in self.topology.segments:
                ipr.link(
                    "add",
                    ifname=self._bridge_name(segment),
                    kind="bridge",
                    br_stp_state=0,
                    br_forward_delay=0,
                    br_mcast_snooping=0,
                )
                ipr.link("set", index=ipr.link_lookup(ifname=self._bridge_name(segment))[0],
                         state="up")
        Nftables(switch_path).apply(
            [
                {"add": {"table": {"family": "bridge", "name": PARTITION_TABLE}}},
                {"add": {"set": {"family": "bridge", "table": PARTITION_TABLE, "name": "cut",
                                 "type": ["ifname", "ifname"]}}},
                {"add": {"chain": {"family": "bridge", "table": PARTITION_TABLE,
                                   "name": "forward", "type": "filter", "hook": "forward",
                                   "prio": 0, "policy": "accept"}}},
                {"add": {"rule": {"family": "bridge", "table": PARTITION_TABLE,
                                  "chain": "forward", "expr": [
                                      {"match": {"op": "==", "left": {"concat": [
                                          {"meta": {"key": "iifname"}},
                                          {"meta": {"key": "oifname"}}]},
                                          "right": "@cut"}},
                                      {"counter": None},
                                      {"drop": None}]}}},
            ]
        )

    @property
    def _switch_path(self) -> Path:
        return namespaces.named_netns_path(self.switch_netns)

    @staticmethod
    def _bridge_name(segment: str) -> str:
        return f"br-{segment}"[:15]

    def _port_name(self, host: Host, segment: str) -> str:
        """The switch-side end of a host's port: readable, and at most 15 characters."""
        index = list(self.hosts).index(host.name)
        name = f"{host.name}-{segment}"
        if len(name) > 15:
            name = f"h{index}-{segment}"[:15]
        return name

    def _boot(self, host: Host) -> None:
        """Power a host on: network namespace, ports, then its mount/UTS namespaces."""
        create_named_netns(host.netns)
        with iproute(self._switch_path) as switch, iproute(host.netns_path) as inside:
            inside.link("set", index=inside.link_lookup(ifname="lo")[0], state="up")
            for port in host.spec.ports:
                outside_name = self._port_name(host, port.segment)
                switch.link(
                    "add",
                    ifname=outside_name,
                    kind="veth",
                    peer={"ifname": port.ifname, "net_ns_fd": str(host.netns_path),
                          "address": port.mac},
                )
                outside = switch.link_lookup(ifname=outside_name)[0]
                bridge = switch.link_lookup(ifname=self._bridge_name(port.segment))[0]
                switch.link("set", index=outside, master=bridge)
                switch.link("set", index=outside, state="up")
                index = inside.link_lookup(ifname=port.ifname)[0]
                for cidr in port.addresses:
                    address, prefix = cidr.split("/")
                    extra = {"flags": 0x02} if ":" in address else {}  # IFA_F_NODAD
                    inside.addr("add", index=index, address=address, prefixlen=int(prefix),
                                **extra)
                inside.link("set", index=index, state="up")
        self._start_holder(host)

    def _start_holder(self, host: Host) -> None:
        """Start the host's init: new mount, UTS and PID namespaces, set up, then reap."""
        upper = host.directory / "upper"
        work = host.directory / "work"
        # `volatile`: the host's syncs stay in the machine's page cache, which a host
        # crash does not lose; unmounting a host then never waits on the disk.
        for layer in ("etc", "var"):
            (upper / layer).mkdir(parents=True, exist_ok=True)
            # A volatile overlay refuses a work directory left by its last life.
            shutil.rmtree(work / layer, ignore_errors=True)
            (work / layer).mkdir(parents=True)
        (upper / "etc" / "hostname").write_text(host.hostname + "\n")
        (upper / "etc" / "hosts").write_text(self._hosts_file())
        source = f"vigil-lab-{self.run_id}"
        script = "\n".join(
            [
                "set -ex",  # the boot log shows how far a boot got
                f"hostname {host.hostname}",
                *(
                    f"mount -t overlay {source} -o lowerdir=/{layer},upperdir={upper / layer},"
                    f"workdir={work / layer},volatile /{layer}"
                    for layer in ("etc", "var")
                ),
                f"mount -t tmpfs -o mode=0755 {source} /run",
                "mount -t sysfs sysfs /sys",
                "mkdir -p " + " ".join(f"/run/{d}" for d in RUN_DIRECTORIES),
                "mkdir -p " + " ".join(PRIVATE_DIRECTORIES),
                "for u in mysql:/run/mysqld hacluster:/run/heartbeat/ccm; do"
                "  n=${u%%:*}; d=${u#*:}; mkdir -p $d;"
                "  if id $n >/dev/null 2>&1; then chown $n $d; fi; done",
                f"exec {shlex.quote(_python())} -c {shlex.quote(INIT_PROGRAM)}",
            ]
        )
        log_path = self.directory / "logs" / f"{host.name}.boot.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            holder = subprocess.Popen(
                ["nsenter", f"--net={host.netns_path}", "unshare", "--mount", "--uts",
                 "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc",
                 "--propagation", "private", "--", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert holder.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(holder.stdout, selectors.EVENT_READ)
        said = holder.stdout.readline().strip() if selector.select(BOOT_TIMEOUT) else b""
        ready = said == b"ready"
        selector.close()
        holder.stdout.close()
        init = next(iter(children_of(holder.pid)), None) if ready else None
        if init is None:
            stuck = "" if ready or said else _where_stuck(holder.pid)
            holder.kill()
            code = holder.wait()
            lines = log_path.read_text(errors="replace").strip().splitlines()
            last = lines[-1] if lines else "nothing logged"
            why = (f"its boot ended (exit {code}, said {said[:80]!r})" if ready or said
                   or code != -9 else f"did not boot within {BOOT_TIMEOUT:g} s")
            raise LabError(f"host {host.name}: {why} (last step: {last}){stuck}")
        host.holder_pid = init
        host.holder_start = namespaces.process_start_time(init)
        self._holders[host.name] = holder

    def _hosts_file(self) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for spec in self.topology.hosts:
            for cidr in spec.ports[0].addresses[:1]:
                lines.append(f"{cidr.split('/')[0]}\t{spec.hostname} {spec.name}")
        return "\n".join(lines) + "\n"

    # -- processes ---------------------------------------------------------------------------
    def track(self, process: LabProcess) -> None:
        self.processes.append(process)
        self.save()

    # -- faults --------------------------------------------------------------------------------
    def _set_ports(self, host: Host, segment: str | None, state: str) -> None:
        ports = self._ports_of(host, segment)
        with iproute(self._switch_path) as switch:
            for port in ports:
                found = switch.link_lookup(ifname=port)
                if found:
                    switch.link("set", index=found[0], state=state)

    def _ports_of(self, host: Host, segment: str | None) -> list[str]:
        """The names of a host's switch ports: on one segment, or all of them."""
        ports = [self._port_name(host, p.segment) for p in host.spec.ports
                 if segment is None or p.segment == segment]
        if not ports:
            raise UsageError(f"host {host.name} has no port on segment {segment}")
        return ports

    def link_down(self, host: str, segment: str | None = None) -> None:
        """Pull a host's cable(s) at the switch: one segment, or all of them."""
        self._set_ports(self.host(host), segment, "down")

    def link_up(self, host: str, segment: str | None = None) -> None:
        self._set_ports(self.host(host), segment, "up")

    def _pair_ports(self, a: str, b: str) -> list[tuple[str, str]]:
        first, second = self.host(a), self.host(b)
        shared = {p.segment for p in first.spec.ports} & {p.segment for p in second.spec.ports}
        pairs = []
        for segment in sorted(shared):
            x, y = self._port_name(first, segment), self._port_name(second, segment)
            pairs += [(x, y), (y, x)]
        return pairs

    def _cut(self, verb: str, pairs: list[tuple[str, str]]) -> None:
        if not pairs:
            return
        Nftables(self._switch_path).apply(
            [{verb: {"element": {"family": "bridge", "table": PARTITION_TABLE, "name": "cut",
                                 "elem": [{"concat": list(pair)} for pair in pairs]}}}]
        )

    def partition(self, a: str, b: str) -> None:
        """Drop every frame between two hosts, on every segment they share."""
        pairs = [p for p in self._pair_ports(a, b) if p not in self.cut_pairs]
        self._cut("add", pairs)
        self.cut_pairs.update(pairs)
        self.save()

    def heal(self, a: str, b: str) -> None:
        pairs = [p for p in self._pair_ports(a, b) if p in self.cut_pairs]
        self._cut("delete", pairs)
        self.cut_pairs.difference_update(pairs)
        self.save()

    def lossy(self, host: str, percent: int, segment: str | None = None) -> None:
        """Drop `percent` % of the frames to and from a host's port(s), at random.

        nftables in the switch (this kernel may lack netem): one lossy host at a
        time; `lossless` ends it.
        """
        if not 0 < percent <= 100:
            raise UsageError(f"loss must be 1 to 100 percent, not {percent}")
        ports = self._ports_of(self.host(host), segment)
        table = {"family": "bridge", "table": LOSS_TABLE}
        commands: list[dict[str, Any]] = [
            {"add": {"table": {"family": "bridge", "name": LOSS_TABLE}}},
            {"add": {"chain": {**table, "name": "forward", "type": "filter",
                               "hook": "forward", "prio": -1, "policy": "accept"}}},
            {"flush": {"chain": {**table, "name": "forward"}}},
        ]
        for port in ports:
            for key in ("iifname", "oifname"):
                commands.append({"add": {"rule": {**table, "chain": "forward", "expr": [
                    {"match": {"op": "==", "left": {"meta": {"key": key}}, "right": port}},
                    {"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 100}},
                               "right": percent}},
                    {"drop": None}]}}})
        Nftables(self._switch_path).apply(commands)

    def lossless(self) -> None:
        """End `lossy`: every frame crosses the switch again."""
        if not self._switch_path.exists():
            return
        if any(t.get("table", {}).get("name") == LOSS_TABLE
               for t in Nftables(self._switch_path).list("tables", "bridge")):
            Nftables(self._switch_path).apply(
                [{"delete": {"table": {"family": "bridge", "name": LOSS_TABLE}}}])

    def delayed(self, host: str, seconds: float, segment: str | None = None) -> None:
        """Hold every frame to and from a host's port(s) `seconds` in the switch, both ways.

        netem's delay, which this kernel lacks (see `vigil.lab.delay`): one delayed
        host at a time; `undelayed` ends it and lets the held frames go at once.
        """
        ports = self._ports_of(self.host(host), segment)
        self.undelayed()
        try:
            for index, port in enumerate(ports):
                detour = delay.detour_for(self._switch_path, port, index)
                delay.build(self._switch_path, detour)
                self.detours.append(detour)
                self.save()
                self._start_relay(detour, seconds)
                delay.swap_in(self._switch_path, detour)
        except BaseException:
            self.undelayed()
            raise

    def _start_relay(self, detour: delay.Detour, seconds: float) -> LabProcess:
        log_path = self.directory / "logs" / "switch.delay.log"
        argv = delay.relay_argv(_python(), detour, seconds)
        popen, log_offset = launch_logged(["nsenter", f"--net={self._switch_path}", *argv],
                                          log_path)
        process = LabProcess.launched(host="switch", name=f"delay {detour.port}", argv=argv,
                                      log=log_path, popen=popen, pid=popen.pid,
                                      log_offset=log_offset)
        self.track(process)
        deadline = time.monotonic() + delay.START_DEADLINE
        while "delaying" not in process.output():
            if not process.alive() or time.monotonic() > deadline:
                raise LabError(f"the switch's delay relay did not start: "
                               f"{process.output()[-500:]}")
            time.sleep(0.01)
        return process

    def undelayed(self) -> None:
        """End `delayed`: the held frames go on at once, the ports are back on their bridges."""
        relays = [p for p in self.processes if p.host == "switch" and p.name.startswith("delay")]
        self._stop_all(relays, grace=2.0)
        self.processes = [p for p in self.processes if p not in relays]
        if self._switch_path.exists():
            for detour in self.detours:
                delay.swap_out(self._switch_path, detour)
        self.detours = []
        self.save()

    def crash(self, name: str) -> None:
        """Power a host off at once: cables pulled, every process killed, its kernel state gone."""
        host = self.host(name)
        with contextlib.suppress(Exception):
            self._set_ports(host, None, "down")
        self._power_off(host)
        self.save()

    def power_loss(self, *names: str) -> None:
        """Power several hosts off at the same instant (the room's power fails).

        Every cable is pulled first, then every host's init is killed, and only
        then is each one waited for: no host outlives another by the seconds a
        host's teardown takes (`crash` of one after the other would).
        """
        hosts = [self.host(name) for name in names]
        for host in hosts:
            with contextlib.suppress(Exception):
                self._set_ports(host, None, "down")
        plugs = [(host, self._pull_plug(host)) for host in hosts]
        try:
            for host, plug in plugs:
                self._wait_dead(host, plug)
        finally:
            for _, plug in plugs:
                plug.release()
        self.save()

    def boot(self, name: str) -> None:
        """Power a crashed host back on: fresh network state and /run, its files kept."""
        host = self.host(name)
        if host.is_up():
            raise UsageError(f"host {host.name} is already up")
        self._power_off(host)  # whatever is left of the last life
        self._boot(host)
        self.save()

    def _power_off(self, host: Host) -> None:
        self._wait_dead(host, self._pull_plug(host))

    def _pull_plug(self, host: Host) -> Plug:
        """Kill the host's init; returns what `_wait_dead` needs (mount ns, FUSE connections).

        Separate from the wait, so that a lab going down pulls every plug first:
        the kernel then tears the hosts' namespaces down (mounts, sockets: a second
        or two each, mostly RCU grace periods) side by side instead of in turn.
        """
        mnt_inode = mnt_fd = None
        fuse: list[int] = []
        if host.holder_alive() and host.holder_pid is not None:
            with contextlib.suppress(OSError):
                mnt_fd = os.open(f"/proc/{host.holder_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
                mnt_inode = os.fstat(mnt_fd).st_ino
                fuse = _fuse_connections(host.holder_pid)
            # The host's init: the kernel ends its whole PID namespace with it, at once.
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.holder_pid, signal.SIGKILL)
        return Plug(mnt_inode, fuse, namespaces.clock_ticks_now(), mnt_fd)

    def _wait_dead(self, host: Host, plug: Plug) -> None:
        """Wait until nothing of the host runs, then remove its ports and namespace."""
        try:
            self._wait_dead_holding(host, plug)
        finally:
            plug.release()

    def _wait_dead_holding(self, host: Host, plug: Plug) -> None:
        deadline = time.monotonic() + 10
        abort_at = time.monotonic() + FUSE_ABORT_AFTER
        fuse = plug.fuse
        while True:
            victims = set(host.pids())
            if plug.mnt_inode is not None:
                victims.update(plug.older_in_mount_namespace())
            victims.discard(os.getpid())
            # A zombie runs nothing and holds nothing but its number. The host's init
            # stays one for seconds while the kernel finishes its namespaces; it is
            # reaped when it can be (here, or by the machine's init after we exit).
            victims = {pid for pid in victims if not is_zombie(pid)}
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._reap()
            if fuse and time.monotonic() > abort_at:
                # Every victim has SIGKILL: no user space runs any more, so aborting the
                # host's FUSE connections only frees exits blocked on them (a file system
                # on a loop device over a FUSE file whose daemon is the one exiting).
                for connection in fuse:
                    abort_fuse(os.makedev(0, connection))
                fuse = []
            if time.monotonic() > deadline:
                raise LabError(f"host {host.name}: processes {sorted(victims)} would not die")
            time.sleep(0.01)
        self._reap()
        host.holder_pid = host.holder_start = None
        self._holders.pop(host.name, None)
        self._release_ports(host)
        delete_named_netns(host.netns)

    def _release_ports(self, host: Host) -> None:
        """Delete the host's veth pairs from the switch side.

        A dead host's network namespace can outlive its processes for minutes
        (orphaned TCP sockets retransmitting their FIN keep it referenced), and
        its veth pairs with it; the next boot would then find the names taken.
        """
        if not self._switch_path.exists():
            return
        with iproute(self._switch_path) as switch:
            for port in host.spec.ports:
                found = switch.link_lookup(ifname=self._port_name(host, port.segment))
                if found:
                    with contextlib.suppress(Exception):
                        switch.link("del", index=found[0])

    def _reap(self) -> None:
        """Collect exit statuses of our own children so no zombie is left."""
        for process in self.processes:
            if process.popen is not None:
                process.popen.poll()
        for holder in list(self._holders.values()):
            holder.poll()

    # -- addresses ---------------------------------------------------------------------------
    def add_address(self, host: str, ifname: str, cidr: str) -> None:
        target = self.host(host)
        address, prefix = cidr.split("/")
        with iproute(target.netns_path) as ipr:
            index = self._ifindex(ipr, target, ifname)
            ipr.addr("add", index=index, address=address, prefixlen=int(prefix))

    def remove_address(self, host: str, ifname: str, cidr: str) -> None:
        target = self.host(host)
        address, prefix = cidr.split("/")
        with iproute(target.netns_path) as ipr:
            index = self._ifindex(ipr, target, ifname)
            ipr.addr("del", index=index, address=address, prefixlen=int(prefix))

    @staticmethod
    def _ifindex(ipr: Any, host: Host, ifname: str) -> int:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise UsageError(f"host {host.name} has no interface {ifname}")
        return int(found[0])

    def addresses(self, host: str, ifname: str | None = None) -> list[str]:
        """The host's addresses as `ip/prefix`, read from its kernel."""
        target = self.host(host)
        with iproute(target.netns_path) as ipr:
            kwargs = {"index": self._ifindex(ipr, target, ifname)} if ifname else {}
            return [
                f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(**kwargs)
            ]

    def carries(self, host: str, address: str, ifname: str | None = None) -> bool:
        """Whether the host's kernel has `address` on `ifname` (on any interface if None).

        A host that is down carries nothing, and so does one whose interface is gone
        or that powers off while it is read (a crash takes its cables, then its
        namespace): samplers of who holds a VIP read hosts while tests crash them.
        """
        target = self.host(host)
        if not target.is_up():
            return False
        try:
            found = self.addresses(host, ifname)
        except UsageError:
            return False  # no such interface: nothing on it
        except OSError:
            if target.is_up():
                raise
            return False
        return any(a.split("/")[0] == address for a in found)

    # -- teardown ------------------------------------------------------------------------------
    def down(self) -> None:
        """Stop everything, remove every namespace and file. Safe to call twice."""
        self._stop_all(self.processes, grace=2.0)
        errors = []
        plugs: dict[str, Plug] = {}
        for host in self.hosts.values():
            try:
                plugs[host.name] = self._pull_plug(host)
            except Exception as exc:
                errors.append(str(exc))
        for host in self.hosts.values():
            try:
                self._wait_dead(host, plugs.get(host.name, Plug(None, [], 0)))
            except Exception as exc:
                errors.append(str(exc))
        delete_named_netns(self.switch_netns)
        self.processes = []
        if self.directory.exists():
            if self.keep_files:
                self.state_path.unlink(missing_ok=True)
            else:
                shutil.rmtree(self.directory, ignore_errors=True)
        self._unregister_cleanup()
        if errors:
            raise LabError("; ".join(errors))

    @staticmethod
    def _stop_all(processes: list[LabProcess], grace: float) -> None:
        """SIGTERM to all at once, one shared grace period, then SIGKILL to the rest.

        At once, because daemons that clean up on SIGTERM (a volume detaching its
        loop device) each take their time: one after the other, they add up.
        """
        for process in processes:
            with contextlib.suppress(Exception):
                process.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            with contextlib.suppress(Exception):
                process.wait(max(0.0, deadline - time.monotonic()))
        for process in processes:
            with contextlib.suppress(Exception):
                if process.alive():
                    process.signal(signal.SIGKILL)
                    process.wait(2.0)

    def leftovers(self) -> list[str]:
        """What of this lab still exists (used by tests that check teardown)."""
        found = []
        for name in [self.switch_netns, *(h.netns for h in self.hosts.values())]:
            if namespaces.named_netns_path(name).exists():
                found.append(f"netns {name}")
        for process in self.processes:
            if process.alive():
                found.append(f"process {process.pid} ({process.name})")
        for host in self.hosts.values():
            if host.holder_alive():
                found.append(f"holder {host.holder_pid} of {host.name}")
        marker = f"vigil-lab-{self.run_id}"
        with contextlib.suppress(OSError), open("/proc/self/mountinfo") as mounts:
            found += [f"mount {line.split()[4]}" for line in mounts if marker in line
                      or str(self.directory) in line]
        if self.directory.exists():
            found.append(f"directory {self.directory}")
        return found

    # -- cleanup on exit and signals -----------------------------------------------------------
    def _register_cleanup(self) -> None:
        if self._cleanup_registered:
            return
        self._cleanup_registered = True
        atexit.register(self._cleanup_at_exit)
        if _in_main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                previous = signal.getsignal(signum)
                if previous in (signal.SIG_DFL, None):
                    self._previous_handlers[signum] = previous
                    signal.signal(signum, _raise_system_exit)

    def _unregister_cleanup(self) -> None:
        if not self._cleanup_registered:
            return
        self._cleanup_registered = False
        atexit.unregister(self._cleanup_at_exit)
        if _in_main_thread():
            for signum, previous in self._previous_handlers.items():
                signal.signal(signum, previous or signal.SIG_DFL)
        self._previous_handlers.clear()

    def _cleanup_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.down()

    def __enter__(self) -> Lab:
        if not self.directory.exists():
            self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def __repr__(self) -> str:
        return f"<Lab {self.run_id} topology={self.topology.name} hosts={list(self.hosts)}>"


#: PID 1 of a host: reaps every orphan, as init does, so a daemon killed by a
#: test never lingers as a zombie that pid-file checks would take for alive.
INIT_PROGRAM = """
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
print("ready", flush=True)
os.close(1)
while True:
    signal.sigwait({signal.SIGCHLD})
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
"""


def _fuse_mounts(mountinfo: str) -> set[int]:
    """FUSE connection numbers (device minors) of the FUSE mounts in a mountinfo text."""
    found = set()
    for line in mountinfo.splitlines():
        fields, _, right = line.partition(" - ")
        fstype = right.split(" ", 1)[0]
        if fstype == "fuse" or fstype.startswith("fuse."):
            major, _, minor = fields.split()[2].partition(":")
            if major == "0" and minor.isdigit():
                found.add(int(minor))
    return found


def _fuse_connections(pid: int) -> list[int]:
    """The FUSE connections mounted in the host's mount namespace and not in the machine's.

    A host's namespace starts as a copy of the machine's: a FUSE file system the
    machine (or anyone else) mounted is in it too, and must never be aborted.
    """
    machine: set[int] = set()
    for other in ("/proc/self/mountinfo", "/proc/1/mountinfo"):
        with contextlib.suppress(OSError):
            machine |= _fuse_mounts(Path(other).read_text())
    return sorted(_fuse_mounts(Path(f"/proc/{pid}/mountinfo").read_text()) - machine)


def _python() -> str:
    import sys

    return sys.executable or "/usr/bin/python3"


def _where_stuck(pid: int) -> str:
    """Where a process and its descendants wait in the kernel, for a boot that hung."""
    described = []
    pending = [pid]
    while pending and len(described) < 8:
        current = pending.pop(0)
        proc = Path(f"/proc/{current}")
        try:
            comm = (proc / "comm").read_text().strip()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = (proc / "wchan").read_text().strip() or "-"
            pending += children_of(current)
        except (OSError, IndexError, ValueError):
            continue
        try:
            stack = [line.split()[-1].split("+")[0]
                     for line in (proc / "stack").read_text().splitlines()[:4] if line.strip()]
        except OSError:
            stack = []
        described.append(f"{comm}[{current}] {state} in {wchan}"
                         + (f" ({' < '.join(stack)})" if stack else ""))
    return f"; waiting: {'; '.join(described)}" if described else ""


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def existing_labs(root: Path | None = None) -> list[str]:
    """Run ids of every lab with a state file under the root."""
    root = root or DEFAULT_ROOT
    if not root.exists():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{STATE_FILE}"))


def sweep(root: Path | None = None, force: bool = False) -> Iterator[tuple[str, str]]:
    """Tear down labs left behind: detached ones and those whose builder died.

    Yields (run id, what happened). A lab whose builder still runs (a test
    session in progress) is left alone unless `force`.
    """
    for run_id in existing_labs(root):
        try:
            lab = Lab.load(run_id, root)
        except Exception as exc:
            yield run_id, f"unreadable state, skipped: {exc}"
            continue
        if lab.owner_alive() and not force:
            yield run_id, f"in use by process {lab._owner[0]}, skipped (use --force)"
            continue
        lab.down()
        yield run_id, "removed"
