"""`vigil lvs`: the LVS table in ipvsadm's words.

`vigil lvs list [-n] [--stats|--rate] [--exact] [--sort|--nosort] [--json]`
prints the running directors' table in `ipvsadm -L -n`'s layout; `-L -c` their
connections, `-L --timeout` their connection timeouts. `vigil lvs -A|-E|-D
-t|-u|-f SERVICE ...` and `-a|-e|-d ... -r SERVER` edit a hand-kept table, as
the seed's ipvsadm script does; without a running director the first edit
starts one for it. `-S` prints the table as ipvsadm rules, `-R` applies such
rules from stdin (checked whole first: all or nothing), `-Z` zeroes counters,
`--set TCP TCPFIN UDP` sets connection timeouts where the data path has them.
`--start-daemon master|backup --mcast-interface IF [--syncid N]` and
`--stop-daemon` run IPVS's connection sync daemon (IPVS backend only),
`-L --daemon` lists it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from vigil.cli import Subparsers
from vigil.control.server import MAX_REQUEST
from vigil.director import codec, control, daemon
from vigil.errors import UsageError, VigilError
from vigil.lvs import rules
from vigil.lvs.operations import DeleteService, Operation
from vigil.lvs.syncdaemon import SyncDaemon, SyncDaemonError, SyncState
from vigil.lvs.table import Forward, Protocol

HEADER = "IP Virtual Server version 1.2.1 (size=4096)"
#: the longest timeout --set takes, in seconds
MAX_TIMEOUT = daemon.MAX_TIMEOUT


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "lvs",
        help="the LVS table: list it like ipvsadm -L -n, edit it like ipvsadm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="vigil lvs list [-n] [--stats|--rate] [--exact] [--sort|--nosort] [--json]\n"
              "       vigil lvs -L -c [-n] | -L --timeout\n"
              "       vigil lvs -A|-E -t|-u VIP:PORT | -f MARK [-s SCHED] [-p [SECONDS]] "
              "[-M MASK] [-b FLAGS] [-o]\n"
              "       vigil lvs -D -t|-u|-f SERVICE\n"
              "       vigil lvs -a|-e -t|-u|-f SERVICE -r RIP[:PORT] [-g|-m|-i] [-w WEIGHT] "
              "[-x N] [-y N]\n"
              "       vigil lvs -d -t|-u|-f SERVICE -r RIP[:PORT]\n"
              "       vigil lvs -C | -S [-n] | -R < RULES | -Z [-t|-u|-f SERVICE]\n"
              "       vigil lvs --set TCP TCPFIN UDP\n"
              "       vigil lvs --start-daemon master|backup --mcast-interface IF [--syncid N] "
              "[--sync-maxlen N] [--mcast-group A] [--mcast-port P] [--mcast-ttl T]\n"
              "       vigil lvs --stop-daemon master|backup | -L --daemon",
    )
    parser.add_argument("verb", nargs="?", choices=["list"], help="list the table")
    add_list_options(parser)
    rules.add_rule_options(parser.add_argument_group("editing (ipvsadm's options)"))
    add_table_commands(parser)
    parser.set_defaults(handler=main)


def add_table_commands(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("saving, restoring, counters, timeouts")
    group.add_argument("-S", "--save", action="store_true",
                       help="print the table as ipvsadm rules (ipvsadm-save's format)")
    group.add_argument("-R", "--restore", action="store_true",
                       help="apply ipvsadm rules read from stdin: all of them or none")
    group.add_argument("-Z", "--zero", action="store_true",
                       help="zero the counters of one service (-t/-u/-f) or of all")
    group.add_argument("--set", nargs=3, type=int, metavar=("TCP", "TCPFIN", "UDP"),
                       help="connection timeouts in seconds (0 keeps one)")
    sync = parser.add_argument_group("IPVS's connection sync daemon (IPVS backend only)")
    sync.add_argument("--start-daemon", choices=[s.value for s in SyncState],
                      help="start the sync daemon: master sends this director's connections, "
                           "backup receives a peer's")
    sync.add_argument("--stop-daemon", choices=[s.value for s in SyncState],
                      help="stop the sync daemon")
    sync.add_argument("--mcast-interface", metavar="IF",
                      help="the interface the sync messages go out and come in on")
    sync.add_argument("--syncid", type=int, default=0, metavar="N",
                      help="0..255: directors of one pair share it (0: every id)")
    sync.add_argument("--sync-maxlen", type=int, metavar="N",
                      help="largest sync message payload (default: from the MTU)")
    sync.add_argument("--mcast-group", metavar="ADDRESS",
                      help="multicast group (default 224.0.0.81 or ff02::8000:81)")
    sync.add_argument("--mcast-port", type=int, metavar="PORT", help="default 8848")
    sync.add_argument("--mcast-ttl", type=int, metavar="TTL", help="default 1")
    parser.add_argument("--daemon", action="store_true",
                        help="with -L: the sync daemons running (as ipvsadm -L --daemon)")


def main(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "list": list_table, "edit": edit, "save": save, "restore": restore, "zero": zero,
        "set": set_timeouts, "start_daemon": start_daemon, "stop_daemon": stop_daemon}
    return handlers[_verb(args)](args)


def _verb(args: argparse.Namespace) -> str:
    """The one thing asked for (listing when nothing else is)."""
    chosen = []
    if args.verb == "list" or args.list:
        chosen.append("list")
    if any(getattr(args, name) for name in rules.COMMANDS):
        chosen.append("edit")
    chosen += [name for name in ("save", "restore", "zero", "start_daemon", "stop_daemon")
               if getattr(args, name)]
    if args.set is not None:
        chosen.append("set")
    if len(chosen) > 1:
        names = {"list": "list", "edit": "an edit", "save": "-S", "restore": "-R",
                 "zero": "-Z", "set": "--set", "start_daemon": "--start-daemon",
                 "stop_daemon": "--stop-daemon"}
        raise UsageError(f"{' and '.join(names[c] for c in chosen)} exclude each other")
    return chosen[0] if chosen else "list"


# -- listing -------------------------------------------------------------------------------
def add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-L", "-l", "--list", action="store_true", help="list (as ipvsadm -L)")
    parser.add_argument("-n", "--numeric", action="store_true",
                        help="addresses and ports as numbers")
    parser.add_argument("--stats", action="store_true", help="counters")
    parser.add_argument("--rate", action="store_true", help="rates per second")
    parser.add_argument("--exact", action="store_true",
                        help="counters and rates in full, not rounded to K, M, G, T")
    parser.add_argument("--sort", action="store_true",
                        help="services by protocol, address, port; servers by address, port "
                             "(the default)")
    parser.add_argument("--nosort", action="store_true",
                        help="in the order the directors report them")
    parser.add_argument("-c", "--connection", action="store_true",
                        help="list the connections the data path tracks")
    parser.add_argument("--timeout", action="store_true",
                        help="list the connection timeouts (tcp tcpfin udp)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--instance", help="one director (default: every running one)")


def _instances(asked: str | None) -> list[str]:
    instances = [asked] if asked else control.running_instances()
    if not instances:
        raise VigilError("no director runs")
    return instances


def collect(instance: str | None, sort: bool = True) -> list[dict[str, Any]]:
    """(service json + stats) rows from every running director, in ipvsadm's order
    unless `sort` is False (then as the directors report them)."""
    instances = [instance] if instance else control.running_instances()
    rows: list[dict[str, Any]] = []
    for name in instances:
        answer = control.request(name, {"command": "status"}, timeout=10.0)
        stats = {json.dumps(s["key"], sort_keys=True): s for s in answer["stats"]}
        for service in answer["table"]:
            service["stats"] = stats.get(json.dumps(service["key"], sort_keys=True))
            service["instance"] = name
            rows.append(service)
    if sort:
        rows.sort(key=lambda s: rules.service_order(codec.key_from_json(s["key"])))
        for row in rows:
            row["reals"].sort(key=lambda r: rules.real_order(r["address"], r["port"]))
    return rows


def list_table(args: argparse.Namespace) -> int:
    if args.sort and args.nosort:
        raise UsageError("--sort and --nosort exclude each other")
    if args.connection or args.timeout or args.daemon:
        if args.connection + args.timeout + args.daemon > 1:
            raise UsageError("-c, --timeout and --daemon exclude each other")
        if args.daemon:
            return list_daemons(args)
        return list_connections(args) if args.connection else list_timeouts(args)
    if args.stats and args.rate:
        raise UsageError("--stats and --rate exclude each other")
    rows = collect(args.instance, sort=not args.nosort)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(render(rows, numeric=args.numeric, stats=args.stats, rate=args.rate,
                 exact=args.exact))
    return 0


def _name(address: str, port: int, protocol: str, numeric: bool) -> str:
    if numeric:
        return rules.numeric_name(address, port, Protocol.TCP)
    host, service = address, str(port)
    with contextlib.suppress(OSError):
        host = socket.gethostbyaddr(address)[0]
    with contextlib.suppress(OSError):
        service = socket.getservbyport(port, "udp" if protocol == "udp" else "tcp")
    return f"[{host}]:{service}" if ":" in host else f"{host}:{service}"


def large(number: float, exact: bool = False) -> str:
    """ipvsadm's numbers: in full below 100 million (or --exact), else in K, M, G, T."""
    number = int(number)
    if exact or number < 100_000_000:
        return str(number)
    for suffix, size, below in (("K", 10**3, 10**9), ("M", 10**6, 10**11),
                                ("G", 10**9, 10**14)):
        if number < below:
            return f"{number // size}{suffix}"
    return f"{number // 10**12}T"


