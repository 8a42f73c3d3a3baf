"""Load a whole configuration directory into one `ClusterConfig`, and check it as a set.

`/etc/ha.d` (or `--dir`) holds ha.cf, authkeys, haresources, the optional
vigil.cf and the ldirectord configs that haresources names; DRBD's files are
at /etc/drbd.conf (and what it includes). Each file is parsed by its module;
this module adds what only the set can tell (issue 3's list):

* the home node of every group is a `node` of ha.cf, and this host is one;
* every resource resolves to an agent (built-in, resource.d, init.d, OCF,
  systemd) and built-in agents get arguments they accept;
* authkeys is mode 600 and its methods are known;
* heartbeat's timing rules (in `hacf`) and start-up checks;
* an `ldirectord` resource has its config file (and every config its
  `execute=` lines start), which parses, and whose host names resolve;
* every DRBD resource named by `drbddisk::` exists and has an `on` section
  for this host;
* respawned programs exist (ipfail excepted: vigil does its job) and run as
  a known user;
* vigil.cf sections name agents and resources that haresources uses.

Everything the checks need from the machine comes through `HostFacts`, so
tests can check a configuration "as server5" in a temporary directory.

Public API: `ConfigPaths`, `HostFacts`, `ClusterConfig`, `CheckReport`,
`check(paths, facts)`, `load(paths, facts)` (raises `ConfigErrors`),
`ldirectord_config_name(ref)`.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import socket
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from vigil.agents.factory import builtin_argument_problem
from vigil.config import authkeys as authkeys_mod
from vigil.config import drbd as drbd_mod
from vigil.config import extension as extension_mod
from vigil.config import fence_agents
from vigil.config import hacf as hacf_mod
from vigil.config import haresources as haresources_mod
from vigil.config import ldirectord as ldirectord_mod
from vigil.config.base import (
    NO_JSON,
    ConfigErrors,
    Diagnostic,
    DiagnosticsView,
    FileUnreadable,
    FrozenMap,
    Severity,
)
from vigil.config.resolve import Resolver, SystemResolver
from vigil.errors import Location


@dataclass(frozen=True)
class ConfigPaths:
    """Where the files are. `ha_dir` is heartbeat's /etc/ha.d (`vigil check --dir`)."""

    ha_dir: str = "/etc/ha.d"
    drbd_conf: str = drbd_mod.DEFAULT_PATH
    #: BIRD's configuration, read when vigil.cf says `director_announce bird`
    bird_conf: str = "/etc/bird/bird.conf"

    @property
    def hacf(self) -> str:
        return os.path.join(self.ha_dir, "ha.cf")

    @property
    def authkeys(self) -> str:
        return os.path.join(self.ha_dir, "authkeys")

    @property
    def haresources(self) -> str:
        return os.path.join(self.ha_dir, "haresources")

    @property
    def vigil_cf(self) -> str:
        return os.path.join(self.ha_dir, "vigil.cf")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _local_interfaces() -> frozenset[str]:
    try:
        return frozenset(name for _, name in socket.if_nameindex())
    except OSError:
        return frozenset()


def _local_addresses() -> frozenset[str]:
    try:
        from vigil.kernel.netlink import iproute

        with iproute() as ipr:
            return frozenset(str(msg.get_attr("IFA_ADDRESS")) for msg in ipr.get_addr())
    except Exception:  # no netlink (unusual container): the ucast rule just keeps every line
        return frozenset()


@dataclass(frozen=True)
class HostFacts:
    """What the checks need to know about the machine they check for.

    `interfaces`/`local_addresses` of None mean "unknown" (checking for a host
    other than this one): the checks that need them are skipped.
    """

    hostname: str
    #: None: heartbeat's lookup, with resource.d inside the checked directory
    resolver: haresources_mod.ResourceResolver | None = None
    names: Resolver = field(default_factory=SystemResolver)
    interfaces: frozenset[str] | None = None
    local_addresses: frozenset[str] | None = None
    user_exists: Callable[[str], bool] = _user_exists
    executable: Callable[[str], bool] = lambda p: os.path.isfile(p) and os.access(p, os.X_OK)
    #: asks a fence agent `action=monitor` (agent, parameters -> None or what failed);
    #: None: not asked (checking for another host, or the caller cannot run agents)
    fence_monitor: Callable[[str, Mapping[str, str]], str | None] | None = None

    @classmethod
    def this_host(cls, hostname: str | None = None) -> HostFacts:
        """Facts of the machine we run on (`hostname` overrides `uname -n` only)."""
        own = os.uname().nodename
        if hostname is None or hostname.lower() == own.lower():
            return cls(hostname or own, interfaces=_local_interfaces(),
                       local_addresses=_local_addresses())
        return cls(hostname)


