"""Settings for agents, groups and monitoring, with safe defaults.

Heartbeat has no such settings (its agents take only haresources arguments);
vigil reads them from its extension file (vigil.cf). Everything here has a
default that works without any configuration; `None` means "the agent's own
default" (e.g. IPaddr sends 10 ARPs 0.5 s apart like heartbeat's, IPaddr2 5
ARPs 0.2 s apart like the OCF IPaddr2).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.agents.base import Agent
    from vigil.config.extension import ExtensionConfig


class StopFailurePolicy(enum.Enum):
    """What a node does when a resource will not stop (it may run twice otherwise)."""

    #: Keep the group marked as held, alarm loudly, never report it released (default).
    BLOCK = "block"
    #: Heartbeat's answer: reboot the node at once, so the peer may take over safely.
    REBOOT = "reboot"


class DrbdBackend(enum.Enum):
    AUTO = "auto"  # drbdadm when the DRBD kernel module is loaded, else `vigil volume`
    VIGIL = "vigil"
    DRBDADM = "drbdadm"


class FsckMode(enum.Enum):
    """OCF Filesystem's run_fsck: auto = only for file systems without a journal."""

    AUTO = "auto"
    FORCE = "force"
    NO = "no"


@dataclass(frozen=True)
class AgentPaths:
    """Where resources are looked up; injectable so tests and labs can point elsewhere."""

    #: Heartbeat's lookup order for `name` in haresources: resource.d, then init.d.
    script_dirs: tuple[Path, ...] = (Path("/etc/ha.d/resource.d"), Path("/etc/init.d"))
    ocf_root: Path = Path("/usr/lib/ocf")
    #: Exists only when systemd is PID 1 (sd_booted()).
    systemd_marker: Path = Path("/run/systemd/system")
    #: Pseudo-resource state (MailTo, Delay) and administrative stop markers.
    state_dir: Path = Path("/run/vigil/agents")
    proc: Path = Path("/proc")


@dataclass(frozen=True)
class AgentOptions:
    """Monitoring, timeouts, restart limits and per-agent knobs (vigil.cf)."""

    # -- operations ---------------------------------------------------------------------
    #: Seconds between monitor operations; None: the agent's default_interval.
    monitor_interval: float | None = None
    #: Seconds a monitor/status may take; None: the agent's default_timeout.
    monitor_timeout: float | None = None
    start_timeout: float | None = None
    stop_timeout: float | None = None
    #: Per resource (its label, e.g. `IPaddr::198.51.100.100/24`) or per agent name.
    intervals: Mapping[str, float] = field(default_factory=dict)
    timeouts: Mapping[str, float] = field(default_factory=dict)
    #: Monitor at all (vigil.cf `monitor`); what a failed monitor leads to.
    monitor: bool = True
    on_monitor_failure: str = "restart"  # restart | failover | ignore
    #: vigil.cf's `agent NAME` and `resource LABEL` sections: the settings each gives
    #: (policy keywords: monitor, restart_limit, failed_stop, ...); a resource section
    #: wins over its agent's, both over the global values here.
    agent_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    resource_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    # -- restarts and failures ------------------------------------------------------------
    #: Restarts in place allowed within `restart_window`; one more failure fails the group.
    restart_limit: int = 3
    restart_window: float = 300.0
    #: Heartbeat's HA_STOPRETRYMAX: a failed stop is retried this many times...
    stop_retries: int = 10
    #: ...this many seconds apart.
    stop_retry_delay: float = 1.0
    on_stop_failure: StopFailurePolicy = StopFailurePolicy.BLOCK

    # -- IPaddr, IPaddr2, SendArp ----------------------------------------------------------
    arp_count: int | None = None
    arp_interval: float | None = None
    #: Refuse to add an address another host answers for (ARP probe / DAD).
    duplicate_probe: bool = True
    duplicate_probe_timeout: float = 0.2
    #: Add the address even when another host answers for it.
    force_address: bool = False

    # -- Filesystem --------------------------------------------------------------------------
    fsck: FsckMode = FsckMode.AUTO
    #: Seconds users of a mount get after SIGTERM before SIGKILL, and between unmount tries.
    kill_grace: float = 2.0
    umount_retries: int = 4

    # -- drbddisk ----------------------------------------------------------------------------
    drbd_backend: DrbdBackend = DrbdBackend.AUTO
    #: heartbeat's drbddisk: primary tried 6 times, secondary 3 times, 1 s apart.
    drbd_start_tries: int = 6
    drbd_stop_tries: int = 3
    drbd_retry_delay: float = 1.0
    drbdadm: str = "drbdadm"
    #: How vigil runs itself for `vigil volume` and `vigil director`: this very
    #: interpreter and package, so a daemon started with a bare PATH (heartbeat's
    #: resource environment, systemd) never runs another vigil or none at all.
    vigil_command: tuple[str, ...] = (sys.executable, "-m", "vigil")

    # -- MailTo -----------------------------------------------------------------------------
    smtp_host: str = "localhost"
    smtp_port: int = 25
    mail_from: str | None = None  # None: root@<uname -n>

    def setting(self, agent: Agent, key: str, general: Any) -> Any:
        """One policy setting for this resource: its section, its agent's, or `general`."""
        for table, name in ((self.resource_settings, agent.label),
                            (self.agent_settings, agent.name)):
            value = table.get(name, {}).get(key)
            if value is not None:
                return value
        return general

    def monitored(self, agent: Agent) -> bool:
        return bool(self.setting(agent, "monitor", self.monitor))

    def stop_retries_for(self, agent: Agent) -> int:
        return int(self.setting(agent, "stop_retries", self.stop_retries))

    def stop_failure_for(self, agent: Agent) -> StopFailurePolicy:
        return StopFailurePolicy(self.setting(agent, "failed_stop", self.on_stop_failure.value))

    def interval_for(self, agent: Agent) -> float:
        return self._lookup(self.intervals, agent, self.monitor_interval, agent.default_interval)

    def timeout_for(self, agent: Agent, operation: str) -> float:
        chosen = {
            "start": self.start_timeout,
            "stop": self.stop_timeout,
        }.get(operation, self.monitor_timeout)
        return self._lookup(self.timeouts, agent, chosen, agent.default_timeout)

    @staticmethod
    def _lookup(table: Mapping[str, float], agent: Agent, general: float | None,
                default: float) -> float:
        for key in (agent.label, agent.name):
            if key in table:
                return table[key]
        return general if general is not None else default


