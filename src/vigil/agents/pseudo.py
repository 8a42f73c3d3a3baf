"""Pseudo resources: agents with nothing in the kernel to look at (MailTo, Delay).

Their "running" state is a file under the state directory (/run/vigil/agents,
a tmpfs: a reboot forgets it, as heartbeat's ha_pseudo_resource does).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


class PseudoState:
    def __init__(self, state_dir: Path, label: str):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:80]
        digest = hashlib.sha1(label.encode()).hexdigest()[:8]
        self.path = state_dir / "pseudo" / f"{safe}-{digest}"

    def set(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def running(self) -> bool:
        return self.path.exists()
