"""`vigil resource`: start, stop, check and watch a resource group or one resource by hand.

What admins do today with `/etc/ha.d/resource.d/IPaddr 1.2.3.4 start`, for
any resource vigil knows, and for whole haresources groups (named by their
first resource, as heartbeat's ResourceManager names them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from vigil.agents.base import AgentConfigError, AgentResult, OcfStatus
from vigil.agents.factory import parse_resource
from vigil.agents.group import Group, GroupResult, Holding
from vigil.agents.monitor import AdminMarks, Decision, GroupMonitor, Verdict
from vigil.agents.options import AgentOptions, AgentPaths, StopFailurePolicy
from vigil.cli import Subparsers
from vigil.errors import UsageError, VigilError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "resource",
        help="start, stop, check or watch a resource group or a single resource",
        description=(
            "Act on a resource group (named by its first resource in haresources, e.g. "
            "'IPaddr::198.51.100.100/24/eth0') or on one resource written as in haresources "
            "('Filesystem::/dev/sdb1::/data::ext4', 'mysqld', 'ocf:heartbeat:Dummy'). "
            "Groups start left to right and stop right to left."
        ),
    )
    parser.add_argument("verb", choices=["start", "stop", "status", "monitor"])
    parser.add_argument("target", help="group key or resource")
    parser.add_argument("--dir", default="/etc/ha.d", help="configuration directory "
                        "(haresources is read from here; default /etc/ha.d)")
    parser.add_argument("--force", action="store_true",
                        help="act even if the cluster holds the group on another node, and "
                             "add addresses another host already answers for")
    parser.add_argument("--watch", action="store_true",
                        help="monitor: keep monitoring, restarting failed resources in place, "
                             "until the restart limit is exceeded (exit 1) or interrupted")
    parser.add_argument("--interval", type=float, help="seconds between monitor operations")
    parser.add_argument("--timeout", type=float, help="seconds each operation may take")
    parser.add_argument("--restart-limit", type=int, help="restarts in place within the window")
    parser.add_argument("--restart-window", type=float, help="seconds (default 300)")
    parser.add_argument("--stop-retries", type=int, help="retries of a failed stop (default 10)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what the agents do (key=value events) on stderr")
    parser.add_argument("--arp-count", type=int, help="gratuitous ARP rounds on start")
    parser.add_argument("--arp-interval", type=float, help="seconds between ARP rounds")
    parser.set_defaults(handler=cmd_resource)


# -- the cluster's view ----------------------------------------------------------------------------
def held_elsewhere(group_key: str, config_dir: Path) -> str | None:
    """The other node holding this group, if the running heartbeat daemon says one does.

    Without a running daemon there is nobody to ask: the command then acts as
    heartbeat's resource scripts do, on this node only.
    """
    from vigil.config import extension
    from vigil.control.client import request

    socket_path = extension.ExtensionConfig().control_socket
    vigil_cf = config_dir / "vigil.cf"
    try:
        if vigil_cf.exists():
            socket_path = extension.parse(vigil_cf.read_text(), str(vigil_cf)).control_socket
    except (OSError, VigilError):
        pass  # `vigil check` reports a broken vigil.cf; the default socket is still worth asking
    try:
        status = request(socket_path, "status", timeout=3.0)["status"]
    except VigilError:
        return None
    me = next((n["name"] for n in status.get("nodes", []) if n.get("self")), None)
    try:
        wanted = parse_resource(group_key)
    except VigilError:
        wanted = None
    for group in status.get("groups", []):
        try:
            same = group["key"] == group_key or parse_resource(group["key"]) == wanted
        except VigilError:
            same = False
        if same:
            others = [node for node in group.get("holder", []) if node != me]
            return others[0] if others else None
    return None


# -- configuration -----------------------------------------------------------------------
def read_haresources(path: Path) -> list[tuple[str, list[tuple[str, tuple[str, ...]]]]]:
    """(home node, [(name, args), ...]) per group, read by the config parser."""
    from vigil.config import haresources

    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise VigilError(f"{path}: {exc.strerror}") from None
    config = haresources.parse(text, str(path))  # ConfigError names file, line and problem
    return [
        (group.node, [(ref.name, ref.args) for ref in group.resources])
        for group in config.groups
    ]


def resolve_target(target: str, config_dir: Path, options: AgentOptions,
                   paths: AgentPaths) -> tuple[Group, bool]:
    """(group, is_a_configured_group): a haresources group, or one resource on its own."""
    wanted = parse_resource(target)
    for _node, resources in read_haresources(config_dir / "haresources"):
        if resources[0] == wanted:
            return Group.from_resources(resources, options, paths, name=target), True
    return Group.from_resources([wanted], options, paths, name=target), False


def options_from(args: argparse.Namespace) -> AgentOptions:
    values: dict[str, Any] = {}
    if args.interval is not None:
        values["monitor_interval"] = args.interval
    if args.timeout is not None:
        values.update(monitor_timeout=args.timeout, start_timeout=args.timeout,
                      stop_timeout=args.timeout)
    if args.restart_limit is not None:
        values["restart_limit"] = args.restart_limit
    if args.restart_window is not None:
        values["restart_window"] = args.restart_window
    if args.stop_retries is not None:
        values["stop_retries"] = args.stop_retries
    if args.arp_count is not None:
        values["arp_count"] = args.arp_count
    if args.arp_interval is not None:
        values["arp_interval"] = args.arp_interval
    if args.force:
        values["force_address"] = True
    return AgentOptions(on_stop_failure=StopFailurePolicy.BLOCK, **values)


# -- output ------------------------------------------------------------------------------
def _say(text: str) -> None:
    print(text, flush=True)


def _print_steps(result: GroupResult) -> None:
    for step in result.steps:
        _say(f"  {step.operation:<7} {step.resource}: {step.result.status.name.lower()}"
             + (f" ({step.result.message})" if step.result.message else ""))


def _exit_code(result: AgentResult) -> int:
    return int(result.status)


def _group_exit(group: Group, result: GroupResult) -> int:
    """0 on success; one resource: its own OCF code (as its script would); a group: 1."""
    if result.ok:
        return 0
    if len(group.agents) == 1:
        failed = [s.result for s in result.steps if s.operation == result.operation
                  and not s.result.ok]
        if failed:
            return _exit_code(failed[0])
    return 1


# -- the command -------------------------------------------------------------------------
def cmd_resource(args: argparse.Namespace) -> int:
    if args.verbose:
        from vigil.log import setup_logging
        setup_logging(stream=True)
    config_dir = Path(args.dir)
    options = options_from(args)
    paths = AgentPaths()
    try:
        group, configured = resolve_target(args.target, config_dir, options, paths)
    except AgentConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.verb in ("start", "stop") and configured and not args.force:
        holder = held_elsewhere(group.name, config_dir)
        if holder:
            raise UsageError(f"the cluster holds {group.name} on {holder}: refusing to "
                             f"{args.verb} it here (use --force to act anyway)")
    marks = AdminMarks(paths.state_dir)
    return asyncio.run(_run(args.verb, group, marks, args.watch))


async def _run(verb: str, group: Group, marks: AdminMarks, watch: bool) -> int:
    if verb == "start":
        for agent in group.agents:
            marks.clear(agent.label)
        result = await group.start()
        _print_steps(result)
        _say(result.reason)
        await group.settle()  # let gratuitous ARP bursts finish before the process exits
        return _group_exit(group, result)
    if verb == "stop":
        result = await group.stop()
        _print_steps(result)
        _say(result.reason)
        if result.released:
            for agent in group.agents:
                marks.mark(agent.label)
            return 0
        print(f"vigil: CRITICAL: {result.reason}", file=sys.stderr)
        return _group_exit(group, result)
    if verb == "status":
        status = await group.status()
        for label, outcome in status.resources:
            _say(f"  {label}: {outcome.status.name.lower()}"
                 + (f" ({outcome.message})" if outcome.message else ""))
        _say(f"{group.name}: {status.holding.value.upper()}")
        if len(status.resources) == 1:
            return _exit_code(status.resources[0][1])
        return {Holding.ALL: 0, Holding.NONE: 7}.get(status.holding, 1)
    # monitor
    if not watch:
        worst = AgentResult(OcfStatus.SUCCESS)
        for agent in group.agents:
            outcome = await agent.monitor(group.options.timeout_for(agent, "monitor"))
            _say(f"  {agent.label}: {outcome.status.name.lower()}"
                 + (f" ({outcome.message})" if outcome.message else ""))
            if not outcome.ok and worst.ok:
                worst = outcome
        return _exit_code(worst)
    return await _watch(group, marks)


async def _watch(group: Group, marks: AdminMarks) -> int:
    started = time.monotonic()

    def show(decision: Decision) -> None:
        if decision.verdict is not Verdict.HEALTHY:
            _say(f"[{time.monotonic() - started:9.3f}] {decision.verdict.value}: "
                 f"{decision.reason}")

    def restarted(label: str, result: GroupResult, seconds: float) -> None:
        state = "restarted" if result.ok else "restart FAILED"
        _say(f"[{time.monotonic() - started:9.3f}] {state}: {label} in {seconds:.3f} s")

    monitor = GroupMonitor(group, marks=marks, on_decision=show, on_restart=restarted)
    _say(f"monitoring {group.name}: " + ", ".join(
        f"{a.label} every {group.options.interval_for(a):g} s" for a in group.agents))
    decision = await monitor.run()
    _say(f"group {group.name} FAILED: {decision.reason}")
    released = await group.stop()
    _print_steps(released)
    _say(released.reason)
    return 1