def render(rows: list[dict[str, Any]], numeric: bool, stats: bool, rate: bool,
           exact: bool = False) -> str:
    lines = [HEADER]
    if stats:
        lines += ["Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
                  "  -> RemoteAddress:Port"]
    elif rate:
        lines += ["Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
                  "  -> RemoteAddress:Port"]
    else:
        lines += ["Prot LocalAddress:Port Scheduler Flags",
                  "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"]
    for service in rows:
        key = codec.key_from_json(service["key"])
        if key.protocol is Protocol.FWM:
            where = f"FWM  {key.fwmark}" + (" IPv6" if key.family == 6 else "")
        else:
            where = (f"{key.protocol.value.upper()}  "
                     f"{_name(key.address, key.port, key.protocol.value, numeric)}")
        real_stats = {(r["address"], r["port"]): r
                      for r in (service.get("stats") or {}).get("reals", [])}
        if stats or rate:
            lines.append(f"{where:<33}{_figures(service.get('stats'), rate, exact)}")
        else:
            lines.append(f"{where} {service['scheduler']}{_flags(service)}")
        for real in service["reals"]:
            name = _name(real["address"], real["port"], key.protocol.value, numeric)
            runtime = real_stats.get((real["address"], real["port"]), {})
            if stats or rate:
                lines.append(f"  -> {name:<28}{_figures(runtime, rate, exact, real=True)}")
            else:
                forward = Forward(real["forward"]).ipvsadm_name
                lines.append(f"  -> {name:<28} {forward:<7} {real['weight']:<6} "
                             f"{runtime.get('active', 0):<10} {runtime.get('inactive', 0):<10}")
    return "\n".join(lines)


