"""A heartbeat configuration as a Pacemaker configuration and a Corosync 3 `corosync.conf` (pure).

`translate(config, nodes=..., node_addresses=...)` turns a `ClusterConfig`
(ha.cf, haresources, vigil.cf, ldirectord configs, DRBD) into an `Export`: a
`PacemakerConfig` (resources, constraints, cluster properties and resource
defaults, rendered as CIB XML by `render_cib` or crmsh text by
`render_crmsh`), the `corosync.conf` text, and the `Problem`s met on the way,
each at the file and line it comes from.

What maps to what (docs/scale-out.md has the table):

* every haresources line is a Pacemaker group, its resources in order;
  ``IPaddr``/``IPaddr2`` (and the bare address shorthand) become
  ocf:heartbeat:IPaddr2, ``Filesystem`` ocf:heartbeat:Filesystem,
  ``ldirectord`` ocf:vigil:director, ``MailTo`` ocf:heartbeat:MailTo,
  ``Delay`` ocf:heartbeat:Delay, ``IPsrcaddr`` ocf:heartbeat:IPsrcaddr,
  ``ocf:``/``systemd:``/``lsb:`` resources themselves, any other name an
  init script (lsb:NAME);
* ``drbddisk::R`` leaves the group: it becomes a promotable clone of
  ocf:vigil:volume (``volume_agent="linbit"``: ocf:linbit:drbd, for nodes
  that run DRBD's kernel module), the group is colocated with its Promoted instance and
  starts after the promotion;
* ``auto_failback on`` is resource-stickiness 0 and a location preference of
  `HOME_SCORE` for the home node; ``off`` is stickiness `STICKY` (INFINITY);
* ha.cf ``ping``/``ping_group`` addresses are one cloned ocf:pacemaker:ping
  and a rule per group that keeps it off nodes that reach none of them;
* vigil.cf ``fence NODE`` sections are stonith resources (stonith-enabled
  true); without any, stonith-enabled is false and a warning says so;
* corosync.conf: knet, one link per ha.cf medium whose node addresses are
  known, the totem token from deadtime, two_node for a pair.

Nothing here reads a file, resolves a name or runs a program: the caller
passes what only the machine knows (`node_addresses`).

Public API: `translate`, `Export`, `PacemakerConfig`, `Problem`,
`render_cib`, `render_crmsh`, `Primitive`, `Group`, `Clone`, `Op`,
`LocationPreference`, `LocationRule`, `Colocation`, `Order`,
`HOME_SCORE`, `STICKY`.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from vigil.agents.ipspec import AddressSpecError, parse_address
from vigil.config import drbd as drbd_mod
from vigil.config import extension as extension_mod
from vigil.config import hacf as hacf_mod
from vigil.config.haresources import HaResources, ResourceGroup, ResourceRef
from vigil.errors import Location

#: location score of a group's home node (haresources' first word)
HOME_SCORE = 100
#: resource-stickiness for `auto_failback off`: a group never moves back by itself
STICKY = "INFINITY"
#: the ocf:pacemaker:ping attribute the location rules read
PING_ATTRIBUTE = "pingd"
#: where ldirectord (and vigil director) find a config named without a directory
LDIRECTORD_DIR = "/etc/ha.d"
#: drbddisk's promotable agent, by backend: (provider, type, the parameter naming R)
VOLUME_AGENTS = {"vigil": ("vigil", "volume", "volume"),
                 "linbit": ("linbit", "drbd", "drbd_resource")}
#: the CIB schema written (Pacemaker 2.1: Promoted/Unpromoted role names)
CIB_SCHEMA = "pacemaker-3.7"


# ---------------------------------------------------------------------------
# Model


class ClusterConfigLike(Protocol):
    """What `translate` reads of a `vigil.cluster.loader.ClusterConfig`."""

    @property
    def hacf(self) -> hacf_mod.HaCf: ...
    @property
    def haresources(self) -> HaResources: ...
    @property
    def extension(self) -> extension_mod.ExtensionConfig: ...
    @property
    def drbd(self) -> drbd_mod.DrbdConfig | None: ...


@dataclass(frozen=True)
class Problem:
    """Something that could not be translated (or only approximately), at its source line."""

    location: Location
    message: str
    error: bool = False

    def format(self) -> str:
        kind = "error" if self.error else "warning"
        return f"{self.location}: {kind}: {self.message}"


@dataclass(frozen=True)
class Op:
    name: str
    interval: str = "0s"
    timeout: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Primitive:
    id: str
    cls: str  # ocf | lsb | systemd | stonith
    type: str
    provider: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    ops: tuple[Op, ...] = ()
    #: the haresources word (or vigil.cf section) it comes from
    source: str = ""

    @property
    def agent(self) -> str:
        if self.provider:
            return f"{self.cls}:{self.provider}:{self.type}"
        return f"{self.cls}:{self.type}"


@dataclass(frozen=True)
class Group:
    id: str
    members: tuple[Primitive, ...]
    home: str


@dataclass(frozen=True)
class Clone:
    id: str
    primitive: Primitive
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LocationPreference:
    id: str
    rsc: str
    node: str
    score: str


@dataclass(frozen=True)
class LocationRule:
    """`rsc` may not run where the ping attribute is undefined or 0."""

    id: str
    rsc: str
    attribute: str = PING_ATTRIBUTE


@dataclass(frozen=True)
class Colocation:
    id: str
    rsc: str
    with_rsc: str
    with_role: str | None = None
    score: str = "INFINITY"


@dataclass(frozen=True)
class Order:
    id: str
    first: str
    then: str
    first_action: str = "start"
    then_action: str = "start"


@dataclass(frozen=True)
class PacemakerConfig:
    nodes: tuple[str, ...]
    primitives: tuple[Primitive, ...] = ()  # stand-alone (stonith)
    groups: tuple[Group, ...] = ()
    clones: tuple[Clone, ...] = ()
    locations: tuple[LocationPreference | LocationRule, ...] = ()
    colocations: tuple[Colocation, ...] = ()
    orders: tuple[Order, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()
    rsc_defaults: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Export:
    pacemaker: PacemakerConfig
    corosync_conf: str
    problems: tuple[Problem, ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.error)


# ---------------------------------------------------------------------------
# Translation


class _Ids:
    """Pacemaker ids (XML IDs): letters, digits, `_ - .`; unique in the CIB."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", wanted).strip("_") or "rsc"
        if not re.match(r"[A-Za-z_]", base):
            base = "r_" + base
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base}_{n}"
        self.used.add(candidate)
        return candidate


