"""From the configuration file to the director's runtime model.

`load_config(path)` is the one entry point the daemon uses. It takes the
project's ldirectord.cf parser (`vigil.config.ldirectord`) when it is
installed and converts its model; until then it uses the minimal reader in
`cfreader`, which produces the same `DirectorConfig`.
"""

from __future__ import annotations

from pathlib import Path

from vigil.director.settings import DirectorConfig

#: Where ldirectord looks for a config given by name.
SEARCH_DIRECTORIES = ("/etc/ha.d", "/etc/ha.d/conf")


def find_config(name: str | None) -> Path:
    """ldirectord's lookup: /etc/ha.d/NAME, /etc/ha.d/conf/NAME, then NAME as given."""
    name = name or "ldirectord.cf"
    if "/" not in name:
        for directory in SEARCH_DIRECTORIES:
            candidate = Path(directory) / name
            if candidate.is_file():
                return candidate
    return Path(name)


def load_config(path: str | Path) -> DirectorConfig:
    from vigil.director import cfreader

    return cfreader.read_config(path)
