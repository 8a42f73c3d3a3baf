"""`vigil director [-f ldirectord.cf] start|stop|restart|reload|status|standby|shutdown`:
ldirectord's job.

Exit codes follow LSB init scripts (status: 0 running, 1 dead with a pid file,
3 stopped), so heartbeat's haresources can use it as the `ldirectord` resource.
`standby` starts a warm standby (checks and table, no VIP traffic) that `start`
activates and `stop` returns to standby; `shutdown` ends a director in any role.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from vigil.cli import Subparsers
from vigil.config import extension
from vigil.director import control, daemon
from vigil.director.adapter import find_config, load_config
from vigil.director.role import Step, lsb_status, step_for
from vigil.director.speaker import SPEAKERS, speaker_for
from vigil.errors import UsageError, VigilError
from vigil.lvs.syncdaemon import SyncDaemon, SyncDaemonError, parse_setting
from vigil.metrics import MetricsAddress, parse_address
from vigil.runtime import spawn_detached

ACTIONS = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "status",
           "standby", "shutdown", "drain", "undrain")
START_WAIT = 15.0
#: heartbeat 3.0.6 reads a status's words before its exit code: "not ... running" is
#: stopped, and wins over "running" or "OK" anywhere (a check's "200 OK" below)
STANDBY_WORDS = "is not running as the active director: a warm standby"
STOP_WAIT = 15.0
#: the longest --announce-linger: a stop must end within STOP_WAIT
LINGER_MAX = 10.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "director",
        help="the load-balancing director (ldirectord's job): checks, table, data path",
        description=(
            "Run ldirectord's job from an ldirectord.cf: check the real servers and keep "
            "only healthy ones in the virtual services' table. CONFIG is a name looked "
            "up in /etc/ha.d and /etc/ha.d/conf, or a path (default ldirectord.cf). "
            "`standby` runs a warm standby (checks and table, forwarding nothing that is "
            "not addressed to this host); `start` activates it, `stop` makes it a standby "
            "again, `status` reports it stopped; `shutdown` ends it. With --announce, the "
            "director tells a BGP speaker which VIPs it serves (active-active directors "
            "behind an ECMP router); `drain` withdraws them while it keeps forwarding, "
            "`undrain` announces them again."
        ),
        usage="vigil director [-f CONFIG] [options] [CONFIG] "
              "start|stop|restart|reload|status|standby|shutdown|drain|undrain",
    )
    parser.add_argument("-f", "--config", help="the ldirectord.cf to run")
    parser.add_argument("--no-config", action="store_true",
                        help="run without a file: only a hand-kept table (vigil lvs edits)")
    parser.add_argument("--backend", default=os.environ.get("VIGIL_DIRECTOR_BACKEND", "auto"),
                        help="data path: auto (default: ipvs, else nftables as root, else "
                             "userspace), userspace, nftables or ipvs; "
                             "VIGIL_DIRECTOR_BACKEND sets the default")
    parser.add_argument("--metrics-address",
                        default=os.environ.get("VIGIL_DIRECTOR_METRICS_ADDRESS"),
                        metavar="HOST:PORT",
                        help="serve Prometheus /metrics there (PORT alone: on loopback); "
                             "VIGIL_DIRECTOR_METRICS_ADDRESS sets the default; off by default")
    parser.add_argument("--lvs-sync-daemon", metavar="'IF [id N] ...'",
                        help="run IPVS's connection sync daemon (ipvs backend): master while "
                             "active, backup on standby; keepalived's words: INTERFACE [id N] "
                             "[maxlen N] [port P] [ttl T] [group ADDRESS], or off; default: "
                             "lvs_sync_daemon in vigil.cf")
    parser.add_argument("--announce", choices=SPEAKERS, default=None,
                        help="announce the VIPs this director serves through a BGP speaker: "
                             "exabgp (run as ExaBGP's API process, with -d: commands on "
                             "stdout); bird (with -d: static routes in /etc/bird/"
                             "vigil-announce.conf, which bird.conf includes, then birdc "
                             "configure); default: director_announce in "
                             "vigil.cf, else off")
    parser.add_argument("--announce-holddown", type=float, default=None, metavar="SECONDS",
                        help="a VIP withdrawn for want of a healthy real server comes back "
                             "only this long after (default: announce_holddown in "
                             "vigil.cf, else 0)")
    parser.add_argument("--announce-linger", type=float, default=None, metavar="SECONDS",
                        help="on stop, keep forwarding this long after the withdrawals, "
                             "while the routers move the flows away (default: "
                             "announce_linger in vigil.cf, else 0)")
    parser.add_argument("--vigil-cf", default=extension.DEFAULT_PATH, metavar="PATH",
                        help=f"vigil.cf for the announce and lvs_sync_daemon settings (default: "
                             f"{extension.DEFAULT_PATH}, if it exists)")
    parser.add_argument("-d", "--foreground", action="store_true",
                        help="stay in the foreground and log to stderr")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument("words", nargs="+", metavar="[CONFIG] ACTION")
    parser.set_defaults(handler=main)


def _parse(args: argparse.Namespace) -> tuple[Path | None, str]:
    words = list(args.words)
    if len(words) == 2 and words[0] in ACTIONS and words[1] not in ACTIONS:
        words.reverse()  # `vigil director start CONFIG` as well as ldirectord's order
    action = words.pop()
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})")
    if len(words) > 1:
        raise UsageError("at most one CONFIG before the action")
    name = args.config or (words[0] if words else None)
    if args.no_config:
        if name:
            raise UsageError("--no-config and a CONFIG exclude each other")
        return None, action
    return find_config(name).resolve(), action


def main(args: argparse.Namespace) -> int:
    config_path, action = _parse(args)
    # ldirectord's execute=OTHER: the same action for OTHER's instance (and its own)
    if action != "status":
        for child in _executed(config_path, {config_path} if config_path else set()):
            child_args = argparse.Namespace(**{**vars(args), "config": str(child),
                                               "words": [action], "foreground": False,
                                               # one address serves one instance
                                               "metrics_address": None})
            code = _run(child, action, child_args)
            if code != 0:
                print(f"vigil director {child.name} {action}: exit {code}", file=sys.stderr)
    return _run(config_path, action, args)


def _executed(config_path: Path | None, seen: set[Path]) -> list[Path]:
    """The configs named by execute= lines, followed transitively, each once."""
    if config_path is None:
        return []
    from vigil.config import ldirectord as cf

    try:
        model = cf.parse(config_path.read_text(), str(config_path))
    except (OSError, VigilError):
        return []  # the action on the config itself reports the problem
    found: list[Path] = []
    for name in model.execute:
        child = find_config(name).resolve()
        if child in seen:
            continue
        seen.add(child)
        found.append(child)
        found.extend(_executed(child, seen))
    return found


def _run(config_path: Path | None, action: str, args: argparse.Namespace) -> int:
    instance = daemon.instance_name(config_path)
    if action == "status":
        return status(instance, config_path, args.json)
    if action in ("stop", "standby", "shutdown") or (action == "start" and not args.foreground):
        return _role_action(config_path, action, args)
    if action in ("reload", "force-reload"):
        return reload(instance)
    if action in ("drain", "undrain"):
        return drain(instance, action == "drain")
    if action in ("restart", "try-restart"):
        if action == "try-restart" and _running_pid(instance) is None:
            return 0
        stop(instance)
        return start(config_path, args)
    return start(config_path, args)


def _role_action(config_path: Path | None, action: str, args: argparse.Namespace) -> int:
    """start/stop/standby/shutdown for a director that may be a warm standby."""
    instance = daemon.instance_name(config_path)
    step = step_for(action, daemon.read_state(instance))
    if step is Step.SPAWN_ACTIVE:
        return start(config_path, args)
    if step is Step.SPAWN_STANDBY:
        return start(config_path, args, standby=True)
    if step is Step.TERMINATE:
        return stop(instance)
    if step in (Step.ACTIVATE, Step.DEACTIVATE):
        command = "activate" if step is Step.ACTIVATE else "deactivate"
        control.request(instance, {"command": command, "resident": action == "standby"},
                        timeout=STOP_WAIT)
        print(f"vigil director {instance} "
              + ("is active" if step is Step.ACTIVATE else "is a warm standby"))
        return 0
    word = {"start": "is already running", "standby": "is already a warm standby"}
    print(f"vigil director {instance} {word.get(action, 'is not running')}")
    return 0


def _running_pid(instance: str) -> int | None:
    return daemon.pid_file(instance).running_pid()


def start(config_path: Path | None, args: argparse.Namespace, standby: bool = False) -> int:
    instance = daemon.instance_name(config_path)
    logfile = None
    foreground = args.foreground
    if config_path is not None:
        config = load_config(config_path)  # errors now, before any daemon starts
        if config.logfile:
            # ldirectord: a path is a file, anything else a syslog facility
            logfile = (config.logfile if config.logfile.startswith("/")
                       else f"{daemon.SYSLOG_PREFIX}{config.logfile}")
        foreground = foreground or config.supervised  # supervised=yes: stay in front
    from vigil.director.backends import choose

    backend_class = choose(args.backend)
    metrics = _metrics_address(args)
    vigil_cf = _vigil_cf(args)
    sync_text, sync = _sync_daemon_setting(args, vigil_cf)
    announce, holddown, conntrack_sync, linger = _announce_settings(args, vigil_cf)
    if announce == "exabgp" and not foreground:
        raise UsageError("--announce exabgp runs the director as the speaker's process, "
                         "in the foreground: add -d (and start it from the speaker's "
                         "configuration)")
    if announce == "bird" and not foreground:
        raise UsageError("--announce bird needs the director in the foreground: add -d (as "
                         "its systemd unit runs it)")
    if foreground:
        return daemon.run_daemon(config_path, backend_class(), logfile,
                                 debug=bool(os.environ.get("VIGIL_DEBUG")),
                                 metrics_address=metrics, standby=standby,
                                 speaker=speaker_for(announce), holddown=holddown,
                                 conntrack_sync=conntrack_sync, linger=linger, sync=sync)
    pid = _running_pid(instance)
    if pid is not None:
        print(f"vigil director {instance} is already running with pid {pid}")
        return 0
    daemon.RUN_DIR.mkdir(parents=True, exist_ok=True)
    startup_log = daemon.RUN_DIR / f"director.{instance}.out"
    argv = [sys.executable, "-m", "vigil.director.child", backend_class.name, logfile or "",
            str(config_path) if config_path else "", str(metrics) if metrics else "",
            "standby" if standby else "active", sync_text or ""]
    child = spawn_detached(argv, startup_log)
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            text = startup_log.read_text(errors="replace").strip().splitlines()
            detail = text[-1] if text else f"exit status {child.returncode}"
            raise VigilError(f"director {instance} did not start: {detail}")
        try:
            control.request(instance, {"command": "status"}, timeout=1.0)
            print(f"vigil director {instance} started with pid {child.pid}"
                  + (" as a warm standby" if standby else ""))
            return 0
        except VigilError:
            time.sleep(0.05)
    raise VigilError(f"director {instance} did not answer within {START_WAIT:g} s")


def _vigil_cf(args: argparse.Namespace) -> extension.ExtensionConfig | None:
    """--vigil-cf (default /etc/ha.d/vigil.cf) read once, if it exists; one that does not
    parse is an error naming its line."""
    path = Path(getattr(args, "vigil_cf", None) or extension.DEFAULT_PATH)
    if not path.exists():
        return None
    try:
        content = path.read_text()
    except OSError as exc:
        raise VigilError(f"{path}: cannot read: {exc.strerror}") from None
    return extension.parse(content, str(path))


def _sync_daemon_setting(args: argparse.Namespace, vigil_cf: extension.ExtensionConfig | None
                         ) -> tuple[str | None, SyncDaemon | None]:
    """--lvs-sync-daemon, else vigil.cf's lvs_sync_daemon: its words (for the detached
    daemon's argv) and what they say; (None, None): no sync daemon."""
    text = getattr(args, "lvs_sync_daemon", None)
    if text is None and vigil_cf is not None:
        text = vigil_cf.lvs_sync_daemon
    if text is None or text.strip() == "off":
        return None, None
    try:
        sync = parse_setting(text)
    except SyncDaemonError as exc:
        raise UsageError(f"--lvs-sync-daemon: {exc}") from None
    return " ".join(text.split()), sync


