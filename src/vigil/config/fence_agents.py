"""Where a fence agent named in vigil.cf is installed.

Both `vigil check` (an agent that is not there is an error at its line) and the
fencer (which runs it) look it up the same way: a path as given, or a name in
fence-agents' directories, then PATH.
"""

from __future__ import annotations

import os
import shutil

AGENT_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def agent_path(agent: str) -> str | None:
    """The agent program: a path, or a name looked up where fence-agents installs them."""
    if "/" in agent:
        return agent if os.access(agent, os.X_OK) else None
    for directory in AGENT_DIRS:
        candidate = os.path.join(directory, agent)
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(agent)
