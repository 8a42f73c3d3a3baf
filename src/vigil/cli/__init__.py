"""The `vigil` command line: one module per sub-command, each with `register`."""

from __future__ import annotations

import argparse

#: what `argparse.ArgumentParser.add_subparsers` returns: each module's `register` takes it
Subparsers = argparse._SubParsersAction
