"""The shared machinery of every config parser: lines, tokens, diagnostics, keyword tables.

Each format (ha.cf, authkeys, haresources, ldirectord.cf, DRBD, vigil.cf) has
its own lexical rules, but they all need the same things: physical lines with
numbers, words with columns (for a caret under the mistake), a place to
collect *every* problem of a file instead of stopping at the first, value
parsers with bounds that say what they expect, and one record per keyword
(name, parser, default, one-line doc). They live here so the six parsers stay
small and report mistakes the same way.

Public API used by the format modules and by `vigil check`:

* `Severity`, `Diagnostic` (one problem, with `format()` giving the
  ``file:line:col: error: message`` line, the source line and a caret),
  `Diagnostics` (the collector a parser fills), `Parsed` (model plus
  diagnostics), `ConfigErrors` (a `ConfigError` carrying all of them).
* `SourceLine`, `Token`, `physical_lines`, `split_words`: the line reader and
  tokenizer.
* Value parsers (`TimeValue`, `IntValue`, `BoolValue`, `ChoiceValue`, ...)
  that raise `ValueProblem` with a message naming what was expected.
* `Keyword`, `KeywordStatus`: one record per keyword of a table.
* `FrozenMap`: an immutable, hashable mapping for the frozen models.
* `to_jsonable`: turns any model into plain JSON data (`vigil config show --json`).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from vigil.errors import ConfigError, Location

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


# ---------------------------------------------------------------------------
# Diagnostics


class Severity(enum.StrEnum):
    """How bad a problem is. Errors stop a start; warnings and notes never do.

    `note` is used for directives vigil accepts and deliberately ignores, so
    that `vigil check` can list them without counting them as warnings.
    """

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


def caret_line(source_line: str, column: int) -> str:
    """The line under `source_line` with a ``^`` below `column` (1-based).

    Tabs before the column are copied so the caret lines up in any terminal.
    """
    column = max(column, 1)
    prefix = "".join("\t" if ch == "\t" else " " for ch in source_line[: column - 1])
    return prefix + "^"


_AUTHKEYS_KEY = re.compile(r"^(\s*[+-]?\d+\s+\S+\s+)(\S+)")
_SECRET_SETTINGS = re.compile(
    r"((?:shared-secret|passwd|password|secret)(?:\s+|\s*=\s*))(\"[^\"]*\"|[^\s;]+)",
    re.IGNORECASE)


def mask_secrets(line: str, path: str = "") -> str:
    """`line` with every secret it may hold replaced by stars of the same length."""
    def stars(match: re.Match[str]) -> str:
        return match.group(1) + "*" * len(match.group(2))

    if os.path.basename(path) == "authkeys":
        line = _AUTHKEYS_KEY.sub(stars, line)
    return _SECRET_SETTINGS.sub(stars, line)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a config file, with where it is and the line it is on."""

    severity: Severity
    location: Location
    message: str
    source_line: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def headline(self) -> str:
        """``file:line:col: error: message``: the line tools like editors understand."""
        return f"{self.location}: {self.severity}: {self.message}"

    def format(self) -> str:
        """The headline, then the source line and a caret under the column (if known).

        Secrets on the line are starred out (same length, so the caret still points).
        """
        lines = [self.headline()]
        if self.source_line is not None and self.location.line > 0:
            lines.append(mask_secrets(self.source_line, self.location.path))
            if self.location.column > 0:
                lines.append(caret_line(self.source_line, self.location.column))
        return "\n".join(lines)

    def to_error(self) -> ConfigError:
        return ConfigError(self.location, self.message, self.source_line)