def _metrics_address(args: argparse.Namespace) -> MetricsAddress | None:
    """--metrics-address, else VIGIL_DIRECTOR_METRICS_ADDRESS; `off` or empty: none."""
    text = getattr(args, "metrics_address", None)
    if not text or text == "off":
        return None
    return parse_address(text, "--metrics-address (or VIGIL_DIRECTOR_METRICS_ADDRESS)")


def _announce_settings(args: argparse.Namespace, vigil_cf: extension.ExtensionConfig | None
                       ) -> tuple[str, float, bool, float]:
    """--announce, --announce-holddown and --announce-linger, else vigil.cf's
    director_announce, announce_holddown and announce_linger (a vigil.cf that does not
    parse is an error, with its line); and whether conntrackd_conf names a conntrackd
    configuration with a Sync section."""
    announce = getattr(args, "announce", None)
    holddown = getattr(args, "announce_holddown", None)
    linger = getattr(args, "announce_linger", None)
    sync = False
    if vigil_cf is not None:
        announce = vigil_cf.director_announce if announce is None else announce
        holddown = vigil_cf.announce_holddown if holddown is None else holddown
        linger = vigil_cf.announce_linger if linger is None else linger
        sync = extension.conntrackd_syncs(vigil_cf.conntrackd_conf)
    if holddown is not None and not 0 <= holddown <= 86400:
        raise UsageError("--announce-holddown (announce_holddown) takes 0 to 86400 seconds")
    if linger is not None and not 0 <= linger <= LINGER_MAX:
        raise UsageError(f"--announce-linger (announce_linger) takes 0 to {LINGER_MAX:g} "
                         "seconds")
    return announce or "off", holddown or 0.0, sync, linger or 0.0


