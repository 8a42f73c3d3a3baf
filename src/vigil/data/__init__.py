"""Files vigil ships beside its code, read at run time.

They are package data rather than files of the source tree so that an installed
wheel or Debian package has them too: the demo's LSB scripts (`init.d/mysqld`,
`init.d/httpd`) are installed into the lab hosts from here.
"""

from __future__ import annotations

from importlib import resources


def init_script(name: str) -> str:
    """The text of vigil's LSB script `init.d/NAME`."""
    return resources.files(__name__).joinpath("init.d").joinpath(name).read_text()
