"""`/etc/ha.d/authkeys`: how heartbeat packets are signed, read unchanged.

Format (as heartbeat 3.0.6 reads it): ``auth N`` names the key that signs
outgoing packets; lines ``N METHOD [SECRET]`` list keys, N from 0 to 15.
Incoming packets are accepted when they verify with *any* listed key, which
lets a cluster change keys without a flag day. Methods: ``crc`` (no secret;
detects corruption only), ``md5`` and ``sha1`` (HMAC with the secret), and
vigil's extensions ``sha256`` and ``sha512`` (HMAC). The secret is one word;
words after it are ignored, as heartbeat ignores them. Like heartbeat, the
`auth` line must come before the key it names.

Heartbeat refuses to start when the file is readable by group or others;
`check_mode(path)` does the same check on a real file (it is separate from
parsing so that parsing stays pure).

Public API: `AuthKeys`, `AuthKey`, `AuthMethod`, `analyze`, `parse`,
`validate` (an `auth` line naming a listed key), `render`, `check_mode`,
`read` (all three checks on a real file).
"""

from __future__ import annotations

import enum
import os
import re
import stat
from dataclasses import dataclass, field

from vigil.config.base import (
    NO_JSON,
    SECRET,
    Diagnostic,
    Diagnostics,
    FileUnreadable,
    FrozenMap,
    Parsed,
    Severity,
    physical_lines,
    split_words,
)
from vigil.errors import Location

DEFAULT_PATH = "/etc/ha.d/authkeys"
MAX_KEYS = 16  # key numbers 0..15, as heartbeat's MAXAUTH


class AuthMethod(enum.StrEnum):
    """How packets are signed. `crc` takes no secret; the HMAC methods need one."""

    CRC = "crc"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"

    @property
    def needs_secret(self) -> bool:
        return self is not AuthMethod.CRC

    @property
    def is_extension(self) -> bool:
        """Not understood by heartbeat itself: only vigil peers can verify it."""
        return self in (AuthMethod.SHA256, AuthMethod.SHA512)


@dataclass(frozen=True)
class AuthKey:
    """One numbered key: method and secret (empty for crc)."""

    number: int
    method: AuthMethod
    secret: str = field(default="", repr=False, metadata=SECRET)
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)


@dataclass(frozen=True)
class AuthKeys:
    """The signing key number (None when the file has no `auth` line) and every accepted key."""

    auth: int | None = None
    keys: FrozenMap[int, AuthKey] = field(default_factory=FrozenMap)
    path: str = field(default=DEFAULT_PATH, compare=False, metadata=NO_JSON)
    auth_location: Location | None = field(default=None, compare=False, repr=False,
                                           metadata=NO_JSON)

    @property
    def signing_key(self) -> AuthKey:
        """The key outgoing packets are signed with (`auth N`); KeyError if there is none."""
        if self.auth is None:
            raise KeyError("no auth line")
        return self.keys[self.auth]

    def accepts(self, number: int) -> bool:
        """Whether a packet signed with key `number` is checked at all (any listed key is)."""
        return number in self.keys


_AUTH_RE = re.compile(r"^auth\s*([+-]?[0-9]+)")


def analyze(text: str, path: str = DEFAULT_PATH) -> Parsed[AuthKeys]:
    """Parse authkeys, collecting every problem; never raises for bad input."""
    diags = Diagnostics(path)
    auth: int | None = None
    auth_line = None
    keys: dict[int, AuthKey] = {}
    for line in physical_lines(text, path):
        stripped = line.text.lstrip(" \t\f\v")
        column = len(line.text) - len(stripped) + 1
        if not stripped or stripped.startswith("#"):
            continue
        words = split_words(line.text)
        if stripped.startswith("a"):
            m = _AUTH_RE.match(stripped)
            if not m:
                diags.error(line, column, "bad auth line: expected 'auth N' (N = the key that "
                            "signs outgoing packets)")
                continue
            if auth is not None:
                diags.error(line, column,
                            f"auth given twice (first on line {auth_line.number})"
                            if auth_line else "auth given twice")
                continue
            auth = _key_number(m.group(1))
            auth_line = line
            if not 0 <= auth < MAX_KEYS:
                diags.error(line, column + m.start(1), f"key number {_shown(m.group(1))} is "
                            "out of range 0..15")
            elif auth in keys:
                diags.error(line, column,
                            f"auth {auth} comes after key {auth} (line "
                            f"{keys[auth].location.line if keys[auth].location else '?'}): "
                            "heartbeat needs the auth line first")
            continue
        head = words[0]
        if not re.fullmatch(r"[+-]?[0-9]+", head.text):
            diags.error(line, head.column,
                        f"bad key line: expected 'N METHOD [SECRET]', got {head.text!r}")
            continue
        number = _key_number(head.text)
        if len(words) < 2:
            diags.error(line, head.column + len(head.text),
                        f"key {_shown(head.text)} needs a method (crc, md5, sha1, sha256 or "
                        "sha512)")
            continue
        if not 0 <= number < MAX_KEYS:
            diags.error(line, head.column, f"key number {_shown(head.text)} is out of range "
                        "0..15")
            continue
        method_token = words[1]
        try:
            method = AuthMethod(method_token.text)
        except ValueError:
            diags.error(line, method_token.column,
                        f"unknown method {method_token.text!r}: expected crc, md5, sha1, "
                        "sha256 or sha512")
            continue
        secret = words[2].text if len(words) > 2 else ""
        try:
            secret.encode("utf-8")
        except UnicodeEncodeError:
            diags.error(line, words[2].column, "the secret is not valid UTF-8 text")
            continue
        if method.needs_secret and not secret:
            diags.error(line, method_token.column, f"method {method} needs a secret")
            continue
        if not method.needs_secret and secret:
            diags.error(line, words[2].column, "method crc takes no secret (it signs nothing)")
            continue
        if len(words) > 3:
            diags.warning(line, words[3].column,
                          "words after the secret are ignored (the secret is one word)")
        if number in keys:
            diags.error(line, head.column,
                        f"key {number} listed twice (first on line "
                        f"{keys[number].location.line if keys[number].location else '?'})")
            continue
        keys[number] = AuthKey(number, method, secret, line.at(head.column))
        if method is AuthMethod.CRC:
            diags.warning(line, method_token.column,
                          "crc authenticates nothing (anyone on the network can inject "
                          "heartbeats): use sha1 or sha256 with a secret")
        elif method.is_extension:
            diags.note(line, method_token.column,
                       f"{method} is a vigil extension: heartbeat peers cannot verify it")
    if auth is not None and not 0 <= auth < MAX_KEYS:
        auth = None
    model = AuthKeys(auth, FrozenMap(sorted(keys.items())), path,
                     auth_line.at(1) if auth_line else None)
    return Parsed(model, diags.freeze())


