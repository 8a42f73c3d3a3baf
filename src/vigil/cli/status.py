"""`vigil status`: nodes, links, ping nodes, who runs which group, rejected packets (cl_status)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vigil.cli import Subparsers
from vigil.control import DEFAULT_SOCKET


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the cluster as the heartbeat daemon sees it",
        description="Ask the running heartbeat daemon for the state of every node, link, "
        "ping node and group, and for its counters of rejected packets.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("verb", nargs="?", metavar="VERB",
                        help="a cl_status sub-command (hbstatus, listnodes, nodestatus NODE, "
                        "nodetype NODE, listhblinks NODE, hblinkstatus NODE LINK, rscstatus, "
                        "hbparameter -p NAME): heartbeat's output and exit codes")
    parser.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="/etc/ha.d",
                        help="configuration directory for hbparameter (default %(default)s)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help="control socket (default %(default)s)")
    parser.set_defaults(handler=cmd_status)


def _ago(seconds: float | None) -> str:
    return "never heard" if seconds is None else f"heard {seconds:.3f}s ago"


def render_etcd(status: dict[str, Any]) -> str:
    """cluster_backend etcd: the store, the homes seen up, each group's lease."""
    store = status["etcd"]
    lines = [f"cluster: etcd at {', '.join(store['endpoints'])} (prefix {store['prefix']}), "
             f"lease TTL {store['ttl']:g}s, stop {store['margin']:g}s before it ends",
             f"node {status['node']} (this node): "
             + ("standby" if status["standby"] else "active")
             + (", reaches etcd's majority" if store["reached"] else ", NOT holding its "
                "presence lease (etcd unreachable or no majority)")]
    for member in store.get("members", []):
        if member["up"]:
            lines.append(f"etcd member {member['endpoint']}: up"
                         + (", leader" if member["leader"] else "")
                         + f" (etcd {member['version']}, raft term {member['raft_term']})")
        else:
            lines.append(f"etcd member {member['endpoint']}: DOWN ({member['error']})")
    if store.get("last_error"):
        lines.append(f"last etcd error: {store['last_error']}")
    reach = status.get("ping_reach")
    if reach is not None:
        others = ", ".join(f"{n} {c}" for n, c in sorted(reach["nodes"].items()))
        unfit = sorted(n for n, fit in reach["fit"].items() if not fit)
        lines.append(f"ping nodes reached here: {reach['here']}; as each node says: "
                     f"{others or 'nothing yet'}"
                     + (f"; fewer than the best: {', '.join(unfit)}" if unfit else ""))
    for home, up in sorted(status["homes"].items()):
        lines.append(f"home node {home}: {'up' if up else 'down'}")
    for group in status["groups"]:
        held = group["holder"] or "nobody"
        left = "" if group["lease_left"] is None else f", lease {group['lease_left']:.1f}s left"
        lines.append(f"group {group['key']} (home {group['home'] or '-'}): held by {held}; "
                     f"here {group['phase']}" + (", running" if group["running"] else "")
                     + ("" if group["wants"] else ", left to the others") + left)
    return "\n".join(lines)


def render(status: dict[str, Any]) -> str:
    if status.get("backend") == "etcd":
        return render_etcd(status)
    lines = []
    timings = status["timings"]
    lines.append(f"cluster: phase {status['phase']}, auto_failback {status['auto_failback']}, "
                 f"keepalive {timings['keepalive']:g}s, deadtime {timings['deadtime']:g}s, "
                 f"warntime {timings['warntime']:g}s, initdead {timings['initdead']:g}s")
    for node in status["nodes"]:
        if node["type"] == "ping":
            lines.append(f"ping node {node['name']}: {node['status']}, "
                         f"{_ago(node['last_heard_ago'])}")
            continue
        if node.get("self"):
            lines.append(f"node {node['name']} (this node): {node['status']}, "
                         f"generation {node['generation']}")
        else:
            kind = "vigil" if node.get("vigil") else "heartbeat"
            lines.append(f"node {node['name']}: {node['status']}, "
                         f"{_ago(node['last_heard_ago'])} ({kind}, generation "
                         f"{node.get('generation') or '?'}, deadtime {node['deadtime']:g}s)")
        for link in node.get("links", []):
            extra = "" if node.get("self") else f", {_ago(link.get('last_heard_ago'))}"
            lines.append(f"  link {link['name']}: {link['status']}{extra}")
    if status.get("ping_reach") is not None:
        lines.append(f"ping nodes reached: {status['ping_reach']} here, "
                     f"{status.get('peer_ping_reach')} on the peer")
    for group in status["groups"]:
        holder = " and ".join(group["holder"]) or "nobody"
        lines.append(f"group {group['key']} (home {group['home']}): run by {holder}; "
                     f"here {group['state']}"
                     + (f", there {group['peer_state']}" if group["peer_state"] else "")
                     + (", being handed over" if group["handing_over"] else "")
                     + (", asked for" if group["asked_for"] else ""))
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(status["rejected"].items()))
    lines.append(f"rejected packets: {rejected}")
    lines.append(f"fencing: {status['fencing']}")
    return "\n".join(lines)


def cl_status(argv: list[str], socket: str = DEFAULT_SOCKET,
              directory: str = "/etc/ha.d") -> int:
    """Answer one cl_status sub-command as heartbeat 3.0.6 does (output and exit code)."""
    import sys
    from pathlib import Path

    from vigil import __version__
    from vigil.control.client import request
    from vigil.errors import VigilError
    from vigil.ha import clstatus

    status: dict[str, Any] | None
    try:
        status = request(socket, "status", timeout=5.0)["status"]
    except VigilError:
        status = None
    if status is not None and status.get("backend") == "etcd":
        sys.stderr.write("cl_status: vigil runs with cluster_backend etcd, which has no "
                         "heartbeat membership to report: use `vigil status`\n")
        return 1
    try:
        text = (Path(directory) / "ha.cf").read_text(errors="replace")
    except OSError:
        text = ""
    result = clstatus.answer(argv, status, clstatus.parameters(text, status),
                             f"vigil {__version__}")
    out, err = result.text()
    sys.stdout.write(out)
    sys.stderr.write(err)
    return result.code


def main_cl_status() -> None:
    """The `cl_status` program a package may install."""
    import sys
    sys.exit(cl_status(sys.argv[1:]))


def cmd_status(args: argparse.Namespace) -> int:
    from vigil.control.client import request

    if args.verb is not None:
        return cl_status([args.verb, *args.words], args.socket, args.dir)
    status = request(args.socket, "status")["status"]
    if args.json:
        print(json.dumps(status, indent=1, sort_keys=True))
    else:
        print(render(status))
    return 0
