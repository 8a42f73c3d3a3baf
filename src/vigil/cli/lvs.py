"""`vigil lvs`: the LVS table in ipvsadm's words.

`vigil lvs list [-n] [--stats|--rate] [--json]` prints the running directors'
table in `ipvsadm -L -n`'s layout. `vigil lvs -A|-E|-D -t|-u|-f SERVICE ...`
and `-a|-e|-d ... -r SERVER` edit a hand-kept table, as the seed's ipvsadm
script does; without a running director the first edit starts one for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
from typing import Any

from vigil.director import codec, control, daemon
from vigil.errors import UsageError, VigilError
from vigil.lvs.operations import (
    AddReal,
    AddService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    Operation,
)
from vigil.lvs.table import (
    Forward,
    Protocol,
    RealKey,
    RealServer,
    ServiceKey,
    VirtualService,
    format_endpoint,
)

HEADER = "IP Virtual Server version 1.2.1 (size=4096)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lvs",
        help="the LVS table: list it like ipvsadm -L -n, edit it like ipvsadm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="vigil lvs list [-n] [--stats|--rate] [--json]\n"
              "       vigil lvs -A|-E -t|-u VIP:PORT | -f MARK [-s SCHED] [-p [SECONDS]] "
              "[-M MASK] [-b FLAGS]\n"
              "       vigil lvs -D -t|-u|-f SERVICE\n"
              "       vigil lvs -a|-e -t|-u|-f SERVICE -r RIP[:PORT] [-g|-m|-i] [-w WEIGHT] "
              "[-x N] [-y N]\n"
              "       vigil lvs -d -t|-u|-f SERVICE -r RIP[:PORT]\n"
              "       vigil lvs -C",
    )
    parser.add_argument("verb", nargs="?", choices=["list"], help="list the table")
    add_list_options(parser)
    add_edit_options(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    edits = [args.add_service, args.edit_service, args.delete_service, args.add_server,
             args.edit_server, args.delete_server, args.clear]
    if args.verb == "list" or args.list or not any(edits):
        if any(edits):
            raise UsageError("list and an edit exclude each other")
        return list_table(args)
    return edit(args)


# -- listing -------------------------------------------------------------------------------
def add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-L", "-l", "--list", action="store_true", help="list (as ipvsadm -L)")
    parser.add_argument("-n", "--numeric", action="store_true",
                        help="addresses and ports as numbers")
    parser.add_argument("--stats", action="store_true", help="counters")
    parser.add_argument("--rate", action="store_true", help="rates per second")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--instance", help="one director (default: every running one)")


def collect(instance: str | None) -> list[dict[str, Any]]:
    """(service json + stats) rows from every running director."""
    instances = [instance] if instance else control.running_instances()
    rows: list[dict[str, Any]] = []
    for name in instances:
        answer = control.request(name, {"command": "status"}, timeout=10.0)
        stats = {json.dumps(s["key"], sort_keys=True): s for s in answer["stats"]}
        for service in answer["table"]:
            service["stats"] = stats.get(json.dumps(service["key"], sort_keys=True))
            service["instance"] = name
            rows.append(service)
    rows.sort(key=lambda s: codec.key_from_json(s["key"]))
    return rows


def list_table(args: argparse.Namespace) -> int:
    if args.stats and args.rate:
        raise UsageError("--stats and --rate exclude each other")
    rows = collect(args.instance)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(render(rows, numeric=args.numeric, stats=args.stats, rate=args.rate))
    return 0


def _name(address: str, port: int, protocol: str, numeric: bool) -> str:
    if numeric:
        return format_endpoint(address, port)
    host, service = address, str(port)
    with contextlib.suppress(OSError):
        host = socket.gethostbyaddr(address)[0]
    with contextlib.suppress(OSError):
        service = socket.getservbyport(port, "udp" if protocol == "udp" else "tcp")
    return f"[{host}]:{service}" if ":" in host else f"{host}:{service}"


def large(number: float) -> str:
    """ipvsadm's 8-column numbers: K, M, G once they no longer fit."""
    number = int(number)
    for suffix, size in (("", 1), ("K", 1000), ("M", 1000**2), ("G", 1000**3), ("T", 1000**4)):
        shown = number // size
        if shown < 100_000_000 or suffix == "T":
            return f"{shown}{suffix}"
    return str(number)  # pragma: no cover


def render(rows: list[dict[str, Any]], numeric: bool, stats: bool, rate: bool) -> str:
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
            figures = _figures(service.get("stats"), rate)
            lines.append(f"{where:<33} {figures}")
        else:
            flags = ""
            if service.get("persistent"):
                flags += f" persistent {service['persistent']}"
                if service.get("netmask"):
                    flags += f" mask {service['netmask']}"
            if service.get("sched_flags"):
                flags += f" ({','.join(service['sched_flags'])})"
            if service.get("ops"):
                flags += " ops"
            lines.append(f"{where} {service['scheduler']}{flags}")
        for real in service["reals"]:
            name = _name(real["address"], real["port"], key.protocol.value, numeric)
            runtime = real_stats.get((real["address"], real["port"]), {})
            if stats or rate:
                lines.append(f"  -> {name:<28} {_figures(runtime, rate)}")
            else:
                forward = Forward(real["forward"]).ipvsadm_name
                lines.append(f"  -> {name:<28} {forward:<7} {real['weight']:<6} "
                             f"{runtime.get('active', 0):<10} {runtime.get('inactive', 0):<10}")
    return "\n".join(lines)


