"""OCF resource agents for vigil's own parts: metadata, exit codes, promotion scores.

Pacemaker runs `ocf:vigil:director`, `ocf:vigil:realserver` and
`ocf:vigil:volume` (contrib/ocf/vigil/, each a shim that runs `vigil ocf
AGENT ACTION`). This module is their pure half: the metadata XML each prints,
the map from what `vigil director|realserver|volume` answer to OCF exit codes,
and the promotion score a volume's state earns. `vigil.cli.ocf` runs the
commands and does the I/O.

Promotion scores follow ocf:linbit:drbd's reasoning and its default scores for
UpToDate data (10000, and 1000 while the peer's disk is unknown), with two
differences, both because `vigil volume primary` refuses to promote an
Outdated or Inconsistent disk (exit 11), even next to an UpToDate peer: such a
node gets no score (DRBD gives 10 to a node whose peer is UpToDate), as a score
would only make Pacemaker try a promotion that fails; and a Consistent disk
gets 5 (DRBD: 0), the lowest positive score, so that after a cluster-wide crash
someone may be promoted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

#: the agents vigil ships, in the order the docs list them
AGENTS = ("director", "realserver", "volume")
PROVIDER = "vigil"
VERSION = "1.0"


class Ocf(enum.IntEnum):
    """OCF exit codes, promotable-clone ones included."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_MASTER = 8
    FAILED_MASTER = 9


# -- exit codes of vigil's commands -------------------------------------------------------

#: `vigil director status` and `vigil realserver status` answer like LSB init scripts
LSB_RUNNING = 0
LSB_DEAD_PID_FILE = 1
LSB_DEAD_LOCK_FILE = 2
LSB_NOT_RUNNING = 3
#: `vigil volume`: 10 the resource is not up here, 11 a state change was refused
VOLUME_NOT_UP = 10
VOLUME_REFUSED = 11
#: `vigil` itself: 2 a bad command line, 3 the machine lacks something
VIGIL_USAGE = 2
VIGIL_MISSING = 3


def from_lsb_status(code: int) -> Ocf:
    """An LSB `status` exit code as a monitor result, the way Pacemaker reads lsb: ones.

    1 (dead, pid file left) and 2 (dead, lock file left) are "not running": for a
    probe that is the truth, and Pacemaker treats a recurring monitor's "not
    running" as a failure anyway. 4 and anything else is an unknown state.
    """
    if code == LSB_RUNNING:
        return Ocf.SUCCESS
    if code in (LSB_DEAD_PID_FILE, LSB_DEAD_LOCK_FILE, LSB_NOT_RUNNING):
        return Ocf.NOT_RUNNING
    return Ocf.ERR_GENERIC


def from_action(code: int) -> Ocf:
    """start/stop/promote/demote: `vigil`'s exit code as the action's OCF result."""
    if code == 0:
        return Ocf.SUCCESS
    if code == VIGIL_USAGE:
        return Ocf.ERR_CONFIGURED
    if code == VIGIL_MISSING:
        return Ocf.ERR_INSTALLED
    if code == VOLUME_NOT_UP:
        return Ocf.NOT_RUNNING
    return Ocf.ERR_GENERIC


# -- the volume: role and promotion score -------------------------------------------------

#: ocf:linbit:drbd's adjust_master_score defaults, by name
SCORE_LOCAL_OK = 1000
SCORE_AS_GOOD_AS_IT_GETS = 10000
#: a Consistent disk: promote only when nothing better exists (see the module's text)
SCORE_ONLY_CONSISTENT = 5

UP_TO_DATE = "UpToDate"
CONSISTENT = "Consistent"
PEER_UNKNOWN = "DUnknown"
#: disk states a volume passes through on its way up: its score is left as it is
TRANSITIONAL = frozenset({"Attaching", "Negotiating"})


class Keep(enum.Enum):
    """The promotion score is left as it stands (a transitional disk state)."""

    KEEP = "keep"