def _flags(service: dict[str, Any]) -> str:
    flags = ""
    if service.get("persistent"):
        flags += f" persistent {service['persistent']}"
        if service.get("netmask"):
            flags += f" mask {service['netmask']}"
    if service.get("sched_flags"):
        flags += f" ({','.join(service['sched_flags'])})"
    if service.get("ops"):
        flags += " ops"
    return flags


def _figures(stats: dict[str, Any] | None, rate: bool, exact: bool, real: bool = False) -> str:
    """Five numbers, each right-aligned in 9 columns as ipvsadm prints them; a real
    server's CPS, InPPS and OutPPS are never rounded (ipvsadm prints them with %8u)."""
    stats = stats or {}
    if rate:
        r = stats.get("rates", {})
        values = [r.get("cps", 0), r.get("in_pps", 0), r.get("out_pps", 0), r.get("in_bps", 0),
                  r.get("out_bps", 0)]
        return "".join(f" {large(v, exact or (real and i < 3)):>8}"
                       for i, v in enumerate(values))
    c = stats.get("counters", {})
    values = [c.get("conns", 0), c.get("in_packets", 0), c.get("out_packets", 0),
              c.get("in_bytes", 0), c.get("out_bytes", 0)]
    return "".join(f" {large(v, exact):>8}" for v in values)