@dataclass
class _State:
    config_path: str
    ids: _Ids = field(default_factory=_Ids)
    problems: list[Problem] = field(default_factory=list)

    def warn(self, location: Location | None, message: str) -> None:
        self.problems.append(Problem(location or Location(self.config_path), message))

    def error(self, location: Location | None, message: str) -> None:
        self.problems.append(Problem(location or Location(self.config_path), message, True))


def _monitor(interval: str = "10s", timeout: str = "20s") -> tuple[Op, ...]:
    return (Op("monitor", interval, timeout),)


def _resource(ref: ResourceRef, st: _State) -> Primitive | None:
    """The primitive for one haresources resource (drbddisk is handled by the caller)."""
    name, args, where = ref.name, ref.args, ref.location
    if name in ("IPaddr", "IPaddr2"):
        if not args:
            st.error(where, f"{ref.label}: no address")
            return None
        try:
            spec = parse_address(args[0])
        except AddressSpecError as exc:
            st.error(where, f"{ref.label}: {exc}")
            return None
        params = [("ip", spec.ip)]
        if spec.prefixlen is not None:
            params.append(("cidr_netmask", str(spec.prefixlen)))
        if spec.nic:
            params.append(("nic", spec.nic))
        if spec.label:
            params.append(("iflabel", spec.label))
        if spec.broadcast:
            params.append(("broadcast", spec.broadcast))
        return Primitive(st.ids.take("ip_" + spec.ip.replace(".", "_").replace(":", "_")),
                         "ocf", "IPaddr2", "heartbeat", tuple(params), _monitor(),
                         ref.label)
    if name == "Filesystem":
        if len(args) < 2:
            st.error(where, f"{ref.label}: Filesystem needs DEVICE::DIRECTORY[::TYPE[::OPTIONS]]")
            return None
        keys = ("device", "directory", "fstype", "options")
        params = [(k, v) for k, v in zip(keys, args, strict=False) if v]
        if len(args) > len(keys):
            st.warn(where, f"{ref.label}: arguments after the mount options dropped: "
                    f"{'::'.join(args[len(keys):])}")
        return Primitive(st.ids.take("fs" + args[1].replace("/", "_")), "ocf", "Filesystem",
                         "heartbeat", tuple(params), _monitor("20s", "40s"), ref.label)
    if name == "ldirectord":
        config = args[0] if args else "ldirectord.cf"
        # where the nodes keep it (ldirectord's own directory), whatever directory was read
        path = config if config.startswith("/") else f"{LDIRECTORD_DIR}/{config}"
        return Primitive(st.ids.take("ldirectord" if not args else f"ldirectord_{config}"),
                         "ocf", "director", "vigil", (("configfile", path),),
                         _monitor("20s", "10s"), ref.label)
    if name == "MailTo":
        if not args:
            st.error(where, f"{ref.label}: MailTo needs an address")
            return None
        params = [("email", args[0])]
        if len(args) > 1:
            params.append(("subject", args[1]))
        return Primitive(st.ids.take("mailto"), "ocf", "MailTo", "heartbeat", tuple(params),
                         _monitor(), ref.label)
    if name == "Delay":
        delays = ("startdelay", "stopdelay")
        params = [(k, v) for k, v in zip(delays, args, strict=False)]
        return Primitive(st.ids.take("delay"), "ocf", "Delay", "heartbeat", tuple(params),
                         (), ref.label)
    if name == "IPsrcaddr":
        if not args:
            st.error(where, f"{ref.label}: IPsrcaddr needs an address")
            return None
        ip = args[0].split("/", 1)[0]
        return Primitive(st.ids.take("srcaddr_" + ip), "ocf", "IPsrcaddr", "heartbeat",
                         (("ipaddress", ip),), _monitor(), ref.label)
    if name in ("SendArp", "IPv6addr"):
        st.warn(where, f"{ref.label}: heartbeat's {name} has no exact Pacemaker agent; "
                "use ocf:heartbeat:IPaddr2 (it sends gratuitous ARP itself): left out")
        return None
    if ref.is_ocf:
        _, provider, agent = name.split(":", 2)
        pairs = tuple((k, v) for k, _, v in (p.partition("=") for p in args))
        return Primitive(st.ids.take(agent.lower()), "ocf", agent, provider, pairs,
                         _monitor(), ref.label)
    if ref.is_systemd:
        unit = name.split(":", 1)[1]
        return Primitive(st.ids.take(unit.removesuffix(".service")), "systemd", unit,
                         None, (), _monitor("30s", "100s"), ref.label)
    script = name.removeprefix("lsb:")
    if args:
        st.warn(where, f"{ref.label}: an lsb: resource takes no arguments; "
                f"{'::'.join(args)} dropped (a wrapper script in /etc/init.d can pass them)")
    return Primitive(st.ids.take(script), "lsb", script, None, (), _monitor("15s", "15s"),
                     ref.label)