class ConfigErrors(ConfigError):
    """A config that cannot be used, with every problem found (errors and warnings).

    It is a `ConfigError`, so callers that only catch that type keep working;
    its message is the first error (plus how many more there are).
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        first = errors[0]
        message = first.message
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        super().__init__(first.location, message, first.source_line)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)


class FileUnreadable(ConfigError):
    """A config file that could not be read at all (missing, permissions, not text)."""

    exit_code = 2


@dataclass(frozen=True)
class SourceLine:
    """One physical line of a file: its path, 1-based number and text (no newline)."""

    path: str
    number: int
    text: str

    def at(self, column: int = 0) -> Location:
        return Location(self.path, self.number, column)


class Diagnostics:
    """Collects the problems of one parse so a user sees them all at once."""

    def __init__(self, path: str):
        self.path = path
        self.items: list[Diagnostic] = []

    def add(self, severity: Severity, where: SourceLine | Location | None, column: int,
            message: str) -> None:
        if isinstance(where, SourceLine):
            self.items.append(Diagnostic(severity, where.at(column), message, where.text))
        elif isinstance(where, Location):
            self.items.append(Diagnostic(severity, where, message, None))
        else:
            self.items.append(Diagnostic(severity, Location(self.path), message, None))

    def error(self, where: SourceLine | Location | None, column: int, message: str) -> None:
        self.add(Severity.ERROR, where, column, message)

    def warning(self, where: SourceLine | Location | None, column: int, message: str) -> None:
        self.add(Severity.WARNING, where, column, message)

    def note(self, where: SourceLine | Location | None, column: int, message: str) -> None:
        self.add(Severity.NOTE, where, column, message)

    def extend(self, items: Iterable[Diagnostic]) -> None:
        self.items.extend(items)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def freeze(self) -> tuple[Diagnostic, ...]:
        return tuple(self.items)


class DiagnosticsView:
    """`errors`, `warnings` and `notes` of anything that holds `diagnostics`."""

    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)

    @property
    def notes(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.NOTE)


@dataclass(frozen=True)
class Parsed(DiagnosticsView, Generic[T]):
    """A best-effort model and every problem met while building it.

    The model is always present (bad lines are skipped, defaults kept) so that
    cross-file checks can still run; it is only safe to *use* when `ok`.
    """

    model: T
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def unwrap(self) -> T:
        """The model, or `ConfigErrors` listing every problem when there is an error."""
        if not self.ok:
            raise ConfigErrors(self.diagnostics)
        return self.model


# ---------------------------------------------------------------------------
# Lines and words


def physical_lines(text: str, path: str) -> Iterator[SourceLine]:
    """The file's lines, numbered from 1, without their line endings (CR LF too)."""
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        yield SourceLine(path, number, raw)


def strip_comment(text: str, comment: str = "#") -> str:
    """The text before the first comment character (no quoting: heartbeat has none)."""
    cut = text.find(comment)
    return text if cut < 0 else text[:cut]


@dataclass(frozen=True)
class Token:
    """A word of a line and its 1-based column, so errors can point at it."""

    text: str
    column: int