def list_connections(args: argparse.Namespace) -> int:
    """ipvsadm -L -c: what each director's data path tracks, or why it cannot say."""
    entries, untracked, services = [], [], 0
    for name in _instances(args.instance):
        answer = control.request(name, {"command": "connections"})
        entries += answer["connections"]
        untracked += [codec.key_from_json(k) for k in answer.get("untracked", [])]
        services += answer.get("services", 0)
    if untracked and len(untracked) == services:
        raise VigilError("no connection state to list: the data path keeps none for "
                         f"{', '.join(k.label for k in untracked)} (direct routing, tunnels "
                         "and fwmark services through nftables; see docs/dataplane.md)")
    for key in untracked:
        print(f"vigil: {key.label}: not listed, its data path keeps no connection state",
              file=sys.stderr)
    entries.sort(key=lambda c: (c["virtual"], c["source"]))
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print("IPVS connection entries")
    print(f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination")
    for entry in entries:
        protocol = entry["protocol"].lower()
        source, virtual, target = (
            _name(*entry[field], protocol, args.numeric)
            for field in ("source", "virtual", "destination"))
        seconds = int(entry["expire"])
        expire = f"{seconds // 60:02d}:{seconds % 60:02d}"
        print(f"{entry['protocol']:<3} {expire:<6} {entry['state']:<11} {source:<18} "
              f"{virtual:<18} {target}")
    return 0


def _one_instance(asked: str | None) -> str:
    running = _instances(asked)
    if len(running) > 1:
        raise UsageError(f"several directors run ({', '.join(running)}): choose with --instance")
    return running[0]


def list_timeouts(args: argparse.Namespace) -> int:
    answer = control.request(_one_instance(args.instance), {"command": "timeouts"})
    t = answer["timeouts"]
    print(f"Timeout (tcp tcpfin udp): {t['tcp']} {t['tcpfin']} {t['udp']}")
    return 0


def set_timeouts(args: argparse.Namespace) -> int:
    if not all(0 <= value <= MAX_TIMEOUT for value in args.set):
        raise UsageError(f"invalid timeout value: each is 0..{MAX_TIMEOUT} seconds")
    control.request(_one_instance(args.instance),
                    {"command": "set-timeouts", "timeouts": list(args.set)})
    return 0


# -- the connection sync daemon --------------------------------------------------------------
def start_daemon(args: argparse.Namespace) -> int:
    """ipvsadm --start-daemon: checked here first, then started by the director's backend."""
    if not args.mcast_interface:
        raise UsageError("--start-daemon needs --mcast-interface")
    try:
        daemon = SyncDaemon(SyncState(args.start_daemon), args.mcast_interface, args.syncid,
                            args.sync_maxlen, args.mcast_group, args.mcast_port, args.mcast_ttl)
    except SyncDaemonError as exc:
        raise UsageError(str(exc)) from None
    control.request(_one_instance(args.instance),
                    {"command": "start-sync-daemon", "daemon": daemon.to_json()})
    return 0


def stop_daemon(args: argparse.Namespace) -> int:
    control.request(_one_instance(args.instance),
                    {"command": "stop-sync-daemon", "state": args.stop_daemon})
    return 0


def list_daemons(args: argparse.Namespace) -> int:
    answer = control.request(_one_instance(args.instance), {"command": "sync-daemons"})
    for data in answer["daemons"]:
        try:
            print(SyncDaemon.from_json(data).describe())
        except SyncDaemonError as exc:
            raise VigilError(f"the director answered with a damaged sync daemon: {exc}") \
                from None
    return 0


# -- saving, restoring, zeroing ---------------------------------------------------------------
def save(args: argparse.Namespace) -> int:
    """ipvsadm -S [-n]: the table as the rules that rebuild it."""
    rows = collect(args.instance, sort=not args.nosort)

    def name(address: str, port: int, protocol: Protocol) -> str:
        return _name(address, port, protocol.value, args.numeric)

    for line in rules.save_lines((codec.service_from_json(row) for row in rows), name):
        print(line)
    return 0


def _port_number(name: str, protocol: str) -> int | None:
    try:
        return socket.getservbyname(name, protocol)
    except (OSError, ValueError, UnicodeError):
        return None


def restore(args: argparse.Namespace) -> int:
    """ipvsadm -R: every line checked (syntax, then against the current table) before
    one transaction applies them all; the first bad line is named and nothing changes."""
    try:
        parsed = rules.parse_rules(rules.decode(sys.stdin.buffer.read(rules.MAX_INPUT + 1)),
                                   _port_number)
    except rules.RuleError as exc:
        raise UsageError(f"restore: {exc}; nothing applied") from None
    if not parsed:
        return 0
    instance = _target_instance(args.instance)
    table = codec.table_from_json(control.request(instance, {"command": "status"})["table"])
    try:
        steps = rules.plan(parsed, table)
    except rules.RuleError as exc:
        raise VigilError(f"restore: {exc}; nothing applied") from None
    payload = _edit_request([op for _, op in steps])
    size = len(json.dumps(payload)) + 1
    if size > MAX_REQUEST:
        raise VigilError(f"restore: {len(parsed)} rules make one request of {size // 1024} KiB; "
                         f"a director takes at most {MAX_REQUEST // 1024} KiB at once: "
                         "split the input; nothing applied")
    control.request(instance, payload)
    return 0


def zero(args: argparse.Namespace) -> int:
    """ipvsadm -Z [service]: in the director that holds it (every director for all)."""
    key = None
    if args.tcp is not None or args.udp is not None or args.fwmark is not None:
        try:
            key = rules.service_key_of(args, _port_number)
        except rules.RuleError as exc:
            raise UsageError(str(exc)) from None
    done = False
    for name in _instances(args.instance):
        table = codec.table_from_json(control.request(name, {"command": "status"})["table"])
        if key is None or table.service(key) is not None:
            payload = {"command": "zero", "key": None if key is None else codec.key_to_json(key)}
            control.request(name, payload)
            done = True
    if not done:
        raise VigilError(f"{key} does not exist")
    return 0


# -- editing -------------------------------------------------------------------------------
def parse_edit(args: argparse.Namespace) -> tuple[list[Operation], str | None, bool]:
    """ipvsadm options -> operations, the instance asked for, and whether it is -C."""
    try:
        command = rules.command_of(args, _port_number)
    except rules.RuleError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(command, rules.Clear):
        return [], args.instance, True
    return [command], args.instance, False


def _target_instance(asked: str | None) -> str:
    if asked:
        return asked
    running = control.running_instances()
    if len(running) == 1:
        return running[0]
    if daemon.MANUAL_INSTANCE in running:
        return daemon.MANUAL_INSTANCE
    if running:
        raise UsageError(f"several directors run ({', '.join(running)}): choose with --instance")
    done = subprocess.run([sys.executable, "-m", "vigil", "director", "--no-config", "start"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise VigilError(done.stderr.strip() or "could not start a director for the table")
    return daemon.MANUAL_INSTANCE


def _edit_request(operations: list[Operation]) -> dict[str, Any]:
    return {"command": "edit",
            "operations": [codec.operation_to_json(op) for op in operations]}


def edit(args: argparse.Namespace) -> int:
    operations, asked, clear = parse_edit(args)
    instance = _target_instance(asked)
    if clear:
        answer = control.request(instance, {"command": "status"})
        operations = [DeleteService(codec.key_from_json(s["key"])) for s in answer["table"]]
    control.request(instance, _edit_request(operations))
    return 0