@dataclass(frozen=True)
class ClusterConfig:
    """Every file of the cluster, parsed, with defaults filled in."""

    hacf: hacf_mod.HaCf
    authkeys: authkeys_mod.AuthKeys
    haresources: haresources_mod.HaResources
    extension: extension_mod.ExtensionConfig = field(
        default_factory=extension_mod.ExtensionConfig)
    ldirectord: FrozenMap[str, ldirectord_mod.LdirectordConfig] = field(
        default_factory=FrozenMap)
    drbd: drbd_mod.DrbdConfig | None = None
    paths: ConfigPaths = field(default_factory=ConfigPaths, compare=False, metadata=NO_JSON)


@dataclass(frozen=True)
class CheckReport(DiagnosticsView):
    """What `vigil check` found: the best-effort config and every diagnostic."""

    config: ClusterConfig
    diagnostics: tuple[Diagnostic, ...]
    unreadable: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 clean (warnings allowed), 1 errors, 2 a required file could not be read."""
        if self.unreadable:
            return 2
        return 1 if self.errors else 0


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as exc:
        raise FileUnreadable(Location(path), f"cannot read: {exc.strerror}") from exc


def ldirectord_config_name(ref: haresources_mod.ResourceRef) -> str:
    """The config an `ldirectord[::NAME]` resource runs (ldirectord's default: ldirectord.cf)."""
    return ref.args[0] if ref.args else ldirectord_mod.DEFAULT_NAME


def _backend(vigil_cf: str) -> str:
    """vigil.cf's cluster_backend, looked at before ha.cf is judged (its rules depend on
    it); what else vigil.cf says is reported where vigil.cf is checked."""
    try:
        text = _read_text(vigil_cf)
    except FileUnreadable:
        return "heartbeat"
    return extension_mod.analyze(text, vigil_cf).model.cluster_backend


def check(paths: ConfigPaths | None = None, facts: HostFacts | None = None) -> CheckReport:
    """Parse every file and run the cross-file checks; never raises for bad input."""
    paths = paths or ConfigPaths()
    facts = facts or HostFacts.this_host()
    if facts.resolver is None:
        # heartbeat's resource directory lives in its configuration directory: a copy of
        # /etc/ha.d is checked with its own resource.d
        facts = dataclasses.replace(facts, resolver=haresources_mod.ResourceResolver(
            resource_dirs=(os.path.join(paths.ha_dir, "resource.d"),)))
    out: list[Diagnostic] = []
    unreadable: list[str] = []

    def unreadable_file(exc: FileUnreadable) -> None:
        out.append(Diagnostic(Severity.ERROR, exc.location, exc.message))
        unreadable.append(exc.location.path)

    if not os.path.isdir(paths.ha_dir):
        exc = FileUnreadable(Location(paths.ha_dir), "no such directory")
        unreadable_file(exc)
        empty = ClusterConfig(hacf_mod.HaCf(path=paths.hacf),
                              authkeys_mod.AuthKeys(path=paths.authkeys),
                              haresources_mod.HaResources(path=paths.haresources), paths=paths)
        return CheckReport(empty, tuple(out), tuple(unreadable))

    # ha.cf ------------------------------------------------------------------
    try:
        parsed_hacf = hacf_mod.analyze(_read_text(paths.hacf), paths.hacf)
        out.extend(parsed_hacf.diagnostics)
        hacf = parsed_hacf.model
        out.extend(hacf_mod.validate(hacf, _backend(paths.vigil_cf)))
        out.extend(hacf_mod.validate_for_host(hacf, facts.hostname))
        out.extend(_check_hacf_host(hacf, facts))
    except FileUnreadable as exc:
        unreadable_file(exc)
        hacf = hacf_mod.HaCf(path=paths.hacf)
        hacf_ok = False
    else:
        hacf_ok = True

    # authkeys ---------------------------------------------------------------
    try:
        parsed_keys = authkeys_mod.read(paths.authkeys)
        out.extend(parsed_keys.diagnostics)
        keys = parsed_keys.model
    except FileUnreadable as exc:
        unreadable_file(exc)
        keys = authkeys_mod.AuthKeys(path=paths.authkeys)

    # haresources ------------------------------------------------------------
    try:
        parsed_res = haresources_mod.analyze(_read_text(paths.haresources), paths.haresources)
        out.extend(parsed_res.diagnostics)
        resources = parsed_res.model
    except FileUnreadable as exc:
        unreadable_file(exc)
        resources = haresources_mod.HaResources(path=paths.haresources)
    if hacf_ok:
        out.extend(_check_groups(resources, hacf, facts))
    out.extend(_check_resources(resources, facts))

    # vigil.cf (optional) ------------------------------------------------------
    extension = extension_mod.ExtensionConfig(path=paths.vigil_cf)
    if os.path.exists(paths.vigil_cf):
        try:
            parsed_ext = extension_mod.analyze(_read_text(paths.vigil_cf), paths.vigil_cf)
            out.extend(parsed_ext.diagnostics)
            extension = parsed_ext.model
            out.extend(_check_extension(extension, resources, facts))
            if extension.notify_command and not facts.executable(extension.notify_command):
                out.append(Diagnostic(Severity.ERROR, Location(paths.vigil_cf),
                                      f"notify_command {extension.notify_command}: not an "
                                      "executable file"))
        except FileUnreadable as exc:
            unreadable_file(exc)
    out.extend(_check_rc_hooks(paths.ha_dir, extension))
    if extension.director_announce == "bird":
        out.extend(_check_bird(extension, paths.bird_conf))

    # ldirectord -----------------------------------------------------------------
    ldirectord: dict[str, ldirectord_mod.LdirectordConfig] = {}
    pending = [(ldirectord_config_name(ref), ref.location, paths.haresources, ref.label)
               for ref in resources.resources if ref.name == "ldirectord"]
    while pending:
        name, where, where_path, what = pending.pop(0)
        if name in ldirectord:
            continue
        found = ldirectord_mod.find_config(name, paths.ha_dir)
        if found is None:
            out.append(_at(where, where_path, Severity.ERROR,
                           f"{what}: ldirectord config {name} not found (looked for "
                           f"{os.path.join(paths.ha_dir, name)} and "
                           f"{os.path.join(paths.ha_dir, 'conf', name)})"))
            continue
        try:
            parsed_ld = ldirectord_mod.analyze(_read_text(found), found, facts.names)
        except FileUnreadable as exc:
            out.append(Diagnostic(Severity.ERROR, exc.location, exc.message))
            continue
        out.extend(parsed_ld.diagnostics)
        out.extend(_check_ldirectord(parsed_ld.model, facts))
        out.extend(_check_announce(parsed_ld.model, extension))
        ldirectord[name] = parsed_ld.model
        # `execute=OTHER` starts one more ldirectord instance for OTHER
        pending.extend((other, Location(found), found, f"execute={other}")
                       for other in parsed_ld.model.execute)

    # DRBD -------------------------------------------------------------------------
    drbd: drbd_mod.DrbdConfig | None = None
    drbd_refs = [r for r in resources.resources if r.name == "drbddisk"]
    if drbd_refs or os.path.exists(paths.drbd_conf):
        try:
            parsed_drbd = drbd_mod.read(paths.drbd_conf)
            out.extend(parsed_drbd.diagnostics)
            drbd = parsed_drbd.model
        except FileUnreadable as exc:
            if drbd_refs:
                for ref in drbd_refs:
                    out.append(_at(ref.location, paths.haresources, Severity.ERROR,
                                   f"{ref.label}: cannot read the DRBD configuration "
                                   f"{paths.drbd_conf}: {exc.message}"))
        if drbd is not None:
            out.extend(_check_drbd(drbd, drbd_refs, facts, paths))

    config = ClusterConfig(hacf, keys, resources, extension, FrozenMap(ldirectord), drbd, paths)
    return CheckReport(config, tuple(_with_source(d) for d in out), tuple(unreadable))


def load(paths: ConfigPaths | None = None, facts: HostFacts | None = None) -> ClusterConfig:
    """The cluster configuration, or `ConfigErrors` listing every problem (for daemons)."""
    report = check(paths, facts)
    if report.errors:
        raise ConfigErrors(report.diagnostics)
    return report.config


# ---------------------------------------------------------------------------
# Cross-file checks


def _at(location: Location | None, path: str, severity: Severity, message: str) -> Diagnostic:
    return Diagnostic(severity, location or Location(path), message, _source_line(location))


def _with_source(d: Diagnostic) -> Diagnostic:
    """Fill in the source line of a diagnostic made from a bare location."""
    if d.source_line is not None or d.location.line <= 0:
        return d
    return Diagnostic(d.severity, d.location, d.message, _source_line(d.location))


def _source_line(location: Location | None) -> str | None:
    """The text of a located line, read back for the caret display (None if unreadable)."""
    if location is None or location.line <= 0:
        return None
    try:
        with open(location.path, encoding="utf-8", errors="replace") as f:
            for number, text in enumerate(f, start=1):
                if number == location.line:
                    return text.rstrip("\r\n")
    except OSError:
        return None
    return None


def _check_hacf_host(hacf: hacf_mod.HaCf, facts: HostFacts) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if facts.interfaces is not None and hacf.watchdog:
        where = hacf.location_of("watchdog")
        if not os.path.exists(hacf.watchdog):
            out.append(Diagnostic(Severity.ERROR, where,
                                  f"watchdog {hacf.watchdog} does not exist (load a watchdog "
                                  "driver: modprobe softdog)"))
        elif not stat.S_ISCHR(os.stat(hacf.watchdog).st_mode):
            out.append(Diagnostic(Severity.WARNING, where,
                                  f"watchdog {hacf.watchdog} is not a character device: "
                                  "writing to it resets nothing"))
    if facts.interfaces is not None:
        for medium in hacf.heartbeat_media:
            if medium.interface not in facts.interfaces:
                out.append(_at(medium.location, hacf.path, Severity.ERROR,
                               f"{medium.kind}: interface {medium.interface} does not exist "
                               "on this host"))
    if facts.local_addresses is not None and hacf.heartbeat_media:
        used = hacf_mod.media_for_host(hacf, facts.local_addresses,
                                       lambda host: facts.names.addresses(host, 4))
        if not used:
            out.append(Diagnostic(Severity.ERROR, Location(hacf.path),
                                  "every heartbeat medium is a ucast to this host's own "
                                  "address: add the peer's address"))
    for entry in hacf.respawn:
        if entry.is_ipfail:
            continue
        if not facts.user_exists(entry.user):
            out.append(_at(entry.location, hacf.path, Severity.ERROR,
                           f"{'failfast' if entry.failfast else 'respawn'}: user {entry.user} "
                           "does not exist"))
        if not facts.executable(entry.path):
            out.append(_at(entry.location, hacf.path, Severity.ERROR,
                           f"{'failfast' if entry.failfast else 'respawn'}: {entry.path} is "
                           "not an executable file"))
    return out


def _check_groups(resources: haresources_mod.HaResources, hacf: hacf_mod.HaCf,
                  facts: HostFacts) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for group in resources.groups:
        if hacf.nodes and group.node not in hacf.nodes:
            out.append(_at(group.location, resources.path, Severity.ERROR,
                           f"home node {group.node} is not a node of ha.cf "
                           f"({', '.join(hacf.nodes)})"))
    return out


def _check_resources(resources: haresources_mod.HaResources,
                     facts: HostFacts) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for group in resources.groups:
        drbd_seen: list[str] = []
        for ref in group.resources:
            try:
                resolver = facts.resolver or haresources_mod.ResourceResolver()
                resolution = resolver.resolve(ref)
            except haresources_mod.ResolveError as problem:
                out.append(_at(ref.location, resources.path, Severity.ERROR, str(problem)))
                continue
            if resolution.kind is haresources_mod.AgentKind.BUILTIN:
                problem_text = builtin_argument_problem(ref)
                if problem_text is not None:
                    out.append(_at(ref.location, resources.path, Severity.ERROR, problem_text))
            if ref.name == "drbddisk":
                drbd_seen.append(ref.args[0] if ref.args else "all")
            if ref.name == "Filesystem" and ref.args and ref.args[0].startswith("/dev/drbd") \
                    and not drbd_seen and any(r.name == "drbddisk" for r in group.resources):
                out.append(_at(ref.location, resources.path, Severity.WARNING,
                               f"{ref.label} mounts a DRBD device before its drbddisk resource "
                               "made it primary: put drbddisk first"))
    return out


def _check_extension(extension: extension_mod.ExtensionConfig,
                     resources: haresources_mod.HaResources,
                     facts: HostFacts | None = None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    names = {r.name for r in resources.resources}
    labels = {r.label for r in resources.resources}
    for override in extension.agents.values():
        if override.name not in names:
            out.append(_at(override.location, extension.path, Severity.WARNING,
                           f"agent {override.name}: no haresources resource uses it"))
    for override in extension.resources.values():
        if override.name not in labels:
            out.append(_at(override.location, extension.path, Severity.WARNING,
                           f"resource {override.name}: not in haresources"))
    for problem in extension_mod.unsupported(extension):
        out.append(Diagnostic(Severity.WARNING, Location(extension.path), problem))
    for device in extension.fence_devices.values():
        if fence_agents.agent_path(device.agent) is None:
            out.append(_at(device.location, extension.path, Severity.ERROR,
                           f"fence {device.node}: fence agent {device.agent} not found (looked "
                           "in /usr/sbin, /sbin, /usr/local/sbin and PATH; Debian: apt-get "
                           "install fence-agents)"))
        elif facts is not None and facts.fence_monitor is not None:
            problem = facts.fence_monitor(device.agent, dict(device.params))
            if problem is not None:
                out.append(_at(device.location, extension.path, Severity.ERROR,
                               f"fence {device.node}: {problem}: this node could not fence "
                               f"{device.node}, and a takeover from it would wait for a fence "
                               "that cannot succeed"))
    return out


#: what the userspace proxy implements (vigil.lvs.schedulers; kept here so the
#: configuration layer does not import the director)
USERSPACE_SCHEDULERS = frozenset({"rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh"})


#: the hooks heartbeat 3.0.6 ships in /etc/ha.d/rc.d: its own plumbing, which vigil's
#: daemon does itself
STOCK_RC_HOOKS = frozenset({"ask_resources", "hb_takeover", "ip-request", "ip-request-resp",
                            "status"})


def _check_rc_hooks(ha_dir: str, extension: extension_mod.ExtensionConfig) -> list[Diagnostic]:
    """Hooks a user added to heartbeat's rc.d run no more: say so, and what runs instead."""
    directory = os.path.join(ha_dir, "rc.d")
    try:
        names = sorted(n for n in os.listdir(directory) if n not in STOCK_RC_HOOKS
                       and not n.startswith("."))
    except OSError:
        return []
    if not names:
        return []
    instead = (f"notify_command {extension.notify_command} runs on cluster events instead"
               if extension.notify_command else
               "set notify_command in vigil.cf to run a program on cluster events")
    return [Diagnostic(Severity.WARNING, Location(directory),
                       f"heartbeat's event hooks {', '.join(names)} are not run by vigil: "
                       f"{instead}")]


def _check_ldirectord(config: ldirectord_mod.LdirectordConfig,
                      facts: HostFacts) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for vs in config.virtuals:
        try:
            ldirectord_mod.resolve_virtual(vs, facts.names)
            ldirectord_mod.expand_reals(vs, facts.names)
        except ldirectord_mod.ResolutionError as problem:
            out.append(_at(vs.location, config.path, Severity.ERROR, str(problem)))
        if not vs.reals and vs.fallback is None:
            out.append(_at(vs.location, config.path, Severity.WARNING,
                           f"virtual service {vs.ident} has no real server and no fallback"))
        if vs.service == "oracle" and vs.checktype in (ldirectord_mod.CheckType.NEGOTIATE,
                                                       ldirectord_mod.CheckType.COMBINED):
            out.append(_at(vs.location, config.path, Severity.ERROR,
                           f"virtual service {vs.ident}: vigil has no oracle negotiate check "
                           "(ldirectord's needs DBD::Oracle); its real servers would always "
                           "be down: use checktype=connect, or an external check"))
        if vs.scheduler not in USERSPACE_SCHEDULERS:
            out.append(_at(vs.location, config.path, Severity.WARNING,
                           f"virtual service {vs.ident}: scheduler {vs.scheduler} runs only "
                           "with the ipvs backend (the kernel's IPVS module); the nftables "
                           "backend spreads connections by weight instead (as wrr) and the "
                           "userspace backend refuses it (it knows "
                           f"{', '.join(sorted(USERSPACE_SCHEDULERS))})"))
    if config.maintenancedir is not None and not os.path.isdir(config.maintenancedir):
        out.append(Diagnostic(Severity.WARNING, Location(config.path),
                              f"maintenance directory {config.maintenancedir} does not exist"))
    return out


def _check_announce(config: ldirectord_mod.LdirectordConfig,
                    extension: extension_mod.ExtensionConfig) -> list[Diagnostic]:
    """director_announce with NAT real servers: refused at start unless conntrackd syncs."""
    if extension.director_announce == "off" or extension_mod.conntrackd_syncs(
            extension.conntrackd_conf):
        return []
    return [_at(real.location, config.path, Severity.ERROR,
                f"virtual service {vs.ident}: real server {real.address} uses NAT (masq), "
                f"which active-active directors (director_announce {extension.director_announce}"
                f" in {extension.path}) cannot share without conntrack synchronisation: use "
                "gate or ipip, or name conntrackd's configuration (with a Sync section) in "
                "conntrackd_conf")
            for vs in config.virtuals for real in vs.reals
            if real.forwarding is ldirectord_mod.Forwarding.MASQ]


def _check_bird(extension: extension_mod.ExtensionConfig, bird_conf: str) -> list[Diagnostic]:
    """director_announce bird: BIRD's configuration must include vigil's routes and export
    them, or the announcements reach no router."""
    from vigil.director.speaker import BIRD_FILE, BIRD_PROTOCOLS

    where = Location(extension.path)
    try:
        text = _read_text(bird_conf)
    except FileUnreadable:
        return [Diagnostic(Severity.WARNING, where, f"director_announce bird: {bird_conf} "
                           "cannot be read: BIRD 2 must run on this director, its bird.conf "
                           f'including "{BIRD_FILE}"')]
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    if not any("include" in line and BIRD_FILE in line for line in lines):
        return [Diagnostic(Severity.WARNING, where, f"director_announce bird: {bird_conf} does "
                           f'not include "{BIRD_FILE}": the VIPs would reach no router')]
    if not any(name in line for line in lines for name in BIRD_PROTOCOLS.values()):
        return [Diagnostic(Severity.WARNING, where, f"director_announce bird: {bird_conf} "
                           "exports neither " + " nor ".join(BIRD_PROTOCOLS.values()) +
                           " (e.g. export where proto = \"vigil_announce4\"): the VIPs would "
                           "reach no router")]
    return []


def _check_drbd(drbd: drbd_mod.DrbdConfig, refs: Iterable[haresources_mod.ResourceRef],
                facts: HostFacts, paths: ConfigPaths) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for ref in refs:
        names = [ref.args[0]] if ref.args else [r.name for r in drbd.resources]
        if not ref.args and not drbd.resources:
            out.append(_at(ref.location, paths.haresources, Severity.ERROR,
                           f"{ref.label}: {paths.drbd_conf} defines no DRBD resource"))
        for name in names:
            res = drbd.resource(name)
            if res is None:
                out.append(_at(ref.location, paths.haresources, Severity.ERROR,
                               f"{ref.label}: DRBD resource {name} is not defined in "
                               f"{', '.join(drbd.files) or paths.drbd_conf}"))
                continue
            if res.host(facts.hostname) is None and not any(h.floating for h in res.hosts):
                listed = ", ".join(n for h in res.hosts for n in h.names)
                out.append(_at(res.location, drbd.files[0] if drbd.files else paths.drbd_conf,
                               Severity.ERROR,
                               f"DRBD resource {name} (used by {ref.label}) has no 'on "
                               f"{facts.hostname}' section; it names {listed}"))
    return out


__all__ = ["CheckReport", "ClusterConfig", "ConfigPaths", "HostFacts", "check",
           "ldirectord_config_name", "load"]