def drain(instance: str, on: bool) -> int:
    """Withdraw (or announce again) this director's VIPs; forwarding goes on."""
    if _running_pid(instance) is None:
        print(f"vigil director {instance} is not running", file=sys.stderr)
        return 7
    answer = control.request(instance, {"command": "drain" if on else "undrain"},
                             timeout=STOP_WAIT)
    if answer.get("announce") is None:
        print(f"vigil director {instance} announces nothing (no --announce)")
        return 0
    print(f"vigil director {instance} " + ("is draining: its VIPs are withdrawn" if on
                                           else "announces its VIPs again"))
    return 0


def stop(instance: str) -> int:
    pid = _running_pid(instance)
    if pid is None:
        print(f"vigil director {instance} is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    if daemon.pid_file(instance).wait_gone(pid, STOP_WAIT):
        print(f"vigil director {instance} stopped")
        return 0
    raise VigilError(f"director {instance} (pid {pid}) did not stop within {STOP_WAIT:g} s")


def reload(instance: str) -> int:
    pid = _running_pid(instance)
    if pid is None:
        print(f"vigil director {instance} is not running", file=sys.stderr)
        return 7
    os.kill(pid, signal.SIGHUP)
    print(f"vigil director {instance} reloading")
    return 0


def status(instance: str, config_path: Path | None, as_json: bool) -> int:
    pid = _running_pid(instance)
    if pid is None:
        stale = daemon.Paths(instance).pid.exists()
        print(f"vigil director for {config_path or instance} is stopped"
              + (" (stale pid file)" if stale else ""))
        return 1 if stale else 3
    code = lsb_status(daemon.read_state(instance))
    try:
        answer = control.request(instance, {"command": "status"}, timeout=5.0)
    except VigilError as exc:
        what = "is running" if code == 0 else STANDBY_WORDS
        print(f"vigil director for {config_path or instance} {what} with pid {pid} "
              f"but does not answer: {exc}")
        return code
    if as_json:
        print(json.dumps(answer, indent=2))
        return code
    if code != 0:
        print(f"vigil director for {config_path or instance} {STANDBY_WORDS} "
              f"with pid {pid} (backend {answer['backend']}, {answer['checks']} checks)")
    else:
        print(f"vigil director for {config_path or instance} is running with pid {pid} "
              f"(backend {answer['backend']}, {answer['checks']} checks)")
    for row in answer["health"]:
        extra = " maintenance" if row["maintenance"] else ""
        print(f"  {row['service']} -> {row['real']}: {row['state']}{extra}"
              + (f" ({row['message']})" if row["message"] else ""))
    announce = answer.get("announce")
    if announce:
        print(f"  announcing through {announce['speaker']}"
              + (" (draining)" if announce["draining"] else "") + ":")
        for row in announce["vips"]:
            word = "announced" if row["announced"] else "withdrawn"
            print(f"    {row['prefix']}: {word} ({row['cause']})")
    return code
