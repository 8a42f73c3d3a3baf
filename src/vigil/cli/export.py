"""`vigil export pacemaker`: the cluster's configuration for Pacemaker and Corosync 3.

Reads ha.cf, haresources, vigil.cf and the DRBD configuration the way `vigil
check` does (each file with its `vigil.config` module), translates them with
`vigil.cluster.pacemaker`, and writes a CIB (XML) or crmsh text and a
corosync.conf. What could not be translated is listed on stderr as
FILE:LINE: warning: MESSAGE. Exit status: 0 exported (warnings allowed),
1 a file could not be read or parsed, or something could not be exported.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from vigil.cluster import pacemaker
from vigil.cluster.loader import ClusterConfig, ConfigPaths
from vigil.config import authkeys as authkeys_mod
from vigil.config import drbd as drbd_mod
from vigil.config import extension as extension_mod
from vigil.config import hacf as hacf_mod
from vigil.config import haresources as haresources_mod
from vigil.config.base import Diagnostic, FileUnreadable, Severity
from vigil.config.resolve import Resolver, SystemResolver
from vigil.errors import Location

FILE_NAMES = {"cib": "cib.xml", "crmsh": "crm.txt", "pcs": "pcs.sh"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="translate the configuration for another cluster manager (Pacemaker)",
        description="Translate heartbeat's configuration for another cluster manager.",
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", title="targets")
    pcmk = targets.add_parser(
        "pacemaker",
        help="a Pacemaker configuration (CIB or crmsh) and a Corosync 3 corosync.conf",
        description=(
            "Translate ha.cf, haresources, vigil.cf and the DRBD files into a Pacemaker "
            "configuration and a corosync.conf (knet). Each haresources line becomes a group; "
            "drbddisk a promotable ocf:vigil:volume clone (--volume-agent linbit: "
            "ocf:linbit:drbd), ldirectord ocf:vigil:director; ping nodes an ocf:pacemaker:ping "
            "clone; vigil.cf fence sections stonith resources. What cannot be translated is "
            "listed on stderr as FILE:LINE: warning: MESSAGE. Exit status: 0 exported "
            "(warnings allowed), 1 a file could not be read or parsed, or a resource could "
            "not be exported."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Without --output-dir the Pacemaker configuration is printed (--corosync: the\n"
            "corosync.conf). Load it with `cibadmin --replace --xml-file cib.xml` or\n"
            "`crm configure load update crm.txt`; docs/scale-out.md lists what maps."
        ),
    )
    pcmk.add_argument("--dir", default="/etc/ha.d", metavar="DIR",
                      help="heartbeat's configuration directory (default: /etc/ha.d)")
    pcmk.add_argument("--drbd-conf", default=drbd_mod.DEFAULT_PATH, metavar="FILE",
                      help="DRBD's top configuration file (default: /etc/drbd.conf)")
    pcmk.add_argument("--volume-agent", choices=("vigil", "linbit"), default="vigil",
                      help="drbddisk's clone: vigil (ocf:vigil:volume, the default) or linbit "
                           "(ocf:linbit:drbd, for nodes that run DRBD's kernel module)")
    pcmk.add_argument("--nodes", metavar="A,B,C",
                      help="the cluster's nodes (default: ha.cf's node lines); more than "
                           "two is what Pacemaker is for")
    pcmk.add_argument("--format", choices=tuple(FILE_NAMES), default="cib",
                      help="CIB XML (default), crmsh configuration text, or a sh script of "
                           "pcs commands (pcs 0.11)")
    pcmk.add_argument("-o", "--output-dir", metavar="DIR",
                      help="write cib.xml (or crm.txt, or pcs.sh) and corosync.conf into DIR")
    pcmk.add_argument("--corosync", action="store_true",
                      help="print the corosync.conf instead of the Pacemaker configuration")
    pcmk.set_defaults(handler=cmd_export_pacemaker)
    parser.set_defaults(handler=lambda args: _no_target(parser))


def _no_target(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as exc:
        raise FileUnreadable(Location(path), f"cannot read: {exc.strerror}") from exc


def read_config(paths: ConfigPaths) -> tuple[ClusterConfig, list[Diagnostic]]:
    """The files the export needs, each parsed alone (no checks of this machine)."""
    out: list[Diagnostic] = []
    hacf = hacf_mod.HaCf(path=paths.hacf)
    try:
        parsed_hacf = hacf_mod.analyze(_read_text(paths.hacf), paths.hacf)
        hacf = parsed_hacf.model
        out.extend(parsed_hacf.diagnostics)
        out.extend(hacf_mod.validate(hacf))
    except FileUnreadable as exc:
        out.append(Diagnostic(Severity.ERROR, exc.location, exc.message))
    resources = haresources_mod.HaResources(path=paths.haresources)
    try:
        parsed_res = haresources_mod.analyze(_read_text(paths.haresources), paths.haresources)
        resources = parsed_res.model
        out.extend(parsed_res.diagnostics)
    except FileUnreadable as exc:
        out.append(Diagnostic(Severity.ERROR, exc.location, exc.message))
    extension = extension_mod.ExtensionConfig(path=paths.vigil_cf)
    if os.path.exists(paths.vigil_cf):
        try:
            parsed_ext = extension_mod.analyze(_read_text(paths.vigil_cf), paths.vigil_cf)
            extension = parsed_ext.model
            out.extend(parsed_ext.diagnostics)
        except FileUnreadable as exc:
            out.append(Diagnostic(Severity.ERROR, exc.location, exc.message))
    drbd: drbd_mod.DrbdConfig | None = None
    uses_drbd = any(r.name == "drbddisk" for r in resources.resources)
    if os.path.exists(paths.drbd_conf):
        try:
            parsed_drbd = drbd_mod.read(paths.drbd_conf)
            drbd = parsed_drbd.model
            out.extend(parsed_drbd.diagnostics)
        except FileUnreadable as exc:
            out.append(Diagnostic(Severity.WARNING, exc.location, exc.message))
    elif uses_drbd:
        out.append(Diagnostic(Severity.WARNING, Location(paths.drbd_conf),
                              "no DRBD configuration: the drbd clones run on every node"))
    config = ClusterConfig(hacf, authkeys_mod.AuthKeys(path=paths.authkeys), resources,
                           extension, drbd=drbd, paths=paths)
    return config, out


def node_addresses(nodes: tuple[str, ...], names: Resolver) -> dict[str, list[str]]:
    """Each node's addresses, as the name service gives them (none when it does not)."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        addresses: list[str] = []
        for family in (4, 6):
            try:
                addresses.extend(names.addresses(node, family))
            except Exception:  # an unknown name: its ucast peers stay unplaced (and said so)
                continue
        found[node] = addresses
    return found


