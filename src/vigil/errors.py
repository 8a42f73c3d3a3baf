"""The error types a user may see.

Every failure caused by input (a config file, a command line, a packet, the
state of the machine) is a `VigilError`: the CLI prints its message as one line
and exits with its `exit_code`, never with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class VigilError(Exception):
    """A failure the user can act on; `str()` is the whole message."""

    exit_code = 1


class UsageError(VigilError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class EnvironmentProblem(VigilError):
    """The machine lacks something vigil needs (root, a kernel feature, a program)."""

    exit_code = 3


@dataclass(frozen=True)
class Location:
    """Where in a file a problem is: 1-based line and column."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        if self.column <= 0:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


class ConfigError(VigilError):
    """A configuration file is wrong at a known place."""

    def __init__(self, location: Location, message: str, source_line: str | None = None):
        self.location = location
        self.message = message
        self.source_line = source_line
        super().__init__(f"{location}: error: {message}")
