"""The detached director process that `vigil director start` launches.

argv: BACKEND LOGFILE CONFIG [METRICS_ADDRESS [ROLE]] (empty strings for none; ROLE
active or standby). Kept apart from the CLI so the daemon starts with a clean
argument list that `status` can recognise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vigil.director.backends import choose
from vigil.director.daemon import run_daemon
from vigil.errors import VigilError
from vigil.metrics import parse_address


def main(argv: list[str]) -> int:
    backend_name, logfile, config, *rest = argv
    try:
        metrics = parse_address(rest[0], "--metrics-address") if rest and rest[0] else None
        backend = choose(backend_name)()
        return run_daemon(Path(config) if config else None, backend, logfile or None,
                          stream=False, metrics_address=metrics,
                          standby=rest[1:2] == ["standby"])
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