@dataclass(frozen=True)
class VolumeView:
    """What a monitor needs of `vigil volume status --json`."""

    role: str  # Primary, Secondary
    disk: str  # UpToDate, Consistent, Outdated, Inconsistent, Diskless, DUnknown
    peer_disk: str
    connection: str  # StandAlone, Connecting, Connected, Disconnecting

    @classmethod
    def from_status(cls, status: Mapping[str, object]) -> VolumeView:
        return cls(str(status.get("role", "Unknown")), str(status.get("disk", "DUnknown")),
                   str(status.get("peer_disk", PEER_UNKNOWN)),
                   str(status.get("connection", "StandAlone")))

    @property
    def primary(self) -> bool:
        return self.role == "Primary"


def volume_monitor(view: VolumeView | None) -> Ocf:
    """None: the volume is not up here. Primary is OCF_RUNNING_MASTER."""
    if view is None:
        return Ocf.NOT_RUNNING
    return Ocf.RUNNING_MASTER if view.primary else Ocf.SUCCESS


def promotion_score(view: VolumeView | None) -> int | Keep | None:
    """The promotion score this node's volume earns; None: remove it (do not promote here)."""
    if view is None:
        return None
    if view.disk in TRANSITIONAL:
        return Keep.KEEP
    if view.disk == UP_TO_DATE:
        if view.primary or view.peer_disk != PEER_UNKNOWN:
            # Primary, or a Secondary that knows its peer's disk: its data is as good
            # as any (a resync, if one runs, runs from here)
            return SCORE_AS_GOOD_AS_IT_GETS
        # good data, but the peer's is unknown: it may be newer
        return SCORE_LOCAL_OK
    if view.disk == CONSISTENT:
        return SCORE_ONLY_CONSISTENT
    # Outdated, Inconsistent (even next to an UpToDate peer: `vigil volume primary`
    # refuses both), Diskless: no promotion here
    return None


# -- metadata -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    name: str
    shortdesc: str
    longdesc: str
    required: bool = False
    default: str | None = None
    kind: str = "string"
    unique: bool = False


@dataclass(frozen=True)
class Action:
    name: str
    timeout: int
    interval: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class AgentSpec:
    name: str
    shortdesc: str
    longdesc: str
    parameters: tuple[Parameter, ...]
    actions: tuple[Action, ...]

    @property
    def action_names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.actions)

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)


_PLAIN_ACTIONS = (Action("meta-data", 5), Action("validate-all", 20))
#: every agent's `vigil` parameter: the shim runs this command
VIGIL_PARAMETER = Parameter("vigil", "the command that runs vigil",
                            "The vigil executable (a command line: it is split at spaces).",
                            default="vigil")

DIRECTOR = AgentSpec(
    "director",
    "vigil's director (ldirectord's job)",
    "Runs `vigil director` for one ldirectord.cf: it checks the real servers and keeps "
    "only healthy ones in the virtual services' table. start, stop and monitor run "
    "`vigil director start`, `stop` and `status`; a warm standby director "
    "(`vigil director standby`) counts as stopped, and start and stop only flip its role.",
    (
        Parameter("configfile", "the ldirectord.cf to run",
                  "The director's configuration: a path, or a name looked up in /etc/ha.d "
                  "and /etc/ha.d/conf (the same parameter as ocf:heartbeat:ldirectord).",
                  default="ldirectord.cf", unique=True),
        Parameter("backend", "data path",
                  "auto (ipvs, else nftables, else userspace), ipvs, nftables or userspace.",
                  default="auto"),
        VIGIL_PARAMETER,
    ),
    (Action("start", 30), Action("stop", 30), Action("monitor", 20, interval=10),
     *_PLAIN_ACTIONS),
)