def options_from_extension(config: ExtensionConfig) -> AgentOptions:
    """The `AgentOptions` for vigil's agents, groups and monitor.

    Global settings map one to one. Of the `agent`/`resource` sections,
    `monitor_interval` goes to `AgentOptions.intervals` and the timeouts to
    `AgentOptions.timeouts` (which applies one value to every operation of that
    resource: the largest timeout the section gives). Every section's settings
    also go whole to `AgentOptions.agent_settings`/`resource_settings`, where the
    monitor and the groups look up monitor, restart_limit, restart_window,
    on_monitor_failure, stop_retries and failed_stop per resource.
    """
    d = config.defaults
    intervals: dict[str, float] = {}
    timeouts: dict[str, float] = {}
    for override in (*config.agents.values(), *config.resources.values()):
        settings = override.settings
        if settings.get("monitor_interval") is not None:
            intervals[override.name] = settings["monitor_interval"]
        given = [settings[k] for k in ("monitor_timeout", "start_timeout", "stop_timeout")
                 if settings.get(k) is not None]
        if given:
            timeouts[override.name] = max(given)
    return AgentOptions(
        monitor_interval=d.monitor_interval,
        monitor_timeout=d.monitor_timeout,
        start_timeout=d.start_timeout,
        stop_timeout=d.stop_timeout,
        intervals=intervals,
        timeouts=timeouts,
        monitor=d.monitor,
        on_monitor_failure=d.on_monitor_failure,
        agent_settings={o.name: dict(o.settings) for o in config.agents.values()},
        resource_settings={o.name: dict(o.settings) for o in config.resources.values()},
        restart_limit=d.restart_limit,
        restart_window=d.restart_window,
        stop_retries=d.stop_retries,
        on_stop_failure=StopFailurePolicy(d.failed_stop),
        arp_count=config.garp_count,
        arp_interval=config.garp_interval,
        duplicate_probe=config.duplicate_probe,
        fsck=FsckMode(config.fsck),
        drbd_backend=DrbdBackend(config.drbd_backend),
        smtp_host=config.smtp_host,
        smtp_port=config.smtp_port,
        mail_from=config.mail_from,
    )
