"""The detached director process that `vigil director start` launches.

argv: BACKEND LOGFILE CONFIG [METRICS_ADDRESS [ROLE [SYNC_DAEMON]]] (empty strings for
none; ROLE active or standby; SYNC_DAEMON vigil.cf's lvs_sync_daemon words). Kept apart
from the CLI so the daemon starts with a clean argument list that `status` can recognise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vigil.director.backends import choose
from vigil.director.daemon import run_daemon
from vigil.errors import VigilError
from vigil.lvs.syncdaemon import SyncDaemonError, parse_setting
from vigil.metrics import parse_address


def main(argv: list[str]) -> int:
    backend_name, logfile, config, *rest = argv
    try:
        metrics = parse_address(rest[0], "--metrics-address") if rest and rest[0] else None
        backend = choose(backend_name)()
        sync = parse_setting(rest[2]) if rest[2:3] and rest[2] else None
        return run_daemon(Path(config) if config else None, backend, logfile or None,
                          stream=False, metrics_address=metrics,
                          standby=rest[1:2] == ["standby"], sync=sync)
    except SyncDaemonError as exc:
        print(f"vigil: lvs_sync_daemon: {exc}", file=sys.stderr)
        return 2
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