def split_words(text: str, delimiters: str = " \t\f\v", start_column: int = 1) -> list[Token]:
    """Split `text` on any of `delimiters`, remembering where each word starts."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in delimiters:
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in delimiters:
            j += 1
        tokens.append(Token(text[i:j], start_column + i))
        i = j
    return tokens


# ---------------------------------------------------------------------------
# Values


class ValueProblem(ValueError):
    """A value that does not parse; the message says what was expected."""


TRUE_WORDS = frozenset({"true", "on", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "off", "no", "n", "0"})

_TIME_RE = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|msec|us|usec)?$", re.IGNORECASE)
#: no setting needs a longer number; longer ones are refused before any conversion
MAX_NUMBER_TEXT = 32


def parse_heartbeat_time(text: str) -> float:
    """Heartbeat's time syntax: seconds (fractions allowed), or with `ms`/`us` suffix.

    Like heartbeat's `cl_get_msec`, the result is rounded to whole
    milliseconds; it is returned as float seconds.
    """
    m = _TIME_RE.match(text.strip()) if len(text.strip()) <= MAX_NUMBER_TEXT else None
    if not m:
        raise ValueProblem(
            f"bad time {text[:40]!r}: expected seconds (e.g. 2 or 1.5) or milliseconds (e.g. "
            "1500ms)")
    number = float(m.group(1))
    unit = (m.group(2) or "").lower()
    if unit in ("ms", "msec"):
        ms = number
    elif unit in ("us", "usec"):
        ms = number / 1000.0
    else:
        ms = number * 1000.0
    if not math.isfinite(ms) or ms > 1e12:
        raise ValueProblem(f"time {text!r} is out of range")
    return math.floor(ms + 0.5) / 1000.0


def format_time(seconds: float) -> str:
    """The shortest heartbeat time string for a value: `2`, `1.5`, `1500ms` style."""
    ms = round(seconds * 1000)
    if ms % 1000 == 0:
        return str(ms // 1000)
    return f"{ms}ms"


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueProblem(f"bad boolean {text!r}: expected one of on/off, yes/no, true/false, 1/0")


def parse_int(text: str, lo: int | None = None, hi: int | None = None, what: str = "number") -> int:
    word = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", word):
        raise ValueProblem(f"bad {what} {text[:40]!r}: expected a whole number")
    if len(word) > MAX_NUMBER_TEXT:
        raise ValueProblem(f"{what} {word[:20]}... ({len(word)} digits) is out of range")
    value = int(word)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            raise ValueProblem(f"{what} {value} is out of range {lo}..{hi}")
        if lo is not None:
            raise ValueProblem(f"{what} {value} must be at least {lo}")
        raise ValueProblem(f"{what} {value} must be at most {hi}")
    return value


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str, version: int | None = None) -> IPAddress:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        kind = {4: "IPv4 ", 6: "IPv6 "}.get(version or 0, "IP ")
        raise ValueProblem(f"bad {kind}address {text!r}") from None
    if version is not None and addr.version != version:
        raise ValueProblem(f"{text!r} is not an IPv{version} address")
    return addr


_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*)(\.[A-Za-z0-9_-]+)*\.?$")


def is_hostname(text: str) -> bool:
    """A syntactically plausible host name (letters, digits, `-`, `_`, dots)."""
    return bool(_HOSTNAME_RE.match(text))


class ValueParser(Generic[T]):
    """A parser for one value: `__call__(text) -> T` or `ValueProblem`; `expects` for docs."""

    expects = "a value"

    def __call__(self, text: str) -> T:  # pragma: no cover - abstract
        raise NotImplementedError


class TimeValue(ValueParser[float]):
    """A heartbeat time (float seconds) with optional bounds."""

    def __init__(self, minimum: float | None = None, exclusive_minimum: bool = False):
        self.minimum = minimum
        self.exclusive_minimum = exclusive_minimum
        self.expects = "a time (seconds, or e.g. 1500ms)"

    def __call__(self, text: str) -> float:
        value = parse_heartbeat_time(text)
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                raise ValueProblem(f"time {text!r} must be more than {format_time(self.minimum)}s")
            if not self.exclusive_minimum and value < self.minimum:
                raise ValueProblem(f"time {text!r} must be at least {format_time(self.minimum)}s")
        return value


class IntValue(ValueParser[int]):
    def __init__(self, lo: int | None = None, hi: int | None = None, what: str = "number"):
        self.lo, self.hi, self.what = lo, hi, what
        bounds = f" {lo}..{hi}" if lo is not None and hi is not None else ""
        self.expects = f"a whole number{bounds}"

    def __call__(self, text: str) -> int:
        return parse_int(text, self.lo, self.hi, self.what)


class BoolValue(ValueParser[bool]):
    expects = "on/off (or yes/no, true/false, 1/0)"

    def __call__(self, text: str) -> bool:
        return parse_bool(text)


class ChoiceValue(ValueParser[str]):
    def __init__(self, *choices: str, case_sensitive: bool = True):
        self.choices = choices
        self.case_sensitive = case_sensitive
        self.expects = " | ".join(choices)

    def __call__(self, text: str) -> str:
        word = text.strip()
        for choice in self.choices:
            if word == choice or (not self.case_sensitive and word.lower() == choice.lower()):
                return choice
        raise ValueProblem(f"bad value {text!r}: expected {self.expects}")


class StrValue(ValueParser[str]):
    def __init__(self, expects: str = "a word", pattern: str | None = None):
        self.expects = expects
        self.pattern = re.compile(pattern) if pattern else None

    def __call__(self, text: str) -> str:
        if not text:
            raise ValueProblem(f"expected {self.expects}")
        if self.pattern and not self.pattern.fullmatch(text):
            raise ValueProblem(f"bad value {text!r}: expected {self.expects}")
        return text


class PathValue(ValueParser[str]):
    expects = "an absolute path"

    def __call__(self, text: str) -> str:
        if not text.startswith("/"):
            raise ValueProblem(f"{text!r} is not an absolute path")
        return text


# ---------------------------------------------------------------------------
# Keyword tables


class KeywordStatus(enum.StrEnum):
    """What vigil does with a keyword it recognises."""

    USED = "used"  # parsed into the model and acted on
    IGNORED = "ignored"  # accepted (so legacy files work) but has no effect in vigil
    UNSUPPORTED = "unsupported"  # recognised, refused with a clear message
    DEPRECATED = "deprecated"  # accepted and translated, with a warning


@dataclass(frozen=True)
class Keyword:
    """One keyword of a config format: the single place its syntax, default and doc live.

    `parser` parses one value (for option-style keywords); whole-line keywords
    leave it None and are handled by the format module. `reason` explains an
    IGNORED/UNSUPPORTED/DEPRECATED status in one line (shown by `vigil check`
    and in docs/config.md).
    """

    name: str
    doc: str
    parser: ValueParser[Any] | None = None
    default: Any = None
    status: KeywordStatus = KeywordStatus.USED
    reason: str = ""
    field: str | None = None  # model attribute it fills, when it differs from name

    @property
    def attribute(self) -> str:
        return self.field or self.name.replace("-", "_")


def keyword_table(*keywords: Keyword) -> Mapping[str, Keyword]:
    table: dict[str, Keyword] = {}
    for kw in keywords:
        if kw.name in table:
            raise ValueError(f"keyword {kw.name} defined twice")
        table[kw.name] = kw
    return FrozenMap(table)


# ---------------------------------------------------------------------------
# Frozen containers and JSON


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable, ordered mapping for use inside frozen dataclasses."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()):
        self._data: dict[K, V] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (list(self._data.items()),))


#: Field metadata that keeps a field (a source location, say) out of `to_jsonable`.
NO_JSON: Mapping[str, Any] = MappingProxyType({"json": False})
#: Field metadata marking a secret (keys, passwords): `to_jsonable` masks it unless asked.
SECRET: Mapping[str, Any] = MappingProxyType({"secret": True})
MASK = "********"


def to_jsonable(value: Any, reveal_secrets: bool = False) -> Any:
    """Plain JSON data for any model: dataclasses become objects, enums their values.

    Fields declared with `NO_JSON` metadata (source locations, for instance)
    are left out so the output describes the configuration only; fields marked
    `SECRET` are shown as ``********`` unless `reveal_secrets`.
    """
    def again(v: Any) -> Any:
        return to_jsonable(v, reveal_secrets)

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if not f.metadata.get("json", True):
                continue
            item = getattr(value, f.name)
            if f.metadata.get("secret") and item and not reveal_secrets:
                out[f.name] = MASK
            else:
                out[f.name] = again(item)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(again(k)): again(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [again(v) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=repr)
        return items
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address,
                          ipaddress.IPv4Network, ipaddress.IPv6Network, PurePath)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
