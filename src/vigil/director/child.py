"""The detached director process that `vigil director start` launches.

argv: BACKEND LOGFILE CONFIG (empty strings for none). Kept apart from the CLI
so the daemon starts with a clean argument list that `status` can recognise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vigil.director.backends import choose
from vigil.director.daemon import run_daemon
from vigil.errors import VigilError


def main(argv: list[str]) -> int:
    backend_name, logfile, config = argv
    try:
        backend = choose(backend_name)()
        return run_daemon(Path(config) if config else None, backend, logfile or None,
                          stream=False)
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