def _drbd_names(ref: ResourceRef, config: _Inputs, st: _State) -> list[str]:
    if ref.args:
        return [ref.args[0]]
    if config.drbd_resources:
        return list(config.drbd_resources)
    st.error(ref.location, f"{ref.label}: drbddisk without a resource name means every DRBD "
             "resource, and no DRBD configuration was read")
    return []


@dataclass(frozen=True)
class _Inputs:
    drbd_resources: Mapping[str, tuple[str, ...]]  # resource -> its hosts


def _drbd_clone(resource: str, nodes: Sequence[str], hosts: tuple[str, ...] | None,
                st: _State, volume_agent: str) -> tuple[Clone, list[LocationPreference]]:
    provider, kind, parameter = VOLUME_AGENTS[volume_agent]
    primitive = Primitive(
        st.ids.take(f"drbd_{resource}"), "ocf", kind, provider, ((parameter, resource),),
        (Op("monitor", "29s", "20s", "Promoted"), Op("monitor", "31s", "20s", "Unpromoted")),
        f"drbddisk::{resource}")
    on = [n for n in nodes if hosts is None or n in hosts]
    clone = Clone(st.ids.take(f"ms_drbd_{resource}"), primitive, (
        ("promotable", "true"), ("promoted-max", "1"), ("promoted-node-max", "1"),
        ("clone-max", str(max(1, len(on)))), ("clone-node-max", "1"), ("notify", "true")))
    bans = [LocationPreference(st.ids.take(f"loc_{clone.id}_not_{n}"), clone.id, n, "-INFINITY")
            for n in nodes if hosts is not None and n not in hosts]
    return clone, bans


