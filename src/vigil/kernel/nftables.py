"""Drive nftables through its JSON interface (`nft -j`), one atomic transaction per call.

A batch of commands given to `apply()` is one `nft -j -f -` run, which the
kernel applies as a single transaction: either all of it or none of it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigil.errors import EnvironmentProblem, VigilError

Command = dict[str, Any]


class NftError(VigilError):
    """nft refused a transaction; nothing of it was applied."""


class Nftables:
    """An nft runner bound to one network namespace (None: the caller's own)."""

    def __init__(self, netns_path: str | Path | None = None, timeout: float = 10.0):
        self.netns_path = str(netns_path) if netns_path else None
        self.timeout = timeout
        self.binary = shutil.which("nft") or "/usr/sbin/nft"
        if not Path(self.binary).exists():
            raise EnvironmentProblem("nft not found: install the 'nftables' package")

    def _argv(self, *args: str) -> list[str]:
        argv = [self.binary, *args]
        if self.netns_path:
            argv = ["nsenter", f"--net={self.netns_path}", "--", *argv]
        return argv

    def apply(self, commands: Sequence[Command]) -> None:
        """Apply a list of nftables JSON commands as one transaction."""
        if not commands:
            return
        document = json.dumps({"nftables": list(commands)})
        done = subprocess.run(
            self._argv("-j", "-f", "-"),
            input=document,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        if done.returncode != 0:
            raise NftError(f"nft rejected the transaction: {done.stderr.strip()}")

    def list(self, *what: str) -> list[dict[str, Any]]:
        """`nft -j list WHAT...` as the list of objects it returns (metainfo dropped)."""
        done = subprocess.run(
            self._argv("-j", "list", *what),
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        if done.returncode != 0:
            raise NftError(f"nft list {' '.join(what)}: {done.stderr.strip()}")
        objects = json.loads(done.stdout or '{"nftables": []}')["nftables"]
        return [o for o in objects if "metainfo" not in o]
