"""`vigil volume wait-connect` and `become-primary`: what DRBD's init script does after `up all`.

The boot path of the vigil-volumes unit is `up all`, then `wait-connect all`
(block until every resource is connected or its startup timeout passed:
`vigil.replication.wfc` decides), then `become-primary all` (promote where
`become-primary-on` names this host or `both`). Heartbeat starts after it, so
it never promotes a disk before the peer had the chance to say its data is newer.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vigil.replication.config import VolumeConfig
from vigil.replication.states import NotConfigured
from vigil.replication.wfc import ConnectWait, StartupTimeouts, WaitKind

#: how often the connection state is asked while waiting
POLL_INTERVAL = 0.1
#: a line every so often while waiting, so a console shows the boot is not hung
PROGRESS_EVERY = 10.0

#: one resource's state as the wait needs it: connection, last reason, wait kind, why
Observed = tuple[str, str, WaitKind, str]


def add_options(sub: argparse.ArgumentParser) -> None:
    """drbdsetup's wait options; each overrides the resource's startup section."""
    sub.add_argument("--wfc-timeout", type=float, help="seconds (0: forever)")
    sub.add_argument("--degr-wfc-timeout", type=float, help="seconds (0: forever)")
    sub.add_argument("--outdated-wfc-timeout", type=float, help="seconds (0: forever)")
    sub.add_argument("--wait-after-sb", action="store_true", default=None,
                     help="keep waiting when the link gives up (split brain)")


def timeouts(cfg: VolumeConfig, args: argparse.Namespace) -> StartupTimeouts:
    given = {"wfc": args.wfc_timeout, "degraded": args.degr_wfc_timeout,
             "outdated": args.outdated_wfc_timeout, "wait_after_sb": args.wait_after_sb}
    for key, option in (("wfc", "wfc-timeout"), ("degraded", "degr-wfc-timeout"),
                        ("outdated", "outdated-wfc-timeout")):
        if given[key] is not None and given[key] < 0:
            raise ValueError(f"--{option} must not be negative")
    return dataclasses.replace(cfg.startup, **{k: v for k, v in given.items() if v is not None})


@dataclass
class _Waiting:
    cfg: VolumeConfig
    wait: ConnectWait | None = None
    last_said: float = 0.0
    code: int | None = None


def wait_connect(cfgs: list[VolumeConfig], limits: Callable[[VolumeConfig], StartupTimeouts],
                 observe: Callable[[VolumeConfig], Observed],
                 now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 say: Callable[[str], None] = print) -> int:
    """Wait for every resource at once, each with its own timeout; the worst exit code."""
    started = now()
    waiting = [_Waiting(cfg) for cfg in cfgs]
    while True:
        moment = now()
        for item in waiting:
            if item.code is not None:
                continue
            name = item.cfg.name
            try:
                connection, reason, kind, why = observe(item.cfg)
            except NotConfigured as exc:
                say(f"{name}: {exc}; not waiting")
                item.code = exc.exit_code
                continue
            if item.wait is None:
                item.wait = ConnectWait(kind, limits(item.cfg), started)
                say(f"{name}: {item.wait.describe()}: {why}; peer {item.cfg.peer.host} "
                    f"{item.cfg.peer.address}:{item.cfg.peer.port}")
                item.last_said = moment
            verdict = item.wait.observe(moment, connection, reason)
            if verdict.done:
                say(f"{name}: {verdict.reason}")
                item.code = verdict.exit_code
            elif moment - item.last_said >= PROGRESS_EVERY:
                say(f"{name}: still {item.wait.describe()}: {verdict.reason}")
                item.last_said = moment
        pending = [item for item in waiting if item.code is None]
        if not pending:
            return max((item.code or 0 for item in waiting), default=0)
        wake = min(item.wait.next_check(moment, POLL_INTERVAL) for item in pending
                   if item.wait is not None)
        sleep(max(0.0, wake - now()))


def observe_with(ask: Callable[[VolumeConfig], dict[str, Any]]) \
        -> Callable[[VolumeConfig], Observed]:
    """The observation from the daemon's status (`ask` = the control socket's `status`)."""
    def observe(cfg: VolumeConfig) -> Observed:
        status = ask(cfg)
        kind = WaitKind(status.get("wait_kind", WaitKind.DEFAULT.value))
        return (status["connection"], status.get("reason", ""), kind,
                status.get("wait_why", ""))
    return observe


def becomes_primary_here(cfg: VolumeConfig) -> bool:
    """`become-primary-on` names this node (its `on` name, or the short form) or `both`."""
    wanted = cfg.become_primary_on
    if not wanted:
        return False
    return wanted == "both" or wanted in (cfg.local.host, cfg.local.host.split(".")[0])