def translate(config: ClusterConfigLike, nodes: Sequence[str] = (),
              node_addresses: Mapping[str, Sequence[str]] | None = None,
              volume_agent: str = "vigil") -> Export:
    """Translate `config`; `nodes` overrides ha.cf's `node` list (adds nodes for Pacemaker);
    `node_addresses` gives each node's addresses (resolved names), to place ucast peers;
    the DRBD configuration's `address` lines count as their node's addresses too;
    `volume_agent` picks drbddisk's clone agent (a key of `VOLUME_AGENTS`)."""
    if volume_agent not in VOLUME_AGENTS:
        raise ValueError(f"unknown volume agent {volume_agent!r}")
    hacf = config.hacf
    st = _State(hacf.path)
    cluster_nodes = tuple(n.lower() for n in nodes) or hacf.nodes
    if not cluster_nodes:
        st.error(Location(hacf.path), "no node: ha.cf has no 'node' line and --nodes was not "
                 "given")
    drbd_hosts: dict[str, tuple[str, ...]] = {}
    if config.drbd is not None:
        for res in config.drbd.resources:
            drbd_hosts[res.name] = tuple(n.lower() for h in res.hosts for n in h.names)
    inputs = _Inputs(drbd_hosts)

    groups: list[Group] = []
    clones: list[Clone] = []
    locations: list[LocationPreference | LocationRule] = []
    colocations: list[Colocation] = []
    orders: list[Order] = []
    primitives: list[Primitive] = []
    properties: list[tuple[str, str]] = []
    rsc_defaults: list[tuple[str, str]] = []
    drbd_clones: dict[str, Clone] = {}

    for group in config.haresources.groups:
        members: list[Primitive] = []
        group_clones: list[Clone] = []
        for ref in group.resources:
            if ref.name == "drbddisk":
                for name in _drbd_names(ref, inputs, st):
                    if config.drbd is not None and name not in drbd_hosts:
                        st.warn(ref.location, f"{ref.label}: DRBD resource {name} is not in the "
                                "DRBD configuration read; the clone runs on every node")
                    if name in drbd_clones:  # a second group on the same volume
                        group_clones.append(drbd_clones[name])
                    else:
                        clone, bans = _drbd_clone(name, cluster_nodes, drbd_hosts.get(name), st,
                                                  volume_agent)
                        drbd_clones[name] = clone
                        clones.append(clone)
                        group_clones.append(clone)
                        locations.extend(bans)
                    if members:
                        before = ", ".join(m.source for m in members)
                        st.warn(ref.location, f"{ref.label}: {before} "
                                "started before it in heartbeat; in Pacemaker the whole group "
                                "starts after the promotion")
                continue
            primitive = _resource(ref, st)
            if primitive is not None:
                members.append(primitive)
        if not members and not group_clones:
            st.warn(group.location, f"group {group.key}: nothing left to run")
            continue
        if not members:
            st.warn(group.location, f"group {group.key}: only DRBD; the clone is exported "
                    "without a group")
            continue
        gid = st.ids.take("grp_" + members[0].id)
        groups.append(Group(gid, tuple(members), group.node))
        for clone in group_clones:
            colocations.append(Colocation(st.ids.take(f"col_{gid}_on_{clone.id}"), gid,
                                          clone.id, "Promoted"))
            orders.append(Order(st.ids.take(f"ord_{clone.id}_before_{gid}"), clone.id, gid,
                                "promote", "start"))
        _home(group, gid, cluster_nodes, locations, st)

    # auto_failback ---------------------------------------------------------------
    failback = hacf.auto_failback
    where = hacf.where.get("auto_failback")
    if failback is hacf_mod.AutoFailback.LEGACY:
        st.warn(where, "auto_failback legacy (the default) exported as 'on': groups go back "
                "to their home node")
    if failback is hacf_mod.AutoFailback.OFF:
        rsc_defaults.append(("resource-stickiness", STICKY))
    else:
        rsc_defaults.append(("resource-stickiness", "0"))

    # ping nodes ------------------------------------------------------------------
    if hacf.ping_nodes and groups:
        addresses = [a for p in hacf.ping_nodes for a in p.addresses]
        ping = Primitive(st.ids.take("ping"), "ocf", "ping", "pacemaker", (
            ("host_list", " ".join(addresses)), ("multiplier", "1000"), ("dampen", "5s")),
            _monitor("10s", "60s"), "ping")
        clones.append(Clone(st.ids.take("ping_clone"), ping))
        for g in groups:
            locations.append(LocationRule(st.ids.take(f"loc_{g.id}_on_ping"), g.id))
        if len(hacf.ping_nodes) > 1:
            st.warn(hacf.ping_nodes[1].location,
                    "several ping nodes: Pacemaker keeps the groups off nodes that reach none "
                    "of them; heartbeat's ipfail also moved them to the node that reached "
                    "more (a location rule with score-attribute=pingd does that)")
    for entry in hacf.respawn:
        if not entry.is_ipfail:
            st.warn(entry.location, f"respawn {entry.command}: Pacemaker does not respawn "
                    "programs; run it from a systemd unit or as a resource")

    # fencing -------------------------------------------------------------------
    ext = config.extension
    for device in ext.fence_devices.values():
        if cluster_nodes and device.node not in cluster_nodes:
            st.warn(device.location, f"fence {device.node}: not a cluster node: left out")
            continue
        params = [(k, v) for k, v in device.params.items() if k != "action"]
        params.append(("pcmk_host_list", device.node))
        fence = Primitive(st.ids.take(f"fence_{device.node}"), "stonith", device.agent, None,
                          tuple(params), (Op("monitor", "60s", "20s"),), f"fence {device.node}")
        primitives.append(fence)
        # a node does not fence itself
        locations.append(LocationPreference(st.ids.take(f"loc_{fence.id}_not_self"),
                                            fence.id, device.node, "-INFINITY"))
    if primitives:
        properties.append(("stonith-enabled", "true"))
        unfenced = [n for n in cluster_nodes if n not in ext.fence_devices]
        if unfenced:
            st.warn(Location(ext.path), f"no fence section for {', '.join(unfenced)}: a loss "
                    "of that node leaves its resources stopped until it is fenced by hand")
    else:
        properties.append(("stonith-enabled", "false"))
        st.warn(Location(ext.path), "no 'fence NODE' section in vigil.cf: stonith-enabled=false "
                "(a node that only looks dead can keep its resources while another starts them)")
    if ext.fence_command:
        st.warn(Location(ext.path), "fence_command is not exported: Pacemaker fences with "
                "stonith resources (write 'fence NODE' sections)")
    for plugin in hacf.stonith:
        st.warn(plugin.location, f"{plugin.kind} {plugin.type}: heartbeat STONITH plugins are "
                "not exported: write a 'fence NODE' section in vigil.cf with the fence agent")
    for override in (*ext.agents.values(), *ext.resources.values()):
        st.warn(override.location, f"{override.kind} {override.name}: vigil.cf resource "
                "policy (monitor, restart limits) is not exported: Pacemaker's op and meta "
                "attributes take their defaults")

    pcmk = PacemakerConfig(
        nodes=cluster_nodes, primitives=tuple(primitives), groups=tuple(groups),
        clones=tuple(clones), locations=tuple(locations), colocations=tuple(colocations),
        orders=tuple(orders), properties=tuple(properties), rsc_defaults=tuple(rsc_defaults))
    known: dict[str, list[str]] = {n: list((node_addresses or {}).get(n, ()))
                                   for n in cluster_nodes}
    if config.drbd is not None:  # a DRBD replication address is an address of its node too
        for res in config.drbd.resources:
            for host in res.hosts:
                for name in host.names:
                    if host.address is not None and name.lower() in known:
                        known[name.lower()].append(host.address.host)
    corosync = corosync_conf(hacf, cluster_nodes, known, st)
    return Export(pcmk, corosync, tuple(st.problems))