def _figures(stats: dict[str, Any] | None, rate: bool) -> str:
    stats = stats or {}
    if rate:
        r = stats.get("rates", {})
        values = [r.get("cps", 0), r.get("in_pps", 0), r.get("out_pps", 0), r.get("in_bps", 0),
                  r.get("out_bps", 0)]
        return f"{large(values[0]):>6} " + " ".join(f"{large(v):>8}" for v in values[1:])
    c = stats.get("counters", {})
    values = [c.get("conns", 0), c.get("in_packets", 0), c.get("out_packets", 0),
              c.get("in_bytes", 0), c.get("out_bytes", 0)]
    return " ".join(f"{large(v):>8}" for v in values)


# -- editing -------------------------------------------------------------------------------
def add_edit_options(parser: argparse.ArgumentParser) -> None:
    edits = parser.add_argument_group("editing (ipvsadm's options)")
    for flag, long, name, text in (
            ("-A", "--add-service", "add_service", "add a virtual service"),
            ("-E", "--edit-service", "edit_service", "edit a virtual service"),
            ("-D", "--delete-service", "delete_service", "delete a virtual service"),
            ("-a", "--add-server", "add_server", "add a real server"),
            ("-e", "--edit-server", "edit_server", "edit a real server"),
            ("-d", "--delete-server", "delete_server", "delete a real server"),
            ("-C", "--clear", "clear", "delete every hand-kept virtual service")):
        edits.add_argument(flag, long, dest=name, action="store_true", help=text)
    edits.add_argument("-t", "--tcp-service", dest="tcp", metavar="VIP:PORT")
    edits.add_argument("-u", "--udp-service", dest="udp", metavar="VIP:PORT")
    edits.add_argument("-f", "--fwmark-service", dest="fwmark", type=int, metavar="MARK")
    edits.add_argument("-6", "--ipv6", dest="ipv6", action="store_true")
    edits.add_argument("-s", "--scheduler", default=None)
    edits.add_argument("-p", "--persistent", nargs="?", const=300, type=int)
    edits.add_argument("-M", "--netmask")
    edits.add_argument("-b", "--sched-flags")
    edits.add_argument("-o", "--ops", action="store_true")
    edits.add_argument("-r", "--real-server", metavar="RIP[:PORT]")
    edits.add_argument("-g", "--gatewaying", dest="forward", action="store_const",
                       const=Forward.GATE)
    edits.add_argument("-m", "--masquerading", dest="forward", action="store_const",
                       const=Forward.MASQ)
    edits.add_argument("-i", "--ipip", dest="forward", action="store_const",
                       const=Forward.IPIP)
    edits.add_argument("-w", "--weight", type=int)
    edits.add_argument("-x", "--u-threshold", dest="upper", type=int, default=0)
    edits.add_argument("-y", "--l-threshold", dest="lower", type=int, default=0)


def _endpoint(text: str, default_port: int | None = None) -> tuple[str, int]:
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, None
    if port is None:
        if default_port is None:
            raise UsageError(f"{text}: a port is needed")
        return address, default_port
    if not port.isdigit():
        try:
            return address, socket.getservbyname(port)
        except OSError:
            raise UsageError(f"unknown port {port!r}") from None
    return address, int(port)


def parse_edit(args: argparse.Namespace) -> tuple[list[Operation], str | None, bool]:
    """ipvsadm options -> operations, the instance asked for, and whether it is -C."""
    chosen = [args.add_service, args.edit_service, args.delete_service, args.add_server,
              args.edit_server, args.delete_server, args.clear]
    if sum(chosen) != 1:
        raise UsageError("give exactly one of -A -E -D -a -e -d -C")
    if args.clear:
        return [], args.instance, True
    if args.tcp:
        key = ServiceKey.tcp(*_endpoint(args.tcp))
    elif args.udp:
        key = ServiceKey.udp(*_endpoint(args.udp))
    elif args.fwmark is not None:
        key = ServiceKey.fwm(args.fwmark, family=6 if args.ipv6 else 4)
    else:
        raise UsageError("a service is needed: -t VIP:PORT, -u VIP:PORT or -f MARK")
    try:
        if args.add_service or args.edit_service:
            service = VirtualService(
                key, scheduler=args.scheduler or "wlc", persistent=args.persistent,
                netmask=args.netmask, ops=args.ops,
                sched_flags=tuple(f for f in (args.sched_flags or "").split(",") if f))
            op: Operation = AddService(service) if args.add_service else EditService(service)
            return [op], args.instance, False
        if args.delete_service:
            return [DeleteService(key)], args.instance, False
        if not args.real_server:
            raise UsageError("a real server is needed: -r RIP[:PORT]")
        address, port = _endpoint(args.real_server, key.port)
        forward = args.forward or Forward.GATE
        if forward is not Forward.MASQ and key.protocol is not Protocol.FWM:
            port = key.port  # only NAT can change the port (as ipvsadm)
        if args.delete_server:
            return [DeleteReal(key, RealKey(address, port))], args.instance, False
        real = RealServer(address, port, weight=1 if args.weight is None else args.weight,
                          forward=forward, upper=args.upper, lower=args.lower)
        op = AddReal(key, real) if args.add_server else EditReal(key, real)
        return [op], args.instance, False
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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


def edit(args: argparse.Namespace) -> int:
    operations, asked, clear = parse_edit(args)
    instance = _target_instance(asked)
    if clear:
        answer = control.request(instance, {"command": "status"})
        operations = [DeleteService(codec.key_from_json(s["key"])) for s in answer["table"]]
    payload = {"command": "edit", "operations": [codec.operation_to_json(op)
                                                 for op in operations]}
    control.request(instance, payload)
    return 0
