"""`vigil heartbeat`: run the cluster daemon (heartbeat's job), or stop/reload/query it."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.cli import Subparsers
from vigil.control import DEFAULT_SOCKET
from vigil.errors import EnvironmentProblem, VigilError
from vigil.runtime import PidFile, detach

if TYPE_CHECKING:
    from vigil.ha.settings import HeartbeatSettings

DEFAULT_PIDFILE = "/run/vigil/heartbeat.pid"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "heartbeat",
        help="run the cluster daemon: membership, failover of haresources groups",
        description="Run the heartbeat daemon: watch the other node over every medium of "
        "ha.cf, run the groups of haresources and take them over when the peer dies. "
        "Speaks heartbeat 3's wire format. SIGTERM hands every group to the peer "
        "and exits; SIGHUP reloads ha.cf and authkeys. With vigil.cf's cluster_backend "
        "etcd, any number of nodes: each group runs where its lease in etcd is held.",
    )
    parser.add_argument("--dir", default="/etc/ha.d", help="configuration directory "
                        "(ha.cf, authkeys, haresources; default %(default)s)")
    parser.add_argument("-f", "--foreground", action="store_true",
                        help="stay in the foreground (logs to stderr too)")
    parser.add_argument("--node", help="this node's name (default: uname -n)")
    parser.add_argument("--pidfile", default=DEFAULT_PIDFILE, help="default %(default)s")
    parser.add_argument("--socket", default=None,
                        help=f"control socket (default: vigil.cf's control_socket, "
                        f"{DEFAULT_SOCKET})")
    parser.add_argument("--state-dir", default="/var/lib/heartbeat",
                        help="uuid and generation files (default %(default)s, shared with "
                        "heartbeat so its peers see a restart)")
    parser.add_argument("--group-driver", default="auto",
                        help="what runs the groups: auto, agents or test (default auto)")
    parser.add_argument("--logfile", help="log file (default: ha.cf's logfile)")
    parser.add_argument("--no-realtime", action="store_true",
                        help="ignore ha.cf's realtime setting (no SCHED_RR, no mlockall)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("-k", "--kill", action="store_true",
                      help="stop the running daemon gracefully (groups go to the peer)")
    what.add_argument("-r", "--reload", action="store_true",
                      help="make the running daemon re-read its configuration")
    what.add_argument("-s", "--status", action="store_true",
                      help="say whether the daemon runs (exit 0) or not (exit 3)")
    parser.set_defaults(handler=cmd_heartbeat)


def _pid_file(path: str) -> PidFile:
    return PidFile(path, name="vigil heartbeat")


def _running_pid(pidfile: str) -> int | None:
    return _pid_file(pidfile).running_pid()


def cmd_heartbeat(args: argparse.Namespace) -> int:
    if args.kill:
        return _stop(args.pidfile)
    if args.reload:
        pid = _running_pid(args.pidfile)
        if pid is None:
            raise EnvironmentProblem("vigil heartbeat is not running")
        os.kill(pid, signal.SIGHUP)
        print(f"vigil heartbeat (pid {pid}): reload requested")
        return 0
    if args.status:
        pid = _running_pid(args.pidfile)
        print(f"vigil heartbeat OK [pid {pid}] is running" if pid
              else "vigil heartbeat is stopped")
        return 0 if pid else 3
    return _run(args)


def _stop(pidfile: str, timeout: float = 600.0) -> int:
    pid = _running_pid(pidfile)
    if pid is None:
        print("vigil heartbeat is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    if _pid_file(pidfile).wait_gone(pid, timeout, reaped=True):
        print(f"vigil heartbeat (pid {pid}) stopped: groups handed to the peer")
        return 0
    raise VigilError(f"vigil heartbeat (pid {pid}) did not stop within {timeout:g}s")


def _run(args: argparse.Namespace) -> int:
    from vigil.ha.settings import read_settings

    if os.geteuid() != 0:
        raise EnvironmentProblem("vigil heartbeat needs root (raw sockets, addresses)")
    settings = read_settings(args.dir, me=args.node)  # errors before detaching: one clear line
    if _running_pid(args.pidfile) is not None:
        raise EnvironmentProblem(f"vigil heartbeat already runs ({args.pidfile})")
    if args.foreground:
        return _serve(args, settings, ready=None)
    return _detach(args, settings)


def _detach(args: argparse.Namespace, settings: Any) -> int:
    """Fork into the background; return once the daemon is up (or failed)."""
    pid = detach(lambda ready: _serve(args, settings, ready=ready))
    print(f"vigil heartbeat started (pid {pid})")
    return 0


#: where a detached daemon logs when syslog is unreachable and ha.cf names no file
FALLBACK_LOG = "/var/log/vigil/heartbeat.log"


def _serve(args: argparse.Namespace, settings: Any, ready: Any) -> int:
    from vigil.ha.daemon import HeartbeatDaemon, apply_realtime
    from vigil.ha.drivers import make_driver
    from vigil.log import plan_logging, setup_logging, stop_logging

    plan = plan_logging(foreground=args.foreground, logfile=args.logfile or settings.logfile,
                        debugfile=settings.debugfile, logfacility=settings.logfacility)
    setup_logging(logfile=plan.logfile, debug=settings.debug > 0,
                  stream=plan.stream, debugfile=plan.debugfile, facility=plan.facility,
                  ident="vigil-heartbeat", fallback_file=FALLBACK_LOG)
    pidfile = _pid_file(args.pidfile)
    pidfile.acquire()
    try:
        if settings.source is not None and settings.source.extension.cluster_backend == "etcd":
            return _serve_etcd(args, settings, ready)
        realtime = {"requested": False} if args.no_realtime else apply_realtime(settings)
        driver = make_driver(args.group_driver, settings)
        socket_path = args.socket or settings.control_socket or DEFAULT_SOCKET
        daemon = HeartbeatDaemon(settings, driver, socket_path=socket_path,
                                 state_dir=Path(args.state_dir), realtime=realtime,
                                 on_ready=ready)
        return asyncio.run(daemon.run())
    finally:
        pidfile.release()
        stop_logging()
        sys.stdout.flush()


def _serve_etcd(args: argparse.Namespace, settings: HeartbeatSettings,
                ready: Callable[[], None] | None) -> int:
    """vigil.cf's cluster_backend etcd: the groups follow their leases in etcd."""
    from vigil.ha.drivers import make_driver
    from vigil.ha.etcd_daemon import EtcdClusterDaemon

    driver = make_driver(args.group_driver, settings)
    socket_path = args.socket or settings.control_socket or DEFAULT_SOCKET
    daemon = EtcdClusterDaemon(settings, driver, socket_path=socket_path, on_ready=ready)
    return asyncio.run(daemon.run())