def _home(group: ResourceGroup, gid: str, nodes: Sequence[str],
          locations: list[LocationPreference | LocationRule], st: _State) -> None:
    if nodes and group.node not in nodes:
        st.warn(group.location, f"home node {group.node} is not a cluster node: no home "
                "preference")
        return
    locations.append(LocationPreference(st.ids.take(f"loc_{gid}_home"), gid, group.node,
                                        str(HOME_SCORE)))


# ---------------------------------------------------------------------------
# corosync.conf


def corosync_conf(hacf: hacf_mod.HaCf, nodes: Sequence[str],
                  node_addresses: Mapping[str, Sequence[str]], st: _State) -> str:
    """Corosync 3 (knet): one link per ha.cf medium whose every node address is known."""
    links: list[tuple[str, dict[str, str]]] = []  # (what, node -> address)
    by_name = {n: n for n in nodes}
    names_used = False
    ucast: dict[str, list[hacf_mod.Ucast | hacf_mod.Ucast6]] = {}
    for medium in hacf.media:
        if isinstance(medium, hacf_mod.Ucast | hacf_mod.Ucast6):
            ucast.setdefault(f"{medium.kind} {medium.interface}", []).append(medium)
        elif isinstance(medium, hacf_mod.Serial):
            st.warn(medium.location, f"serial {medium.device}: Corosync has no serial links: "
                    "left out")
        else:
            what = f"{medium.kind} {medium.interface}"
            if names_used:
                st.warn(medium.location, f"{what}: knet links are unicast and a second "
                        "broadcast/multicast medium has no node addresses to use: left out "
                        "(add ringN_addr lines by hand)")
                continue
            names_used = True
            st.warn(medium.location, f"{what}: knet links are unicast: this link uses the node "
                    "names, which must resolve to each node's address on "
                    f"{medium.interface}")
            links.append((what, dict(by_name)))
    for what, media in ucast.items():
        placed: dict[str, str] = {}
        for medium in media:
            address = medium.peer.split("%", 1)[0]
            owner = _owner(address, nodes, node_addresses)
            if owner is None:
                st.warn(medium.location, f"{what} {address}: no cluster node has this address "
                        "(its name must resolve to it): left out")
            else:
                placed[owner] = address
        missing = [n for n in nodes if n not in placed]
        if missing:
            st.warn(media[0].location, f"{what}: no address for {', '.join(missing)}: this "
                    "link is left out (every node needs an address on every link)")
            continue
        links.append((what, placed))
    if not links:
        st.warn(Location(hacf.path), "no heartbeat medium maps to a knet link: link 0 uses the "
                "node names")
        links.append(("node names", dict(by_name)))
    if len(links) > 8:
        for what, _ in links[8:]:
            st.warn(Location(hacf.path), f"{what}: knet has at most 8 links: left out")
        links = links[:8]

    token_ms = round(hacf.deadtime * 1000)
    lines = [
        "# corosync.conf exported by `vigil export pacemaker` from " + hacf.path,
        "totem {",
        "    version: 2",
        f"    cluster_name: {hacf.cluster}",
        "    transport: knet",
        f"    # ha.cf deadtime {hacf.deadtime:g}s",
        f"    token: {token_ms}",
        "    crypto_cipher: aes256",
        "    crypto_hash: sha256",
    ]
    for number, (what, _) in enumerate(links):
        lines += ["    interface {", f"        # {what}", f"        linknumber: {number}",
                  "    }"]
    lines += ["}", "", "nodelist {"]
    for nodeid, node in enumerate(nodes, start=1):
        lines += ["    node {", f"        name: {node}", f"        nodeid: {nodeid}"]
        for number, (_, placed) in enumerate(links):
            lines.append(f"        ring{number}_addr: {placed[node]}")
        lines.append("    }")
    lines += ["}", "", "quorum {", "    provider: corosync_votequorum"]
    if len(nodes) == 2:
        lines.append("    two_node: 1")
    lines += ["}", "", "logging {", "    to_syslog: yes", "    to_stderr: no", "}", ""]
    return "\n".join(lines)


