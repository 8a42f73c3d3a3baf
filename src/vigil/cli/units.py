"""`vigil units`: systemd units for every daemon, naming this installation's vigil.

A unit must name the program it runs by its absolute path; vigil may live in a
virtual environment, a Debian package or a checkout, so the units are written
for the interpreter running this command (`python -m vigil`). Order at boot,
as DRBD's and heartbeat's init scripts have it: the replicated volumes come up
(`vigil volume up all`) and wait for their peers (`wait-connect all`), then the
heartbeat daemon starts the groups (drbddisk
promotes, Filesystem mounts, services start). Directors that run without
heartbeat (`vigil-director@CONFIG`) and the real-server setup come after the
network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil.cli import Subparsers

VOLUMES = """\
# vigil volumes: the replicated volumes of /etc/drbd.conf, up before heartbeat, as DRBD's
# init script has them: up all, then wait for each peer (the startup section's wfc-timeout,
# degr-wfc-timeout, outdated-wfc-timeout; wfc-timeout 0, the default, waits forever), then
# promote where become-primary-on says so. Otherwise promotion is heartbeat's job (drbddisk).
# A wait that runs out does not fail the unit: the boot goes on, as DRBD's does.
[Unit]
Description=vigil replicated volumes (DRBD compatible)
Documentation=man:drbd.conf(5)
After=network-online.target local-fs.target
Wants=network-online.target
Before=vigil-heartbeat.service
ConditionPathExists=/etc/drbd.conf

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={vigil} volume up all
ExecStart=-{vigil} volume wait-connect all
ExecStart=-{vigil} volume become-primary all
ExecStop={vigil} volume down all
# the wait is bounded by the startup section, not here
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""

HEARTBEAT = """\
# vigil heartbeat: membership and failover of the haresources groups (heartbeat 3
# compatible). Reads /etc/ha.d unchanged.
[Unit]
Description=vigil heartbeat: cluster membership and failover (heartbeat 3 compatible)
Documentation=man:ha.cf(5)
After=network-online.target vigil-volumes.service
Wants=network-online.target
Conflicts=heartbeat.service

[Service]
Type=simple
ExecStartPre={vigil} check --dir /etc/ha.d
ExecStart={vigil} heartbeat --foreground --dir /etc/ha.d --pidfile /run/vigil/heartbeat.pid
# SIGHUP: re-read ha.cf and authkeys without moving any group
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM: hand every group to the peer, tell it (shutdone), then exit
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=15min
Restart=on-failure
RestartSec=2s
RuntimeDirectory=vigil
RuntimeDirectoryPreserve=yes
StateDirectory=heartbeat
# realtime on (ha.cf's default): SCHED_RR and locked memory, as heartbeat does
LimitMEMLOCK=infinity
LimitRTPRIO=99
CPUSchedulingResetOnFork=yes

[Install]
WantedBy=multi-user.target
"""

def _director_unit(comment: str, description: str, ordering: str, conflicts: str,
                   role: str) -> str:
    """One director unit; the active and the warm standby one differ only in these."""
    return f"""\
{comment}[Unit]
Description=vigil director for %i{description} (ldirectord compatible)
Documentation=man:ldirectord(8)
After=network-online.target
Wants=network-online.target
{ordering}Conflicts=ldirectord.service{conflicts}

[Service]
Type=simple
ExecStart={{vigil}} director --foreground %i {role}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
RuntimeDirectory=vigil
RuntimeDirectoryPreserve=yes

[Install]
WantedBy=multi-user.target
"""


DIRECTOR = _director_unit(
    "# vigil director for /etc/ha.d/%i (ldirectord.cf's job) when heartbeat does not run it\n"
    "# (in a heartbeat pair, haresources' ldirectord::%i starts and stops it instead, or\n"
    "# flips vigil-director-standby@%i between active and standby).\n",
    "", "", "", "start")

DIRECTOR_STANDBY = _director_unit(
    "# vigil director for /etc/ha.d/%i as a warm standby, on both nodes of a heartbeat pair:\n"
    "# it runs the checks and keeps the table from boot on, forwarding nothing that is not\n"
    "# addressed to this host; haresources' ldirectord::%i only makes it active (start) or a\n"
    "# standby again (stop), so a takeover costs the VIP's announcement alone. Its status\n"
    "# says stopped while it stands by. Not together with vigil-director@%i.\n",
    ", warm standby", "Before=vigil-heartbeat.service\n", " vigil-director@%i.service",
    "standby")

UNITS = {"vigil-volumes.service": VOLUMES, "vigil-heartbeat.service": HEARTBEAT,
         "vigil-director@.service": DIRECTOR,
         "vigil-director-standby@.service": DIRECTOR_STANDBY}


def vigil_command() -> str:
    """This installation's vigil, runnable from a unit (absolute paths only)."""
    return f"{Path(sys.executable).absolute()} -m vigil"


def render(vigil: str | None = None) -> dict[str, str]:
    command = vigil or vigil_command()
    return {name: text.replace("{vigil}", command) for name, text in UNITS.items()}


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "units", help="write systemd units for vigil's daemons",
        description="Write vigil-volumes.service (volumes up at boot and their peers "
        "waited for, before heartbeat), "
        "vigil-heartbeat.service, vigil-director@.service and "
        "vigil-director-standby@.service (a warm standby director for a heartbeat pair), "
        "naming this installation's vigil; then: systemctl daemon-reload && systemctl "
        "enable vigil-volumes vigil-heartbeat (and vigil-director-standby@ldirectord.cf "
        "on both directors).")
    parser.add_argument("--dir", default="/etc/systemd/system",
                        help="where to write them (default %(default)s)")
    parser.add_argument("--print", action="store_true", help="print them instead")
    parser.set_defaults(handler=cmd_units)


def cmd_units(args: argparse.Namespace) -> int:
    units = render()
    if args.print:
        for name, text in units.items():
            print(f"### {name}\n{text}")
        return 0
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (directory / name).write_text(text)
        print(f"wrote {directory / name}")
    return 0
