"""`vigil volume`: drbdadm's verbs for vigil's replicated volumes.

Exit codes follow drbdadm/drbdsetup where scripts look at them (the drbddisk
agent does): 0 success; 10 the resource is not up here (or not defined for
this host), or a request drbdsetup refuses as a configuration error
(new-current-uuid while connected, attach); 11 the state change was
refused (promotion of an outdated or inconsistent disk, demotion of a
mounted device, a peer that is primary);
1 any other failure; 2 a bad command line; 3 the machine lacks something;
20 a verb vigil does not support. `-d`/`--dry-run` (before or after
the verb) says what it would do and does nothing (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vigil.cli import Subparsers, volume_boot, volume_dryrun
from vigil.cli.progress import SyncProgress, human_bytes
from vigil.errors import UsageError, VigilError
from vigil.metrics import parse_address
from vigil.replication import config as volume_config
from vigil.replication import control
from vigil.replication.blockstore import create_md
from vigil.replication.daemon import cleanup_stale, log_path, read_state
from vigil.replication.states import NotConfigured, StateChangeRefused
from vigil.runtime import spawn_detached, wait_gone

VERBS = {
    "create-md": "write fresh metadata on the backing disk (internal or external)",
    "up": "start replicating: attach the disk, create the device, connect to the peer",
    "down": "stop: demote (refused if the device is in use), disconnect, remove the device",
    "primary": "promote this node (--force: even with outdated or inconsistent data)",
    "secondary": "demote this node (refused while the device is mounted)",
    "connect": "connect to the peer (--discard-my-data: this node loses a split brain)",
    "disconnect": "drop the link to the peer and stay StandAlone",
    "status": "connection, roles, disk states, resync progress with rate and ETA",
    "role": "this node's and the peer's role, as drbdadm prints it (Primary/Secondary)",
    "cstate": "the connection state",
    "dstate": "the disk states (local/peer)",
    "verify": "online verify: compare checksums block by block, mark differences",
    "invalidate": "discard this node's data: full resync from the peer",
    "invalidate-remote": "discard the peer's data: full resync from this node to it",
    "outdate": "mark this node's data outdated (what a fence-peer handler asks for)",
    "resume-io": "let writes flow again after fencing resource-and-stonith froze them",
    "pause-sync": "pause the running resync (on either node) until resume-sync",
    "resume-sync": "let a resync paused here go on",
    "wait-sync": "wait until connected and in sync (for scripts and tests)",
    "wait-connect": "at boot: wait until connected, or for the startup section's timeout",
    "adjust": "run what the resource file now says: handlers, fencing, policies, timers and "
              "rates at once; protocol, secret and the like by reconnecting; refused (name it) "
              "for what needs down and up",
    "become-primary": "at boot: promote if the startup section's become-primary-on names "
                      "this node",
    "new-current-uuid": "start a new data generation; --clear-bitmap on two connected "
                        "fresh disks: both UpToDate without the initial sync",
    "detach": "let go of the backing disk and stay connected, diskless; the peer marks "
              "what is written meanwhile; a primary then serves its device through the "
              "peer (refused without an UpToDate peer: exit 11)",
    "attach": "take the backing disk again (or a new one after create-md) and resync "
              "from the peer what changed (exit 10 when attached already); a primary "
              "attaches while it runs, connected to an UpToDate peer (else exit 11), and "
              "reads what is not resynced yet from the peer",
    "resize": "after the backing disk grew on both nodes: grow the volume to the smaller "
              "of the two (online; the new blocks resync from the primary; then grow the "
              "file system, e.g. resize2fs, on the primary)",
}


def backend_options_after_verb(argv: list[str]) -> list[str]:
    """drbdadm 8.4's `-- OPTIONS VERB NAME` (`vigil volume -- --clear-bitmap
    new-current-uuid r0`, as DRBD's user guide writes it): the options after `--`
    go after the verb, where vigil's parser reads them. Other command lines are
    returned as they are."""
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is None or argv[command] != "volume":
        return argv
    start = command + 1
    if "--" not in argv[start:]:
        return argv
    dashes = argv.index("--", start)
    if any(a in VERBS for a in argv[start:dashes]):
        return argv  # `--` after the verb: argparse's own meaning
    verb = next((i for i in range(dashes + 1, len(argv)) if argv[i] in VERBS), None)
    if verb is None:
        return argv
    return [*argv[:dashes], argv[verb], *argv[dashes + 1:verb], *argv[verb + 1:]]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "volume",
        help="replicated volumes: DRBD's job (drbdadm's verbs)",
        description=(
            "Replicated block devices between two nodes, configured by DRBD resource "
            "files (/etc/drbd.conf, /etc/drbd.d/*.res). " + __doc__.split("\n\n", 1)[1]
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--config", help="DRBD configuration (default /etc/drbd.conf)")
    parser.add_argument("-d", "--dry-run", action="store_true",
                        help="say what the verb would do, do nothing (drbdadm -d)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in VERBS.items():
        sub = verbs.add_parser(verb, help=text, description=text)
        sub.add_argument("resource")
        sub.add_argument("-c", "--config", dest="sub_config", help=argparse.SUPPRESS)
        sub.add_argument("-d", "--dry-run", dest="sub_dry_run", action="store_true",
                         help=argparse.SUPPRESS)
        if verb == "primary":
            sub.add_argument("--force", action="store_true")
        if verb == "create-md":
            sub.add_argument("--force", action="store_true", help="overwrite metadata")
        if verb == "connect":
            sub.add_argument("--discard-my-data", action="store_true")
        if verb == "new-current-uuid":
            sub.add_argument("--clear-bitmap", action="store_true",
                             help="also empty the bitmap; connected, with both disks fresh: "
                                  "skip the initial sync")
        if verb == "status":
            sub.add_argument("--json", action="store_true")
        if verb == "resize":
            sub.add_argument("--assume-peer-has-space", action="store_true",
                             help="not connected: grow to this node's disk anyway (the peer "
                                  "must have grown its disk as much before they reconnect)")
        if verb == "up":
            sub.add_argument("--standalone", action="store_true",
                             help="attach without connecting (connect later)")
            sub.add_argument("--metrics-address", metavar="HOST:PORT",
                             default=os.environ.get("VIGIL_VOLUME_METRICS_ADDRESS"),
                             help="serve Prometheus /metrics at HOST:PORT plus the device's "
                                  "minor (/dev/drbd1: PORT+1; PORT alone: on loopback); "
                                  "VIGIL_VOLUME_METRICS_ADDRESS sets the default")
        if verb == "wait-sync":
            sub.add_argument("--timeout", type=float, default=60.0)
        if verb == "wait-connect":
            volume_boot.add_options(sub)
        sub.set_defaults(handler=run)


def _config(args: argparse.Namespace) -> volume_config.VolumeConfig:
    path = getattr(args, "sub_config", None) or args.config
    try:
        return volume_config.load(args.resource, path)
    except UsageError as exc:
        raise NotConfigured(str(exc)) from None


def _ask(cfg: volume_config.VolumeConfig, verb: str, **kw: Any) -> dict[str, Any]:
    answer = control.request(control.socket_path(cfg.run_dir), verb, **kw)
    if not answer.get("ok"):
        error = VigilError(f"{cfg.name}: {answer.get('message', 'failed')}")
        error.exit_code = int(answer.get("code", 1))
        raise error
    return answer


#: verbs that take `all` (drbdadm's: every resource of the configuration)
ALL_VERBS = frozenset({"up", "down", "primary", "secondary", "connect", "disconnect",
                       "status", "role", "cstate", "dstate", "wait-sync", "outdate", "resume-io",
                       "pause-sync", "resume-sync", "adjust",
                       "become-primary", "new-current-uuid", "detach", "attach", "resize"})


def _dry_run(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "dry_run", False) or getattr(args, "sub_dry_run", False))


def run(args: argparse.Namespace) -> int:
    if args.verb == "wait-connect" and not _dry_run(args):
        return _wait_connect(args)
    if args.resource == "all" and (args.verb in ALL_VERBS or _dry_run(args)):
        path = getattr(args, "sub_config", None) or args.config
        code = 0
        for name in volume_config.resource_names(path):
            try:
                code = max(code, run(argparse.Namespace(**{**vars(args), "resource": name})))
            except VigilError as exc:  # the others still run, as drbdadm does
                print(f"vigil: {exc}", file=sys.stderr)
                code = max(code, exc.exit_code)
        return code
    cfg = _config(args)
    verb = args.verb
    if _dry_run(args):
        path = getattr(args, "sub_config", None) or args.config
        for line in volume_dryrun.plan(
                verb, cfg, force=bool(getattr(args, "force", False)),
                standalone=bool(getattr(args, "standalone", False)),
                discard_my_data=bool(getattr(args, "discard_my_data", False)),
                clear_bitmap=bool(getattr(args, "clear_bitmap", False)),
                config_path=os.path.abspath(path) if path else None):
            print(line)
        return 0
    if verb == "create-md":
        sb = create_md(cfg.local.disk, cfg.local.meta_disk, cfg.local.meta_index,
                       cfg.al_extents, force=args.force, known_size_file=cfg.known_size_file)
        print(f"{cfg.name}: new metadata on {cfg.local.disk} "
              f"({cfg.local.meta_disk}), {sb.data_size} bytes of data")
        return 0
    if verb == "up":
        return _up(cfg, args)
    if verb == "down":
        return _down(cfg, args)
    if verb == "resize":
        reply = _ask(cfg, "resize", assume_peer_has_space=args.assume_peer_has_space)
        print(f"{cfg.name}: {reply['message']}")
        return 0
    if verb in ("detach", "attach"):
        reply = _ask(cfg, verb)
        print(f"{cfg.name}: {reply['message']}")
        return 0
    if verb == "status":
        status = _ask(cfg, "status")["status"]
        print(json.dumps(status, indent=1) if args.json else format_status(status))
        return 0
    if verb in ("role", "cstate", "dstate"):
        try:
            status = _ask(cfg, "status")["status"]
        except NotConfigured:
            if verb != "role":
                raise
            print("Unconfigured")  # what drbdadm role says of a resource that is down
            return 0
        print({"role": f"{status['role']}/{status['peer_role']}",
               "cstate": status["connection"] if status["replication"] in ("Off",
               "Established") else status["replication"],
               "dstate": f"{status['disk']}/{status['peer_disk']}"}[verb])
        return 0
    if verb == "wait-sync":
        return _wait_sync(cfg, args.timeout)
    if verb == "become-primary":
        if not volume_boot.becomes_primary_here(cfg):
            wanted = cfg.become_primary_on or "not set"
            print(f"{cfg.name}: not promoted here (become-primary-on: {wanted})")
            return 0
        _check_lease(cfg, force=False)
        answer = _ask(cfg, "primary", force=False)
        print(f"{cfg.name}: {answer.get('message') or 'promoted'} (become-primary-on "
              f"{cfg.become_primary_on})")
        return 0
    extra: dict[str, Any] = {}
    if verb == "primary":
        extra["force"] = args.force
        _check_lease(cfg, force=args.force)
    if verb == "connect":
        extra["discard_my_data"] = args.discard_my_data
    if verb == "new-current-uuid":
        extra["clear_bitmap"] = args.clear_bitmap
    if verb == "adjust":  # the daemon reads the same file, as this command found it
        path = getattr(args, "sub_config", None) or args.config
        extra["config"] = str(Path(path).resolve()) if path else None
    answer = _ask(cfg, verb, **extra)
    if answer.get("message"):
        print(f"{cfg.name}: {answer['message']}")
    return 0


def _check_lease(cfg: volume_config.VolumeConfig, force: bool) -> None:
    """cluster_backend etcd: only the holder of the volume's group lease promotes it."""
    from vigil.cluster.witness import lease_refusal

    refusal = lease_refusal(cfg.name, os.uname().nodename)
    if refusal is None:
        return
    if not force:
        raise StateChangeRefused(refusal)
    print(f"{cfg.name}: promoting without the group's lease (--force): "
          f"{refusal.split(': ', 1)[-1]}", file=sys.stderr)


def _wait_connect(args: argparse.Namespace) -> int:
    """Every named resource waited for at once (`all`: each with its own timeout)."""
    path = getattr(args, "sub_config", None) or args.config
    names = volume_config.resource_names(path) if args.resource == "all" else [args.resource]
    cfgs, code = [], 0
    for name in names:
        try:
            cfgs.append(_config(argparse.Namespace(**{**vars(args), "resource": name})))
        except NotConfigured as exc:
            if args.resource != "all":
                raise
            print(f"vigil: {exc}", file=sys.stderr)
            code = max(code, exc.exit_code)

    def limits(cfg: volume_config.VolumeConfig) -> volume_boot.StartupTimeouts:
        try:
            return volume_boot.timeouts(cfg, args)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    for cfg in cfgs:
        limits(cfg)  # a bad option is said before any waiting
    observe = volume_boot.observe_with(lambda cfg: _ask(cfg, "status", timeout=5)["status"])
    return max(code, volume_boot.wait_connect(cfgs, limits, observe))


def _up(cfg: volume_config.VolumeConfig, args: argparse.Namespace) -> int:
    socket = control.socket_path(cfg.run_dir)
    try:
        control.request(socket, "status", timeout=5)
        print(f"{cfg.name}: already up")
        return 0
    except NotConfigured:
        pass
    cleanup_stale(cfg)
    for warning in cfg.warnings:
        print(warning, file=sys.stderr)
    logfile = log_path(cfg.name)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "vigil.replication.daemon", cfg.name]
    config_path = getattr(args, "sub_config", None) or args.config
    if config_path:
        argv += ["-c", os.path.abspath(config_path)]
    if args.standalone:
        argv.append("--standalone")
    metrics = getattr(args, "metrics_address", None) or \
        os.environ.get("VIGIL_VOLUME_METRICS_ADDRESS")
    if metrics and metrics != "off":
        # said now, naming its source, rather than by a daemon that exits
        parse_address(metrics, "--metrics-address (or VIGIL_VOLUME_METRICS_ADDRESS)")
        argv += ["--metrics-address", metrics]
    process = spawn_detached(argv, logfile, append=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = logfile.read_text(errors="replace").strip().splitlines()[-3:]
            raise VigilError(f"{cfg.name}: the volume daemon exited ({process.returncode}): "
                             + " | ".join(tail))
        try:
            control.request(socket, "status", timeout=5)
            print(f"{cfg.name}: up, {cfg.local.device} ready (daemon {process.pid})")
            return 0
        except NotConfigured:
            time.sleep(0.05)
    process.terminate()
    raise VigilError(f"{cfg.name}: the volume daemon did not come up within 30 s")


def _down(cfg: volume_config.VolumeConfig, args: argparse.Namespace) -> int:
    state = read_state(cfg)
    try:
        _ask(cfg, "down")
    except NotConfigured:
        done = cleanup_stale(cfg)
        print(f"{cfg.name}: not running" + (f" (cleaned up: {', '.join(done)})" if done else ""))
        return 0
    pid = state.get("pid") if state else None
    if pid:
        wait_gone(pid, ("vigil",), 30, reaped=True)
    cleanup_stale(cfg)
    print(f"{cfg.name}: down")
    return 0


def _wait_sync(cfg: volume_config.VolumeConfig, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    progress = SyncProgress(sys.stdout, sys.stdout.isatty())
    while True:
        status = _ask(cfg, "status")["status"]
        if (status["connection"] == "Connected" and status["replication"] == "Established"
                and status["disk"] == "UpToDate" and status["peer_disk"] == "UpToDate"):
            progress.finish(cfg.name, "in sync")
            return 0
        progress.update(cfg.name, status.get("sync"))
        if time.monotonic() > deadline:
            raise VigilError(f"{cfg.name}: not in sync after {timeout:g} s: "
                             f"{status['connection']} {status['replication']} "
                             f"{status['disk']}/{status['peer_disk']}")
        time.sleep(0.05)


_bytes = human_bytes


def format_status(s: dict[str, Any]) -> str:
    """drbdadm status's shape: the resource, then the peer."""
    lines = [
        f"{s['name']} role:{s['role']}",
        f"  disk:{s['disk']}  device:{s.get('device')} ({s.get('loop')})  "
        f"size:{_bytes(s['size'])}  protocol:{s['protocol']}",
        f"  peer connection:{s['connection']} role:{s['peer_role']}",
        f"    replication:{s['replication']} peer-disk:{s['peer_disk']} "
        f"out-of-sync:{_bytes(s['out_of_sync'])}",
    ]
    sync = s.get("sync")
    if sync:
        eta = sync.get("eta")
        lines.append(
            f"    done:{sync['percent']:.1f}% ({_bytes(sync['total_bytes'] - sync['left_bytes'])}"
            f" of {_bytes(sync['total_bytes'])}) rate:{_bytes(sync['rate'])}/s "
            f"eta:{'-' if eta is None else f'{eta:.1f}s'}")
    verify = s.get("verify")
    if verify:
        state = "running" if verify.get("running") else "done"
        lines.append(f"    verify:{state} {verify.get('done_blocks', 0)}/"
                     f"{verify.get('total_blocks', 0)} blocks, out-of-sync "
                     f"{verify.get('out_of_sync', 0)} blocks")
    if s.get("sync_paused"):
        lines.append(f"    resync-suspended:{s['sync_paused']}")
    if s.get("split_brain"):
        lines.append(f"    split-brain: {s['split_brain']}")
    fence = s.get("last_fence")
    if isinstance(fence, dict):
        lines.append(f"  last fence-peer: exit {fence.get('exit')} ({fence.get('result')})")
    if s.get("io_suspended"):
        lines.append(f"  suspended:fencing ({s['io_suspended']}): writes wait; "
                     f"`vigil volume resume-io {s['name']}` lets them go")
    if s.get("reason"):
        lines.append(f"    last: {s['reason']}")
    return "\n".join(lines)