def _owner(address: str, nodes: Sequence[str],
           node_addresses: Mapping[str, Sequence[str]]) -> str | None:
    if address.lower() in nodes:
        return address.lower()
    for node in nodes:
        if address in node_addresses.get(node, ()):
            return node
    return None


# ---------------------------------------------------------------------------
# Rendering: CIB XML


def _nvpairs(parent: ET.Element, prefix: str, pairs: Sequence[tuple[str, str]]) -> None:
    for name, value in pairs:
        ET.SubElement(parent, "nvpair", id=f"{prefix}-{name}", name=name, value=value)


def _primitive_xml(parent: ET.Element, p: Primitive) -> None:
    attrs = {"id": p.id, "class": p.cls, "type": p.type}
    if p.provider:
        attrs["provider"] = p.provider
    el = ET.SubElement(parent, "primitive", attrs)
    if p.params:
        _nvpairs(ET.SubElement(el, "instance_attributes", id=f"{p.id}-instance_attributes"),
                 f"{p.id}-instance_attributes", p.params)
    if p.ops:
        ops = ET.SubElement(el, "operations")
        for op in p.ops:
            oid = f"{p.id}-{op.name}-interval-{op.interval}"
            o = {"id": oid, "name": op.name, "interval": op.interval}
            if op.timeout:
                o["timeout"] = op.timeout
            if op.role:
                o["role"] = op.role
            ET.SubElement(ops, "op", o)