def _key_number(digits: str) -> int:
    """The number written; -1 (out of range) for one too long to be a key number."""
    return int(digits) if len(digits.lstrip("+-")) <= 6 else -1


def _shown(digits: str) -> str:
    return digits if len(digits) <= 24 else digits[:20] + "..."


def validate(config: AuthKeys) -> tuple[Diagnostic, ...]:
    """Heartbeat's start-up check: an `auth N` line naming a listed key.

    Apart from `analyze` so that a template with every line commented out (as
    Debian ships it) parses cleanly; `vigil check` runs both.
    """
    if config.auth is None:
        return (Diagnostic(Severity.ERROR, Location(config.path),
                           "no 'auth N' line: say which key signs outgoing packets"),)
    if config.auth not in config.keys:
        return (Diagnostic(Severity.ERROR, config.auth_location or Location(config.path),
                           f"auth {config.auth} names key {config.auth}, which is not listed"),)
    return ()


def parse(text: str, path: str = DEFAULT_PATH) -> AuthKeys:
    """Parse authkeys or raise `ConfigErrors` naming every mistake."""
    return analyze(text, path).unwrap()


def render(config: AuthKeys) -> str:
    """An authkeys text that parses back to an equal model (mode 600 is up to the writer)."""
    lines = ["# authkeys written by vigil: keep this file mode 600"]
    if config.auth is not None:
        lines.append(f"auth {config.auth}")
    for key in config.keys.values():
        lines.append(f"{key.number} {key.method}" + (f" {key.secret}" if key.secret else ""))
    return "\n".join(lines) + "\n"


def check_mode(path: str) -> Diagnostic | None:
    """Heartbeat's rule: refuse an authkeys file readable by group or others.

    Returns an error diagnostic, or None when the mode is safe.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        return Diagnostic(Severity.ERROR, Location(path), f"cannot stat: {exc.strerror}")
    mode = info.st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = " and ".join(w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
                           if mode & bit)
        return Diagnostic(
            Severity.ERROR, Location(path),
            f"authkeys is writable by {who} (mode {stat.S_IMODE(mode):04o}): anyone who can "
            f"write it chooses the cluster's key; run 'chmod 600 {path}'")
    if info.st_uid not in (0, os.geteuid()):
        return Diagnostic(
            Severity.ERROR, Location(path),
            f"authkeys belongs to uid {info.st_uid}, not root: its owner chooses the "
            f"cluster's key; run 'chown root {path}'")
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        who = " and ".join(w for w, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH))
                           if mode & bit)
        return Diagnostic(
            Severity.ERROR, Location(path),
            f"authkeys is readable by {who} (mode {stat.S_IMODE(mode):04o}): heartbeat and vigil "
            f"refuse to start; run 'chmod 600 {path}'")
    return None


def read(path: str = DEFAULT_PATH) -> Parsed[AuthKeys]:
    """Read and analyze the file, including the mode check."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        raise FileUnreadable(Location(path), f"cannot read: {exc.strerror}") from exc
    parsed = analyze(text, path)
    problems = list(parsed.diagnostics) + list(validate(parsed.model))
    mode_problem = check_mode(path)
    if mode_problem is not None:
        problems.insert(0, mode_problem)
    return Parsed(parsed.model, tuple(problems))


__all__ = ["DEFAULT_PATH", "AuthKey", "AuthKeys", "AuthMethod", "analyze", "check_mode",
           "parse", "read", "render", "validate"]
