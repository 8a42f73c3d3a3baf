"""`python -m vigil` is the same as the `vigil` command."""

from vigil.cli.main import main

raise SystemExit(main())