def cmd_export_pacemaker(args: argparse.Namespace, names: Resolver | None = None) -> int:
    config, diagnostics = read_config(ConfigPaths(args.dir, args.drbd_conf))
    for d in diagnostics:
        if d.severity is not Severity.NOTE:
            print(d.format().splitlines()[0], file=sys.stderr)
    paths = config.paths
    if any(d.severity is Severity.ERROR and d.location.path in (paths.hacf, paths.haresources)
           and d.message.startswith("cannot read") for d in diagnostics):
        return 1  # nothing to translate
    nodes = tuple(n.strip().lower() for n in (args.nodes or "").split(",") if n.strip())
    export = pacemaker.translate(
        config, nodes,
        node_addresses(nodes or config.hacf.nodes, names or SystemResolver()),
        volume_agent=getattr(args, "volume_agent", "vigil"))
    order: dict[str, int] = {}
    for problem in export.problems:
        order.setdefault(problem.location.path, len(order))
    for problem in sorted(export.problems, key=lambda p: (order[p.location.path],
                                                          p.location.line)):
        print(problem.format(), file=sys.stderr)
    render = {"cib": pacemaker.render_cib, "crmsh": pacemaker.render_crmsh,
              "pcs": pacemaker.render_pcs}[args.format]
    text = render(export.pacemaker)
    failed = bool(export.errors) or any(d.severity is Severity.ERROR for d in diagnostics)
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, content in ((FILE_NAMES[args.format], text),
                              ("corosync.conf", export.corosync_conf)):
            (out / name).write_text(content)
            if name.endswith(".sh"):
                (out / name).chmod(0o755)
            print(f"vigil export: wrote {out / name}", file=sys.stderr)
    else:
        sys.stdout.write(export.corosync_conf if args.corosync else text)
    return 1 if failed else 0