REALSERVER = AgentSpec(
    "realserver",
    "an LVS direct-routing real server: VIPs on lo, ARP kept quiet",
    "Runs `vigil realserver` for the VIPs: each goes on lo as a host address, and "
    "arp_ignore=1, arp_announce=2 are set on 'all' and on the interfaces; stop gives back "
    "the values found before. monitor is `vigil realserver status`.",
    (
        Parameter("vip", "virtual IP addresses",
                  "The VIPs (IPv4 or IPv6), separated by spaces.", required=True,
                  unique=True),
        Parameter("dev", "interfaces for the ARP settings",
                  "Set arp_ignore and arp_announce on these interfaces only (separated by "
                  "spaces); empty: every interface but lo.", default=""),
        VIGIL_PARAMETER,
    ),
    (Action("start", 20), Action("stop", 20), Action("monitor", 20, interval=10),
     *_PLAIN_ACTIONS),
)

VOLUME = AgentSpec(
    "volume",
    "a vigil replicated volume (DRBD's job), as a promotable clone",
    "Runs `vigil volume` for one resource of the DRBD configuration: start is `up`, stop "
    "`down`, promote `primary`, demote `secondary`, monitor reads `status` and answers "
    "8 (running promoted) on the Primary. monitor, start and notify set this node's "
    "promotion score with crm_attribute -p: 10000 for UpToDate data (1000 while the "
    "peer's disk is unknown), 5 for a Consistent disk, none for Outdated, "
    "Inconsistent or Diskless. Configure it as a "
    "promotable clone with clone-max=2, notify=true.",
    (
        Parameter("volume", "the resource's name",
                  "The resource, as named in the DRBD configuration (resource r0 { ... }).",
                  required=True, unique=True),
        Parameter("config", "the DRBD configuration",
                  "The configuration file; empty: /etc/drbd.conf and the files it includes.",
                  default=""),
        VIGIL_PARAMETER,
    ),
    (Action("start", 60), Action("stop", 60), Action("promote", 60), Action("demote", 60),
     Action("notify", 30), Action("monitor", 20, interval=20, role="Unpromoted"),
     Action("monitor", 20, interval=10, role="Promoted"), *_PLAIN_ACTIONS),
)

SPECS = {spec.name: spec for spec in (DIRECTOR, REALSERVER, VOLUME)}


def metadata(spec: AgentSpec) -> str:
    """The agent's OCF metadata (ra-api-1.dtd)."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
        f'<resource-agent name={quoteattr(spec.name)} version="{VERSION}">',
        "<version>1.1</version>",
        f'<longdesc lang="en">{escape(spec.longdesc)}</longdesc>',
        f'<shortdesc lang="en">{escape(spec.shortdesc)}</shortdesc>',
        "<parameters>",
    ]
    for p in spec.parameters:
        default = "" if p.default is None else f" default={quoteattr(p.default)}"
        lines += [
            f'<parameter name={quoteattr(p.name)} required="{int(p.required)}" '
            f'unique="{int(p.unique)}">',
            f'<longdesc lang="en">{escape(p.longdesc)}</longdesc>',
            f'<shortdesc lang="en">{escape(p.shortdesc)}</shortdesc>',
            f'<content type="{p.kind}"{default}/>',
            "</parameter>",
        ]
    lines += ["</parameters>", "<actions>"]
    for a in spec.actions:
        extra = "" if a.interval is None else f' interval="{a.interval}s"'
        extra += "" if a.role is None else f' role="{a.role}"'
        lines.append(f'<action name="{a.name}" timeout="{a.timeout}s"{extra}/>')
    lines += ["</actions>", "</resource-agent>", ""]
    return "\n".join(lines)


# -- parameters ---------------------------------------------------------------------------

def parameters(spec: AgentSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The agent's parameters from OCF_RESKEY_* variables, defaults filled in."""
    values = {}
    for p in spec.parameters:
        value = environ.get(f"OCF_RESKEY_{p.name}")
        if value is None:
            value = p.default
        if value is not None:
            values[p.name] = value
    return values


def missing(spec: AgentSpec, values: Mapping[str, str]) -> list[str]:
    """Required parameters left unset or empty."""
    return [p.name for p in spec.parameters if p.required and not values.get(p.name, "").strip()]


def words(value: str) -> Sequence[str]:
    return value.split()