def render_cib(config: PacemakerConfig) -> str:
    """A whole CIB (`crm_verify --xml-file`, `cibadmin --replace --xml-file`)."""
    cib = ET.Element("cib", {"validate-with": CIB_SCHEMA, "admin_epoch": "0", "epoch": "1",
                             "num_updates": "0"})
    conf = ET.SubElement(cib, "configuration")
    crm = ET.SubElement(conf, "crm_config")
    _nvpairs(ET.SubElement(crm, "cluster_property_set", id="cib-bootstrap-options"),
             "cib-bootstrap-options", config.properties)
    nodes = ET.SubElement(conf, "nodes")
    for nodeid, node in enumerate(config.nodes, start=1):
        ET.SubElement(nodes, "node", id=str(nodeid), uname=node)
    resources = ET.SubElement(conf, "resources")
    for p in config.primitives:
        _primitive_xml(resources, p)
    for clone in config.clones:
        c = ET.SubElement(resources, "clone", id=clone.id)
        if clone.meta:
            _nvpairs(ET.SubElement(c, "meta_attributes", id=f"{clone.id}-meta_attributes"),
                     f"{clone.id}-meta_attributes", clone.meta)
        _primitive_xml(c, clone.primitive)
    for group in config.groups:
        g = ET.SubElement(resources, "group", id=group.id)
        for member in group.members:
            _primitive_xml(g, member)
    constraints = ET.SubElement(conf, "constraints")
    for loc in config.locations:
        if isinstance(loc, LocationPreference):
            ET.SubElement(constraints, "rsc_location", id=loc.id, rsc=loc.rsc, node=loc.node,
                          score=loc.score)
        else:
            el = ET.SubElement(constraints, "rsc_location", id=loc.id, rsc=loc.rsc)
            rule = ET.SubElement(el, "rule", {"id": f"{loc.id}-rule", "score": "-INFINITY",
                                              "boolean-op": "or"})
            ET.SubElement(rule, "expression", id=f"{loc.id}-rule-undefined",
                          attribute=loc.attribute, operation="not_defined")
            ET.SubElement(rule, "expression", id=f"{loc.id}-rule-zero", attribute=loc.attribute,
                          operation="lte", value="0", type="integer")
    for col in config.colocations:
        attrs = {"id": col.id, "rsc": col.rsc, "with-rsc": col.with_rsc, "score": col.score}
        if col.with_role:
            attrs["with-rsc-role"] = col.with_role
        ET.SubElement(constraints, "rsc_colocation", attrs)
    for order in config.orders:
        ET.SubElement(constraints, "rsc_order", {
            "id": order.id, "first": order.first, "first-action": order.first_action,
            "then": order.then, "then-action": order.then_action, "kind": "Mandatory"})
    defaults = ET.SubElement(conf, "rsc_defaults")
    _nvpairs(ET.SubElement(defaults, "meta_attributes", id="rsc-options"), "rsc-options",
             config.rsc_defaults)
    ET.SubElement(cib, "status")
    ET.indent(cib)
    return ET.tostring(cib, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------
# Rendering: crmsh


def _quote(value: str) -> str:
    return f'"{value}"' if re.search(r"[\s\"'#]", value) or not value else value


def _primitive_crmsh(p: Primitive) -> str:
    parts = [f"primitive {p.id} {p.agent}"]
    if p.params:
        parts.append("params " + " ".join(f"{k}={_quote(v)}" for k, v in p.params))
    for op in p.ops:
        text = f"op {op.name} interval={op.interval}"
        if op.timeout:
            text += f" timeout={op.timeout}"
        if op.role:
            text += f" role={op.role}"
        parts.append(text)
    return " \\\n    ".join(parts)


def render_crmsh(config: PacemakerConfig) -> str:
    """The same configuration for `crm configure load update FILE`."""
    out: list[str] = []
    for node in config.nodes:
        out.append(f"node {node}")
    for p in (*config.primitives, *(c.primitive for c in config.clones),
              *(m for g in config.groups for m in g.members)):
        out.append(_primitive_crmsh(p))
    for g in config.groups:
        out.append(f"group {g.id} {' '.join(m.id for m in g.members)}")
    for c in config.clones:
        meta = " ".join(f"{k}={v}" for k, v in c.meta)
        out.append(f"clone {c.id} {c.primitive.id}" + (f" \\\n    meta {meta}" if meta else ""))
    for loc in config.locations:
        if isinstance(loc, LocationPreference):
            out.append(f"location {loc.id} {loc.rsc} {loc.score}: {loc.node}")
        else:
            out.append(f"location {loc.id} {loc.rsc} \\\n    rule -inf: not_defined "
                       f"{loc.attribute} or {loc.attribute} lte 0")
    for col in config.colocations:
        role = f":{col.with_role}" if col.with_role else ""
        out.append(f"colocation {col.id} {col.score}: {col.rsc} {col.with_rsc}{role}")
    for order in config.orders:
        out.append(f"order {order.id} Mandatory: {order.first}:{order.first_action} "
                   f"{order.then}:{order.then_action}")
    if config.properties:
        out.append("property cib-bootstrap-options: " +
                   " ".join(f"{k}={v}" for k, v in config.properties))
    if config.rsc_defaults:
        out.append("rsc_defaults rsc-options: " +
                   " ".join(f"{k}={v}" for k, v in config.rsc_defaults))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Rendering: pcs

PCS_HEADER = """\
#!/bin/sh
# The Pacemaker configuration `vigil export pacemaker --format pcs` wrote, as pcs commands.
# Run on a node of the running cluster, it edits a copy of the CIB and pushes it at the
# end, so the cluster sees the whole configuration at once. CIB=FILE edits FILE instead
# (nothing is pushed). FORCE=--force creates resources whose agents are not installed
# where this runs (pcs checks each agent's metadata otherwise).
set -eu
if [ -n "${CIB:-}" ]; then
    cib=$CIB
else
    cib=$(mktemp)
    trap 'rm -f "$cib"' EXIT
    pcs cluster cib "$cib"
fi
force=${FORCE:-}
"""

PCS_FOOTER = """\
if [ -z "${CIB:-}" ]; then
    pcs cluster cib-push "$cib" --config
fi
"""


def _pcs(*words: str) -> str:
    """One `pcs -f "$cib"` command line, its words quoted for sh."""
    return 'pcs -f "$cib" ' + " ".join(shlex.quote(w) for w in words)


def _pcs_options(p: Primitive) -> list[str]:
    words = [f"{k}={v}" for k, v in p.params]
    ops: list[str] = []
    for op in p.ops:
        ops.append(op.name)
        ops.append(f"interval={op.interval}")
        if op.timeout:
            ops.append(f"timeout={op.timeout}")
        if op.role:
            ops.append(f"role={op.role}")
    return words + (["op", *ops] if ops else [])


def render_pcs(config: PacemakerConfig) -> str:
    """The same configuration as a sh script of pcs commands (pcs 0.11)."""
    out = [PCS_HEADER]
    for p in config.primitives:
        if p.cls == "stonith":
            out.append(_pcs("stonith", "create", p.id, p.type, *_pcs_options(p)))
        else:
            out.append(_pcs("resource", "create", p.id, p.agent, *_pcs_options(p),
                            "--no-default-ops") + " $force")
    for c in config.clones:
        meta = dict(c.meta)
        kind = "promotable" if meta.pop("promotable", "false") == "true" else "clone"
        out.append(_pcs("resource", "create", c.primitive.id, c.primitive.agent,
                        *_pcs_options(c.primitive), "--no-default-ops", kind, c.id,
                        *(f"{k}={v}" for k, v in meta.items())) + " $force")
    for g in config.groups:
        for member in g.members:  # created in the group's order: started in it
            out.append(_pcs("resource", "create", member.id, member.agent,
                            *_pcs_options(member), "--no-default-ops", "--group", g.id)
                       + " $force")
    for loc in config.locations:
        if isinstance(loc, LocationPreference):
            out.append(_pcs("constraint", "location", "add", loc.id, loc.rsc, loc.node, "--",
                            loc.score))
        else:
            out.append(_pcs("constraint", "location", loc.rsc, "rule", f"constraint-id={loc.id}",
                            "score=-INFINITY", "not_defined", loc.attribute, "or",
                            loc.attribute, "lte", "0"))
    for col in config.colocations:
        role = [col.with_role] if col.with_role else []
        out.append(_pcs("constraint", "colocation", "add", col.rsc, "with", *role,
                        col.with_rsc, col.score, f"id={col.id}"))
    for order in config.orders:
        out.append(_pcs("constraint", "order", order.first_action, order.first, "then",
                        order.then_action, order.then, "kind=Mandatory", f"id={order.id}"))
    if config.properties:
        out.append(_pcs("property", "set", *(f"{k}={v}" for k, v in config.properties)))
    if config.rsc_defaults:
        out.append(_pcs("resource", "defaults", "update",
                        *(f"{k}={v}" for k, v in config.rsc_defaults)))
    out.append(PCS_FOOTER)
    return "\n".join(out)
