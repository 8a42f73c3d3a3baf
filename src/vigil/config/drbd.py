"""DRBD resource files (`/etc/drbd.conf`, `drbd.d/*.res`), read unchanged.

The syntax is drbd.conf(5)'s: statements are words ended by ``;`` or followed
by a ``{ ... }`` block; ``#`` starts a comment; values may be quoted;
``skip ... { ... }`` comments a block out; ``include "glob";`` (top level
only) reads more files, relative to the including file. Sections: `global`,
`common` (inherited by every resource), and ``resource NAME { ... }`` with
`net`, `disk`, `startup`, `options`, `handlers` (and DRBD 8.3's `syncer`,
mapped onto disk/net with a warning), ``on HOST [HOST...] { device; disk;
address; meta-disk; [volume N {...}] }``, ``floating [AF] ADDR:PORT``, and
``volume N { ... }``. DRBD 9's `connection` and `stacked-on-top-of` are
recognised and reported as unsupported.

Option values are parsed into typed, unit-normalised fields: times in float
seconds (DRBD's "tenths of a second" options converted), sizes in bytes and
rates in bytes per second (DRBD's default units, sectors or KiB, applied
when no K/M/G suffix is given). Defaults are DRBD 8.4's kernel defaults
(drbd_limits.h), where its man pages disagree among themselves. Options
vigil does not know are reported as warnings and kept in each section's
`extra`, never dropped.

Public API: `DrbdConfig`, `Resource`, `Host`, `Volume`, `Address`,
`NetOptions`, `DiskOptions`, `StartupOptions`, `ResourceOptions`,
`GlobalOptions`, `analyze`, `analyze_files`, `read`, `parse`, `render`,
`OPTION_TABLES`.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from vigil.config.base import (
    NO_JSON,
    SECRET,
    Diagnostic,
    Diagnostics,
    FileUnreadable,
    FrozenMap,
    Parsed,
    Severity,
    SourceLine,
)
from vigil.errors import Location

DEFAULT_PATH = "/etc/drbd.conf"
DEFAULT_PORT = 7788


# ---------------------------------------------------------------------------
# Lexing and the generic statement tree


@dataclass(frozen=True)
class _Tok:
    text: str
    kind: str  # word | string | { | } | ;
    line: SourceLine
    column: int


@dataclass
class _Stmt:
    words: list[_Tok]
    block: list[_Stmt] | None = None  # None: ended by ';'

    @property
    def head(self) -> _Tok:
        return self.words[0]

    @property
    def values(self) -> list[str]:
        return [w.text for w in self.words[1:]]


def _lex(text: str, path: str, diags: Diagnostics) -> list[_Tok]:
    lines = text.split("\n")
    tokens: list[_Tok] = []
    for index, raw in enumerate(lines):
        line = SourceLine(path, index + 1, raw.removesuffix("\r"))
        s = line.text
        i = 0
        while i < len(s):
            ch = s[i]
            if ch in " \t\f\v\r":
                i += 1
            elif ch == "#":
                break
            elif ch in "{};":
                tokens.append(_Tok(ch, ch, line, i + 1))
                i += 1
            elif ch == '"':
                j = i + 1
                out: list[str] = []
                while j < len(s) and s[j] != '"':
                    if s[j] == "\\" and j + 1 < len(s):
                        out.append(s[j + 1])
                        j += 2
                        continue
                    out.append(s[j])
                    j += 1
                if j >= len(s):
                    diags.error(line, i + 1, "unterminated string (a quoted value must end on "
                                "the same line)")
                    tokens.append(_Tok("".join(out), "string", line, i + 1))
                    break
                tokens.append(_Tok("".join(out), "string", line, i + 1))
                i = j + 1
            else:
                j = i
                while j < len(s) and s[j] not in ' \t\f\v\r{};"#':
                    j += 1
                tokens.append(_Tok(s[i:j], "word", line, i + 1))
                i = j
    return tokens


def _tree(tokens: list[_Tok], diags: Diagnostics, path: str) -> list[_Stmt]:
    """Group tokens into statements and blocks; report unbalanced braces and missing ';'."""
    pos = 0

    def skip_block(opener: _Tok) -> None:
        """`skip ... { ... }`: nothing inside is read, but the braces must balance."""
        nonlocal pos
        depth = 1
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok.kind == "{":
                depth += 1
            elif tok.kind == "}":
                depth -= 1
                if depth == 0:
                    return
        diags.error(opener.line, opener.column, "this '{' is never closed")

    def block(depth: int, opener: _Tok | None) -> list[_Stmt]:
        nonlocal pos
        out: list[_Stmt] = []
        words: list[_Tok] = []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok.kind == ";":
                if words:
                    out.append(_Stmt(words))
                words = []
            elif tok.kind == "{":
                if not words:
                    diags.error(tok.line, tok.column, "'{' without a section name before it")
                    words = [_Tok("", "word", tok.line, tok.column)]
                if words[0].text == "skip":
                    skip_block(tok)
                    out.append(_Stmt(words, []))
                    words = []
                    continue
                inner = block(depth + 1, tok)
                out.append(_Stmt(words, inner))
                words = []
            elif tok.kind == "}":
                if words:
                    last = words[-1]
                    diags.error(last.line, last.column + len(last.text),
                                f"missing ';' after '{' '.join(w.text for w in words)}'")
                    out.append(_Stmt(words))
                if depth == 0:
                    diags.error(tok.line, tok.column, "'}' without a matching '{'")
                    words = []
                    continue
                return out
            else:
                words.append(tok)
        if words:
            last = words[-1]
            diags.error(last.line, last.column + len(last.text),
                        f"missing ';' after '{' '.join(w.text for w in words)}'")
            out.append(_Stmt(words))
        if opener is not None:
            diags.error(opener.line, opener.column, "this '{' is never closed")
        return out

    return block(0, None)


# ---------------------------------------------------------------------------
# Option tables (one record per option: name, parser, default, doc)


class _Bad(ValueError):
    pass


_SUFFIX = {"": None, "s": 512, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def _small_number(text: str) -> bool:
    """Digits only, and few enough to be a number any setting could mean."""
    return text.isdigit() and len(text) <= 9


def _number_with_unit(text: str, default_unit: int) -> int:
    m = re.fullmatch(r"([0-9]{1,18})([sSkKmMgGtT]?)(?:i?[bB])?", text)
    if not m:
        raise _Bad(f"bad size {text!r}: expected a number with an optional K, M or G suffix")
    scale = _SUFFIX[m.group(2).lower()] or default_unit
    return int(m.group(1)) * scale


@dataclass(frozen=True)
class OptionSpec:
    """One DRBD option: its name, how its value parses, its default and a doc line."""

    name: str
    doc: str
    parse: Callable[[list[str]], Any]
    default: Any
    render: Callable[[Any], str] = str

    @property
    def attribute(self) -> str:
        return self.name.replace("-", "_")


def _one(values: list[str], name: str) -> str:
    if len(values) != 1:
        raise _Bad(f"{name} takes one value")
    return values[0]


def _enum(*choices: str, prefix: str | None = None) -> Callable[[list[str]], str]:
    def parse(values: list[str]) -> str:
        word = _one(values, "this option")
        if word in choices or (prefix and word.startswith(prefix) and len(word) > len(prefix)):
            return word
        raise _Bad(f"bad value {word!r}: expected {' | '.join(choices)}")
    return parse


def _flag(values: list[str]) -> bool:
    if not values:
        return True
    word = _one(values, "this option")
    if word in ("yes", "on", "true"):
        return True
    if word in ("no", "off", "false"):
        return False
    raise _Bad(f"bad value {word!r}: expected yes or no")


def _int(lo: int, hi: int) -> Callable[[list[str]], int]:
    def parse(values: list[str]) -> int:
        word = _one(values, "this option")
        if not re.fullmatch(r"[0-9]{1,18}", word):
            raise _Bad(f"bad number {word[:24]!r}")
        value = int(word)
        if not lo <= value <= hi:
            raise _Bad(f"{value} is out of range {lo}..{hi}")
        return value
    return parse


def _tenths(lo: int, hi: int) -> Callable[[list[str]], float]:
    """A time in DRBD's tenths of a second, returned in seconds."""
    inner = _int(lo, hi)
    return lambda values: inner(values) / 10.0


def _seconds(lo: int, hi: int) -> Callable[[list[str]], float]:
    inner = _int(lo, hi)
    return lambda values: float(inner(values))


def _size(default_unit: int, lo: int = 0, hi: int = 1 << 62) -> Callable[[list[str]], int]:
    def parse(values: list[str]) -> int:
        value = _number_with_unit(_one(values, "this option"), default_unit)
        if not lo <= value <= hi:
            raise _Bad(f"{value} bytes is out of range")
        return value
    return parse


def _text(values: list[str]) -> str:
    return _one(values, "this option")


#: digests the peer authentication can use (DRBD names them as the kernel does)
HMAC_ALGORITHMS = ("md5", "sha1", "sha256", "sha384", "sha512")


def _hmac_alg(values: list[str]) -> str:
    name = _one(values, "this option")
    if name.lower() not in HMAC_ALGORITHMS:
        raise _Bad(f"{name!r} is not supported (use one of {', '.join(HMAC_ALGORITHMS)})")
    return name.lower()


#: the digests verify-alg, csums-alg and data-integrity-alg may name, as the kernel's
#: crypto API names them in DRBD's files -> hashlib's name ("crc32": zlib's CRC-32, which
#: vigil also computes for crc32c: only the two vigil nodes compare the digests)
DIGEST_ALGORITHMS = {
    "crc32c": "crc32", "crc32": "crc32", "md5": "md5", "sha1": "sha1", "sha224": "sha224",
    "sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "sha3-256": "sha3_256",
    "sha3-512": "sha3_512", "blake2b-512": "blake2b", "blake2s-256": "blake2s",
}


def _digest_alg(values: list[str]) -> str:
    name = _one(values, "this option")
    if name.lower() not in DIGEST_ALGORITHMS:
        raise _Bad(f"{name!r} is not supported (use one of {', '.join(DIGEST_ALGORITHMS)})")
    return name.lower()


#: options vigil parses but does not do: said at their line, never silently dropped
NOT_DONE: dict[str, str] = {
    "max-epoch-size": "no effect: vigil has no write epochs, each replicated write is "
                      "acknowledged on its own",
    "congestion-fill": "no effect: used by on-congestion pull-ahead, which vigil does not do",
    "congestion-extents": "no effect: used by on-congestion pull-ahead, which vigil does not do",
    "use-rle": "no effect: the bitmap exchange is always zlib-compressed",
    "socket-check-timeout": "no effect: a new connection is used once its handshake is done",
    "unplug-watermark": "no effect (obsolete in DRBD too)",
    "max-bio-bvecs": "no effect: requests reach vigil through FUSE, not as bios",
    "resync-after": "not implemented: every resource resyncs independently",
    "discard-zeroes-if-aligned": "no effect: the volume's device does not pass discards",
    "rs-discard-granularity": "no effect: the volume's device does not pass discards",
    "disable-write-same": "no effect: the volume's device does not pass write-same",
    "cpu-mask": "no effect: the volume daemon runs where the scheduler puts it",
    "on-no-quorum": "no effect: vigil volumes have no quorum (two nodes)",
    "usage-count": "no effect: vigil reports no usage",
    "minor-count": "no effect: vigil makes a device node per resource",
    "dialog-refresh": "no effect: vigil volume wait-connect prints no dialog",
    "disable-ip-verification": "no effect: vigil does not verify addresses at up",
    "udev-always-use-vnr": "no effect: vigil volumes have one volume and no udev rules",
}


#: options vigil does only with some values: (name, the value vigil does, what happens)
NOT_DONE_UNLESS = {
    "rr-conflict": ("disconnect", "not implemented: a resync against the roles always "
                                  "disconnects (rr-conflict disconnect)"),
    "always-asbp": (False, "not implemented: the split-brain policies apply only where DRBD "
                           "applies them without it"),
    "on-congestion": ("block", "not implemented: a full send buffer holds the writer back "
                               "(block)"),
    "tcp-cork": (False, "no effect: vigil sends with TCP_NODELAY and never corks"),
    "disk-barrier": (False, "not implemented: ordering comes from flushes (fdatasync)"),
    "disk-flushes": (True, "not implemented: a flush is always passed to the disk"),
    "disk-drain": (True, "not implemented: writes are always drained before a flush"),
    "md-flushes": (True, "not implemented: metadata writes are always flushed"),
    "al-updates": (True, "not implemented: activity-log transactions are always written"),
    "disk-timeout": (0.0, "not implemented: a hung backing disk is not detached"),
    "read-balancing": ("prefer-local", "not implemented: reads are always local"),
    "auto-promote": (False, "not implemented: promote with vigil volume primary"),
    "quorum": ("off", "not implemented: vigil volumes have no quorum (two nodes)"),
    "on-no-data-accessible": ("io-error", "not implemented: I/O without good data fails"),
}
#: the startup section is read by the boot path (`vigil volume wait-connect`, `become-primary`,
#: run by the vigil-volumes unit); what it does not do is said at its line
STARTUP_NOT_DONE = {
    "stacked-timeouts": "not used: vigil has no stacked resources",
}
#: handlers vigil runs; the others are accepted and said not to run
HANDLERS_RUN = frozenset({"fence-peer", "initial-split-brain", "split-brain",
                          "pri-lost-after-sb", "before-resync-target", "after-resync-target",
                          "before-resync-source", "local-io-error"})


def _render_tenths(value: float) -> str:
    return str(round(value * 10))


def _render_seconds(value: float) -> str:
    return str(round(value))


def _render_bytes(value: int) -> str:
    for suffix, scale in (("G", 1024 ** 3), ("M", 1024 ** 2), ("K", 1024)):
        if value and value % scale == 0:
            return f"{value // scale}{suffix}"
    if value % 512 == 0:
        return f"{value // 512}s"
    return str(value)


def _render_flag(value: bool) -> str:
    return "yes" if value else "no"


def _render_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


KIB = 1024
SECTOR = 512

_AFTER_SB_0 = ("disconnect", "discard-younger-primary", "discard-older-primary",
               "discard-zero-changes", "discard-least-changes", "discard-local",
               "discard-remote")

NET_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("protocol", "replication protocol: A async, B memory-sync, C sync",
               _enum("A", "B", "C"), "C"),
    OptionSpec("timeout", "peer answer timeout (tenths of a second in the file)",
               _tenths(1, 600), 6.0, _render_tenths),
    OptionSpec("connect-int", "seconds between connection attempts", _seconds(1, 120), 10.0,
               _render_seconds),
    OptionSpec("ping-int", "seconds of idle before a keep-alive", _seconds(1, 120), 10.0,
               _render_seconds),
    OptionSpec("ping-timeout", "keep-alive answer timeout (tenths of a second)",
               _tenths(1, 300), 0.5, _render_tenths),
    OptionSpec("ko-count", "expel a peer that misses this many timeouts on one write (0: off)",
               _int(0, 200), 7),
    OptionSpec("max-buffers", "receive buffers (pages)", _int(32, 131072), 2048),
    OptionSpec("max-epoch-size", "writes between barriers", _int(1, 20000), 2048),
    OptionSpec("sndbuf-size", "TCP send buffer in bytes (0: autotune)", _size(1, 0, 10 << 20), 0,
               _render_bytes),
    OptionSpec("rcvbuf-size", "TCP receive buffer in bytes (0: autotune)",
               _size(1, 0, 10 << 20), 0, _render_bytes),
    OptionSpec("allow-two-primaries", "let both nodes be primary (cluster file systems only)",
               _flag, False, _render_flag),
    OptionSpec("cram-hmac-alg", "HMAC algorithm of peer authentication", _hmac_alg, None),
    OptionSpec("shared-secret", "secret of peer authentication (up to 64 characters)", _text,
               None, _render_text),
    OptionSpec("after-sb-0pri", "split-brain recovery when no node is primary",
               _enum(*_AFTER_SB_0, prefix="discard-node-"), "disconnect"),
    OptionSpec("after-sb-1pri", "split-brain recovery when one node is primary",
               _enum("disconnect", "consensus", "violently-as0p", "discard-secondary",
                     "call-pri-lost-after-sb"), "disconnect"),
    OptionSpec("after-sb-2pri", "split-brain recovery when both nodes are primary",
               _enum("disconnect", "violently-as0p", "call-pri-lost-after-sb"), "disconnect"),
    OptionSpec("always-asbp", "apply the split-brain policies even when a third node shows",
               _flag, False, _render_flag),
    OptionSpec("rr-conflict", "resync direction against the current roles",
               _enum("disconnect", "call-pri-lost", "violently", "retry-connect",
                     "auto-discard"), "disconnect"),
    OptionSpec("data-integrity-alg", "digest of every replicated block", _digest_alg, None),
    OptionSpec("tcp-cork", "let the kernel cork TCP", _flag, True, _render_flag),
    OptionSpec("on-congestion", "what to do when the send buffer fills",
               _enum("block", "pull-ahead", "disconnect"), "block"),
    OptionSpec("congestion-fill", "send-buffer fill that counts as congestion (bytes)",
               _size(SECTOR, 0, 10 << 30), 0, _render_bytes),
    OptionSpec("congestion-extents", "activity-log extents that count as congestion",
               _int(67, 65534), 1237),
    OptionSpec("csums-alg", "digest used to skip identical blocks in resync", _digest_alg, None),
    OptionSpec("verify-alg", "digest of online verify", _digest_alg, None),
    OptionSpec("use-rle", "run-length encode the bitmap exchange", _flag, False, _render_flag),
    OptionSpec("socket-check-timeout", "wait for a new connection to settle (tenths; 0: "
               "ping-timeout)", _tenths(0, 300), 0.0, _render_tenths),
    OptionSpec("discard-my-data", "discard local data on the next connect (one-shot)", _flag,
               False, _render_flag),
    OptionSpec("unplug-watermark", "obsolete; no effect on current kernels", _int(16, 131072),
               128),
    OptionSpec("transport", "DRBD 9 transport (tcp, rdma)", _text, "tcp"),
)

DISK_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("on-io-error", "what a lower-level I/O error does",
               _enum("pass_on", "call-local-io-error", "detach"), "detach"),
    OptionSpec("fencing", "fence the peer's disk when a primary loses the connection",
               _enum("dont-care", "resource-only", "resource-and-stonith"), "dont-care"),
    OptionSpec("size", "use only this much of the backing device (bytes; default unit sectors)",
               _size(SECTOR), None, _render_bytes),
    OptionSpec("disk-barrier", "use barriers for write ordering", _flag, False, _render_flag),
    OptionSpec("disk-flushes", "use flushes for write ordering", _flag, True, _render_flag),
    OptionSpec("disk-drain", "drain requests for write ordering", _flag, True, _render_flag),
    OptionSpec("md-flushes", "flush metadata writes", _flag, True, _render_flag),
    OptionSpec("max-bio-bvecs", "limit bvecs per bio (0: no limit)", _int(0, 128), 0),
    OptionSpec("resync-rate", "fixed resync rate, bytes/s (default unit KiB/s)",
               _size(KIB, 1 * KIB, 4 << 30), 250 * KIB, _render_bytes),
    OptionSpec("resync-after", "resync only after this resource is in sync", _text, None),
    OptionSpec("al-extents", "activity log size in 4 MiB extents", _int(7, 65534), 1237),
    OptionSpec("al-updates", "write activity-log transactions", _flag, True, _render_flag),
    OptionSpec("c-plan-ahead", "resync controller planning horizon (tenths; 0: fixed rate)",
               _tenths(0, 300), 2.0, _render_tenths),
    OptionSpec("c-delay-target", "resync controller delay target (tenths of a second)",
               _tenths(1, 100), 1.0, _render_tenths),
    OptionSpec("c-fill-target", "resync controller fill target in bytes (default unit "
               "sectors)", _size(SECTOR, 0, 512 << 20), 100 * SECTOR, _render_bytes),
    OptionSpec("c-max-rate", "resync controller upper bound, bytes/s (default unit KiB/s)",
               _size(KIB, 250 * KIB, 4 << 30), 102400 * KIB, _render_bytes),
    OptionSpec("c-min-rate", "resync bandwidth kept under application I/O, bytes/s (0: no "
               "limit)", _size(KIB, 0, 4 << 30), 250 * KIB, _render_bytes),
    OptionSpec("disk-timeout", "lower-level I/O timeout (tenths; 0: none)", _tenths(0, 6000),
               0.0, _render_tenths),
    OptionSpec("read-balancing", "where reads go",
               _enum("prefer-local", "prefer-remote", "round-robin", "least-pending",
                     "when-congested-remote", "32K-striping", "64K-striping", "128K-striping",
                     "256K-striping", "512K-striping", "1M-striping"), "prefer-local"),
    OptionSpec("discard-zeroes-if-aligned", "treat aligned discards as zeroing", _flag, True,
               _render_flag),
    OptionSpec("rs-discard-granularity", "resync zero blocks as discards of this size (bytes)",
               _size(1, 0, 1 << 20), 0, _render_bytes),
    OptionSpec("disable-write-same", "never use WRITE_SAME", _flag, False, _render_flag),
)

STARTUP_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("wfc-timeout", "boot: wait this long for the peer (seconds; 0: forever)",
               _seconds(0, 300000), 0.0, _render_seconds),
    OptionSpec("degr-wfc-timeout", "boot of a degraded node: wait this long (seconds)",
               _seconds(0, 300000), 60.0, _render_seconds),
    OptionSpec("outdated-wfc-timeout", "boot with an outdated peer: wait this long (seconds)",
               _seconds(0, 300000), 0.0, _render_seconds),
    OptionSpec("wait-after-sb", "keep waiting after a split brain", _flag, False, _render_flag),
    OptionSpec("become-primary-on", "node the init script promotes (usually left to the "
               "cluster manager)", _text, None),
    OptionSpec("stacked-timeouts", "use wfc timeouts for stacked resources", _flag, False,
               _render_flag),
)

RESOURCE_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("cpu-mask", "CPU affinity of DRBD's threads (hex)", _text, None),
    OptionSpec("on-no-data-accessible", "I/O when no up-to-date data is reachable",
               _enum("io-error", "suspend-io"), "io-error"),
    OptionSpec("auto-promote", "DRBD 9: promote on open for write", _flag, True, _render_flag),
    OptionSpec("quorum", "DRBD 9: quorum policy", _text, "off"),
    OptionSpec("on-no-quorum", "DRBD 9: I/O without quorum", _enum("io-error", "suspend-io"),
               "suspend-io"),
)

GLOBAL_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("usage-count", "take part in LINBIT's usage counter", _enum("yes", "no", "ask"),
               "ask"),
    OptionSpec("minor-count", "sizing hint for the number of minors", _int(1, 1048575), None),
    OptionSpec("dialog-refresh", "seconds between redraws of the boot dialog",
               _int(0, 3600), 1),
    OptionSpec("disable-ip-verification", "do not check that addresses are local", _flag,
               False, _render_flag),
    OptionSpec("udev-always-use-vnr", "always add the volume number to udev names", _flag,
               False, _render_flag),
)

HANDLERS = ("pri-on-incon-degr", "pri-lost-after-sb", "pri-lost", "fence-peer",
            "unfence-peer", "local-io-error", "initial-split-brain", "split-brain",
            "before-resync-target", "after-resync-target", "before-resync-source",
            "out-of-sync", "quorum-lost", "disconnected")

OPTION_TABLES: FrozenMap[str, tuple[OptionSpec, ...]] = FrozenMap({
    "net": NET_OPTIONS, "disk": DISK_OPTIONS, "startup": STARTUP_OPTIONS,
    "options": RESOURCE_OPTIONS, "global": GLOBAL_OPTIONS,
})
_BY_NAME = {section: {o.name: o for o in table} for section, table in OPTION_TABLES.items()}
#: Options DRBD 9 moved between sections: accepted in either, stored in the first.
_MOVED = {"fencing": ("disk", "net"), "cpu-mask": ("options", "disk")}
#: DRBD 8.3's `syncer` section, mapped onto 8.4's sections.
_SYNCER = {"rate": ("disk", "resync-rate"), "al-extents": ("disk", "al-extents"),
           "after": ("disk", "resync-after"), "verify-alg": ("net", "verify-alg"),
           "csums-alg": ("net", "csums-alg"), "cpu-mask": ("options", "cpu-mask"),
           "use-rle": ("net", "use-rle"), "c-plan-ahead": ("disk", "c-plan-ahead"),
           "c-fill-target": ("disk", "c-fill-target"), "c-delay-target": ("disk", "c-delay-target"),
           "c-max-rate": ("disk", "c-max-rate"), "c-min-rate": ("disk", "c-min-rate"),
           "on-no-data-accessible": ("options", "on-no-data-accessible")}


# ---------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class NetOptions:
    """The `net` section: replication link and split-brain policy (times in seconds)."""

    protocol: str = "C"
    timeout: float = 6.0
    connect_int: float = 10.0
    ping_int: float = 10.0
    ping_timeout: float = 0.5
    ko_count: int = 7
    max_buffers: int = 2048
    max_epoch_size: int = 2048
    sndbuf_size: int = 0
    rcvbuf_size: int = 0
    allow_two_primaries: bool = False
    cram_hmac_alg: str | None = None
    shared_secret: str | None = field(default=None, metadata=SECRET)
    after_sb_0pri: str = "disconnect"
    after_sb_1pri: str = "disconnect"
    after_sb_2pri: str = "disconnect"
    always_asbp: bool = False
    rr_conflict: str = "disconnect"
    data_integrity_alg: str | None = None
    tcp_cork: bool = True
    on_congestion: str = "block"
    congestion_fill: int = 0
    congestion_extents: int = 1237
    csums_alg: str | None = None
    verify_alg: str | None = None
    use_rle: bool = False
    socket_check_timeout: float = 0.0
    discard_my_data: bool = False
    unplug_watermark: int = 128
    transport: str = "tcp"
    extra: FrozenMap[str, tuple[str, ...]] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class DiskOptions:
    """The `disk` section: backing device, resync, fencing (sizes in bytes, rates in bytes/s)."""

    on_io_error: str = "detach"
    fencing: str = "dont-care"
    size: int | None = None
    disk_barrier: bool = False
    disk_flushes: bool = True
    disk_drain: bool = True
    md_flushes: bool = True
    max_bio_bvecs: int = 0
    resync_rate: int = 256000
    resync_after: str | None = None
    al_extents: int = 1237
    al_updates: bool = True
    c_plan_ahead: float = 2.0
    c_delay_target: float = 1.0
    c_fill_target: int = 51200
    c_max_rate: int = 104857600
    c_min_rate: int = 256000
    disk_timeout: float = 0.0
    read_balancing: str = "prefer-local"
    discard_zeroes_if_aligned: bool = True
    rs_discard_granularity: int = 0
    disable_write_same: bool = False
    extra: FrozenMap[str, tuple[str, ...]] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class StartupOptions:
    """The `startup` section (boot-time waits, in seconds)."""

    wfc_timeout: float = 0.0
    degr_wfc_timeout: float = 60.0
    outdated_wfc_timeout: float = 0.0
    wait_after_sb: bool = False
    become_primary_on: str | None = None
    stacked_timeouts: bool = False
    extra: FrozenMap[str, tuple[str, ...]] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class ResourceOptions:
    """The `options` section."""

    cpu_mask: str | None = None
    on_no_data_accessible: str = "io-error"
    auto_promote: bool = True
    quorum: str = "off"
    on_no_quorum: str = "suspend-io"
    extra: FrozenMap[str, tuple[str, ...]] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class GlobalOptions:
    """The `global` section."""

    usage_count: str = "ask"
    minor_count: int | None = None
    dialog_refresh: int = 1
    disable_ip_verification: bool = False
    udev_always_use_vnr: bool = False
    extra: FrozenMap[str, tuple[str, ...]] = field(default_factory=FrozenMap)


_SECTION_CLASSES: dict[str, type] = {"net": NetOptions, "disk": DiskOptions,
                                     "startup": StartupOptions, "options": ResourceOptions,
                                     "global": GlobalOptions}


@dataclass(frozen=True)
class Address:
    """`address [AF] IP:PORT`: where a node listens for its peer."""

    host: str
    port: int = DEFAULT_PORT
    family: str = "ipv4"  # ipv4 | ipv6 | ssocks | sdp | sci

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.family == "ipv6" else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Volume:
    """One replicated volume of a host: DRBD device, backing disk, metadata place."""

    number: int = 0
    device: str | None = None
    minor: int | None = None
    disk: str | None = None  # "none" for a diskless node
    meta_disk: str | None = None  # "internal", "/dev/x" or "/dev/x[0]"


@dataclass(frozen=True)
class Host:
    """An `on NAME... { }` section (or a `floating` one, matched by address instead)."""

    names: tuple[str, ...]
    address: Address | None = None
    volumes: tuple[Volume, ...] = ()
    node_id: int | None = None
    floating: bool = False
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)

    def volume(self, number: int = 0) -> Volume | None:
        for v in self.volumes:
            if v.number == number:
                return v
        return None


@dataclass(frozen=True)
class Resource:
    """A DRBD resource with `common` merged in and every default filled."""

    name: str
    net: NetOptions = field(default_factory=NetOptions)
    disk: DiskOptions = field(default_factory=DiskOptions)
    startup: StartupOptions = field(default_factory=StartupOptions)
    options: ResourceOptions = field(default_factory=ResourceOptions)
    handlers: FrozenMap[str, str] = field(default_factory=FrozenMap)
    hosts: tuple[Host, ...] = ()
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)

    def host(self, name: str) -> Host | None:
        """The `on` section for `name` (compared like `uname -n`, ignoring case)."""
        wanted = name.lower()
        for host in self.hosts:
            if not host.floating and wanted in (n.lower() for n in host.names):
                return host
        return None

    def peers_of(self, name: str) -> tuple[Host, ...]:
        mine = self.host(name)
        return tuple(h for h in self.hosts if h is not mine)


@dataclass(frozen=True)
class DrbdConfig:
    global_options: GlobalOptions = field(default_factory=GlobalOptions)
    resources: tuple[Resource, ...] = ()
    files: tuple[str, ...] = field(default=(), compare=False, metadata=NO_JSON)

    def resource(self, name: str) -> Resource | None:
        for res in self.resources:
            if res.name == name:
                return res
        return None


# ---------------------------------------------------------------------------
# Interpretation of the tree


class _Builder:
    def __init__(self, diags: Diagnostics):
        self.diags = diags
        self.global_values: dict[str, Any] = {}
        self.global_extra: dict[str, tuple[str, ...]] = {}
        self.common: dict[str, dict[str, Any]] = {s: {} for s in ("net", "disk", "startup",
                                                                  "options")}
        self.common_extra: dict[str, dict[str, tuple[str, ...]]] = {
            s: {} for s in ("net", "disk", "startup", "options")}
        self.common_handlers: dict[str, str] = {}
        self.resources: list[Resource] = []
        self.resource_lines: dict[str, SourceLine] = {}
        self.global_seen: SourceLine | None = None

    def error(self, tok: _Tok, message: str) -> None:
        self.diags.error(tok.line, tok.column, message)

    def warning(self, tok: _Tok, message: str) -> None:
        self.diags.warning(tok.line, tok.column, message)


def _walk_top(b: _Builder, stmts: list[_Stmt], include: Callable[[_Stmt], None]) -> None:
    for stmt in stmts:
        head = stmt.head
        word = head.text
        if word == "skip":
            if stmt.block is None:
                b.error(head, "skip needs a { ... } block to comment out")
            continue
        if word == "include":
            if stmt.block is not None or len(stmt.words) != 2:
                b.error(head, 'include takes one file pattern: include "drbd.d/*.res";')
                continue
            include(stmt)
            continue
        if word == "global":
            if stmt.block is None:
                b.error(head, "global needs a { ... } block")
                continue
            if b.global_seen is not None:
                b.warning(head, f"a second global section (first on line "
                          f"{b.global_seen.number}); DRBD allows only one")
            b.global_seen = head.line
            _options_block(b, "global", stmt.block, b.global_values, b.global_extra)
            continue
        if word == "common":
            if stmt.block is None:
                b.error(head, "common needs a { ... } block")
                continue
            _common(b, stmt.block)
            continue
        if word == "resource":
            _resource(b, stmt)
            continue
        b.error(head, f"unknown top-level statement '{word}': expected global, common, "
                "resource, include or skip")


def _store(b: _Builder, section: str, stmt: _Stmt, values: dict[str, Any],
           extra: dict[str, tuple[str, ...]], name: str | None = None) -> None:
    """Parse one option of `section` into `values` (or `extra` with a warning)."""
    head = stmt.head
    name = name or head.text
    if stmt.block is not None:
        b.error(head, f"{name} takes a value, not a block")
        return
    spec = _BY_NAME[section].get(name)
    if spec is None:
        for other, table in _BY_NAME.items():
            if other != "global" and name in table and section != "global":
                b.warning(head, f"{name} belongs in the {other} section, not {section}; "
                          f"kept as an unknown {section} option")
                break
        else:
            b.warning(head, f"unknown {section} option '{name}' (kept, not used by vigil)")
        extra[name] = tuple(stmt.values)
        return
    try:
        values[spec.attribute] = spec.parse(stmt.values)
    except _Bad as problem:
        where = stmt.words[1] if len(stmt.words) > 1 else head
        b.error(where, f"{name}: {problem}")
        return
    if name in NOT_DONE:
        b.warning(head, f"{name}: {NOT_DONE[name]}")
    done, why = NOT_DONE_UNLESS.get(name, (None, ""))
    if why and values[spec.attribute] != done:
        b.warning(head, f"{name}: {why}")
    if section == "startup" and name in STARTUP_NOT_DONE:
        b.warning(head, f"{name}: {STARTUP_NOT_DONE[name]}")


def _options_block(b: _Builder, section: str, stmts: list[_Stmt], values: dict[str, Any],
                   extra: dict[str, tuple[str, ...]],
                   elsewhere: dict[str, dict[str, Any]] | None = None) -> None:
    for stmt in stmts:
        name = stmt.head.text
        if name == "skip":
            continue
        moved = _MOVED.get(name)
        if moved and section in moved and section != moved[0] and elsewhere is not None:
            _store(b, moved[0], stmt, elsewhere[moved[0]], {}, name)
            continue
        _store(b, section, stmt, values, extra)


def _common(b: _Builder, stmts: list[_Stmt]) -> None:
    for stmt in stmts:
        head = stmt.head
        word = head.text
        if word == "skip":
            continue
        if word in ("net", "disk", "startup", "options") and stmt.block is not None:
            _options_block(b, word, stmt.block, b.common[word], b.common_extra[word], b.common)
        elif word == "handlers" and stmt.block is not None:
            _handlers(b, stmt.block, b.common_handlers)
        elif word == "syncer" and stmt.block is not None:
            _syncer(b, stmt, b.common)
        elif word == "protocol" and stmt.block is None:
            _store(b, "net", stmt, b.common["net"], b.common_extra["net"])
        else:
            b.error(head, f"'{word}' is not allowed in common: expected net, disk, startup, "
                    "options or handlers")


def _handlers(b: _Builder, stmts: list[_Stmt], out: dict[str, str]) -> None:
    for stmt in stmts:
        head = stmt.head
        if head.text == "skip":
            continue
        if stmt.block is not None or len(stmt.words) != 2:
            b.error(head, f'handler {head.text} takes one command: {head.text} "/path/to/cmd";')
            continue
        if head.text not in HANDLERS:
            b.warning(head, f"unknown handler '{head.text}' (kept, not used by vigil)")
        elif head.text not in HANDLERS_RUN:
            b.warning(head, f"handler {head.text}: not run by vigil (it runs "
                      f"{', '.join(sorted(HANDLERS_RUN))})")
        out[head.text] = stmt.words[1].text


def _syncer(b: _Builder, stmt: _Stmt, into: dict[str, dict[str, Any]]) -> None:
    b.warning(stmt.head, "the syncer section is DRBD 8.3 syntax: its options are read as "
              "their DRBD 8.4 equivalents in disk and net")
    for inner in stmt.block or []:
        mapped = _SYNCER.get(inner.head.text)
        if mapped is None:
            b.warning(inner.head, f"unknown syncer option '{inner.head.text}' (ignored)")
            continue
        section, name = mapped
        _store(b, section, inner, into[section], {}, name)


_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _resource(b: _Builder, stmt: _Stmt) -> None:
    head = stmt.head
    if len(stmt.words) != 2 or stmt.block is None:
        b.error(head, "write resource NAME { ... }")
        return
    name_tok = stmt.words[1]
    name = name_tok.text
    if not _RESOURCE_NAME.match(name):
        b.error(name_tok, f"bad resource name {name!r}")
        return
    if name in b.resource_lines:
        b.error(name_tok, f"resource {name} defined twice (first on line "
                f"{b.resource_lines[name].number})")
        return
    b.resource_lines[name] = head.line
    values: dict[str, dict[str, Any]] = {s: dict(b.common[s]) for s in b.common}
    extra: dict[str, dict[str, tuple[str, ...]]] = {s: dict(b.common_extra[s])
                                                    for s in b.common_extra}
    handlers = dict(b.common_handlers)
    defaults: dict[str, Any] = {}
    host_stmts: list[_Stmt] = []
    volume_stmts: list[_Stmt] = []
    for inner in stmt.block:
        word = inner.head.text
        if word == "skip":
            continue
        if word in ("net", "startup", "options") and inner.block is not None:
            _options_block(b, word, inner.block, values[word], extra[word], values)
        elif word == "disk" and inner.block is not None:
            _options_block(b, "disk", inner.block, values["disk"], extra["disk"], values)
        elif word == "handlers" and inner.block is not None:
            _handlers(b, inner.block, handlers)
        elif word == "syncer" and inner.block is not None:
            _syncer(b, inner, values)
        elif word == "protocol" and inner.block is None:
            _store(b, "net", inner, values["net"], extra["net"])
        elif word in ("on", "floating"):
            host_stmts.append(inner)
        elif word == "volume":
            volume_stmts.append(inner)
        elif word in ("device", "disk", "meta-disk", "flexible-meta-disk") and inner.block is None:
            _volume_statement(b, inner, defaults)
        elif word in ("connection", "connection-mesh", "stacked-on-top-of"):
            b.warning(inner.head, f"{word} sections (DRBD 9 / stacked resources) are not "
                      "supported by vigil; ignored")
        elif word == "template-file":
            continue
        else:
            b.error(inner.head, f"'{word}' is not allowed in a resource")
    resource_volumes = _volumes(b, volume_stmts, defaults)
    hosts: list[Host] = []
    for host_stmt in host_stmts:
        host = _host(b, host_stmt, defaults, resource_volumes)
        if host is not None:
            hosts.append(host)
    if not hosts:
        b.error(head, f"resource {name} has no 'on HOST {{ ... }}' section")
    names = [n.lower() for h in hosts if not h.floating for n in h.names]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        b.error(head, f"resource {name}: host {dup} has two 'on' sections")
    addresses = [str(h.address) for h in hosts if h.address is not None]
    for dup in sorted({a for a in addresses if addresses.count(a) > 1}):
        b.error(head, f"resource {name}: address {dup} is used by two hosts")
    sections = {s: _SECTION_CLASSES[s](**values[s], extra=FrozenMap(extra[s]))
                for s in ("net", "disk", "startup", "options")}
    net = sections["net"]
    if net.shared_secret is not None and len(net.shared_secret) > 64:
        b.error(head, f"resource {name}: shared-secret is longer than 64 characters")
    if net.shared_secret is None:
        b.warning(head, f"resource {name}: no shared-secret: the replication link is not "
                  "authenticated (any host that can send from the peer's address can write "
                  "to this volume); set cram-hmac-alg and shared-secret")
    if net.shared_secret is not None and net.cram_hmac_alg is None:
        b.warning(head, f"resource {name}: shared-secret without cram-hmac-alg: peers are not "
                  "authenticated")
    if sections["disk"].fencing != "dont-care" and "fence-peer" not in handlers:
        b.warning(head, f"resource {name}: fencing {sections['disk'].fencing} without a "
                  "fence-peer handler")
    wanted = sections["startup"].become_primary_on
    known = set(names) | {n.split(".")[0] for n in names}
    if wanted not in (None, "both") and hosts and wanted.lower() not in known:
        b.warning(head, f"resource {name}: become-primary-on {wanted} names no 'on' host of "
                  "this resource: no node promotes it at boot")
    b.resources.append(Resource(name, sections["net"], sections["disk"], sections["startup"],
                                sections["options"], FrozenMap(handlers), tuple(hosts),
                                head.line.at(head.column)))


def _volume_statement(b: _Builder, stmt: _Stmt, into: dict[str, Any]) -> None:
    word = stmt.head.text
    values = stmt.values
    if not values:
        b.error(stmt.head, f"{word} needs a value")
        return
    if word == "device":
        device: str | None = None
        minor: int | None = None
        rest = list(values)
        if rest and rest[0] != "minor":
            device = rest.pop(0)
        if rest[:1] == ["minor"]:
            if len(rest) != 2 or not _small_number(rest[1]):
                b.error(stmt.head, "write device [/dev/drbdN] [minor N];")
                return
            minor = int(rest[1])
            rest = []
        if rest:
            b.error(stmt.head, "write device [/dev/drbdN] [minor N];")
            return
        if device is not None and minor is None:
            m = re.fullmatch(r"/dev/drbd([0-9]{1,9})", device)
            if m:
                minor = int(m.group(1))
        if device is None and minor is not None:
            device = f"/dev/drbd{minor}"
        into["device"], into["minor"] = device, minor
    elif word == "disk":
        if len(values) != 1:
            b.error(stmt.head, "disk takes one device (or none)")
            return
        into["disk"] = values[0]
    else:
        text = " ".join(values)
        if not (text == "internal" or re.fullmatch(r"/\S+?(\s*\[[0-9]+\])?", text)):
            b.error(stmt.head, f"{word}: expected internal, DEVICE or DEVICE [INDEX]")
            return
        into["meta_disk"] = re.sub(r"\s+\[", "[", text)


def _volumes(b: _Builder, stmts: list[_Stmt], defaults: dict[str, Any]) -> dict[int, Volume]:
    out: dict[int, Volume] = {}
    for stmt in stmts:
        if len(stmt.words) != 2 or not _small_number(stmt.words[1].text) or stmt.block is None:
            b.error(stmt.head, "write volume N { device ...; disk ...; meta-disk ...; }")
            continue
        number = int(stmt.words[1].text)
        values = dict(defaults)
        for inner in stmt.block:
            if inner.head.text in ("device", "disk", "meta-disk", "flexible-meta-disk") and \
                    inner.block is None:
                _volume_statement(b, inner, values)
            elif inner.head.text == "disk" and inner.block is not None:
                b.warning(inner.head, "per-volume disk options are not supported; ignored")
            elif inner.head.text != "skip":
                b.error(inner.head, f"'{inner.head.text}' is not allowed in a volume")
        if number in out:
            b.error(stmt.head, f"volume {number} defined twice")
            continue
        out[number] = Volume(number, values.get("device"), values.get("minor"),
                             values.get("disk"), values.get("meta_disk"))
    return out


_AF = ("ipv4", "ipv6", "ssocks", "sdp", "sci")


def _address(b: _Builder, stmt: _Stmt, values: list[str]) -> Address | None:
    family = "ipv4"
    rest = list(values)
    if rest and rest[0] in _AF:
        family = rest.pop(0)
    if len(rest) != 1:
        b.error(stmt.head, "write address [ipv4|ipv6] ADDRESS:PORT;")
        return None
    text = rest[0]
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,9}))?", text) if family == "ipv6" else \
        re.fullmatch(r"([^:\[\]]+)(?::([0-9]{1,9}))?", text)
    if not m:
        hint = " (IPv6 addresses go in brackets after 'ipv6')" if ":" in text else ""
        b.error(stmt.words[-1], f"bad address {text!r}{hint}")
        return None
    port = int(m.group(2)) if m.group(2) else DEFAULT_PORT
    if not 0 < port < 65536:
        b.error(stmt.words[-1], f"port {port} is out of range 1..65535")
        return None
    try:
        ipaddress.ip_address(m.group(1))
    except ValueError:
        # DRBD takes addresses, never host names: refused here, not at the daemon's start
        b.error(stmt.words[-1], f"bad address {m.group(1)[:64]!r}: not an IP address")
        return None
    return Address(m.group(1), port, family)


def _host(b: _Builder, stmt: _Stmt, defaults: dict[str, Any],
          resource_volumes: dict[int, Volume]) -> Host | None:
    head = stmt.head
    floating = head.text == "floating"
    values: dict[str, Any] = dict(defaults)
    address: Address | None = None
    node_id: int | None = None
    volumes: dict[int, Volume] = dict(resource_volumes)
    if floating:
        address = _address(b, stmt, stmt.values)
        if address is None:
            return None
        names: tuple[str, ...] = (str(address),)
    else:
        names = tuple(stmt.values)
        if not names:
            b.error(head, "write on HOSTNAME { ... } (the name `uname -n` prints)")
            return None
    for inner in stmt.block or []:
        word = inner.head.text
        if word == "skip":
            continue
        if word == "address" and inner.block is None and not floating:
            address = _address(b, inner, inner.values)
        elif word in ("device", "disk", "meta-disk", "flexible-meta-disk") and \
                inner.block is None:
            _volume_statement(b, inner, values)
        elif word == "volume":
            for number, vol in _volumes(b, [inner], values).items():
                volumes[number] = vol
        elif word == "node-id" and inner.block is None and len(inner.words) == 2 and \
                _small_number(inner.words[1].text):
            node_id = int(inner.words[1].text)
        else:
            b.error(inner.head, f"'{word}' is not allowed in an {head.text} section")
    if not volumes:
        volumes[0] = Volume(0, values.get("device"), values.get("minor"), values.get("disk"),
                            values.get("meta_disk"))
    location = head.line.at(head.column)
    if address is None and not floating:
        b.error(head, f"host {' '.join(names)} has no address")
    for vol in volumes.values():
        missing = [k for k, v in (("device", vol.device), ("disk", vol.disk),
                                  ("meta-disk", vol.meta_disk)) if v is None]
        if missing:
            b.error(head, f"{head.text} {' '.join(names)}: volume {vol.number} has no "
                    f"{', '.join(missing)}")
    return Host(names, address, tuple(sorted(volumes.values(), key=lambda v: v.number)),
                node_id, floating, location)


# ---------------------------------------------------------------------------
# Entry points


def _finish(b: _Builder, files: Iterable[str]) -> DrbdConfig:
    return DrbdConfig(GlobalOptions(**b.global_values, extra=FrozenMap(b.global_extra)),
                      tuple(b.resources), tuple(files))


def analyze(text: str, path: str = DEFAULT_PATH) -> Parsed[DrbdConfig]:
    """Parse one DRBD file (includes are *not* followed: see `read`)."""
    diags = Diagnostics(path)
    b = _Builder(diags)
    tree = _tree(_lex(text, path, diags), diags, path)

    def no_include(stmt: _Stmt) -> None:
        b.warning(stmt.head, "include is not followed when parsing text; use read(path)")

    _walk_top(b, tree, no_include)
    return Parsed(_finish(b, (path,)), diags.freeze())


def parse(text: str, path: str = DEFAULT_PATH) -> DrbdConfig:
    """Parse one DRBD file or raise `ConfigErrors` naming every mistake."""
    return analyze(text, path).unwrap()


def read(path: str = DEFAULT_PATH, reader: Callable[[str], str] | None = None,
         ) -> Parsed[DrbdConfig]:
    """Read a DRBD configuration, following `include` globs relative to each file.

    `FileUnreadable` when the top file cannot be read; an unreadable included
    file is an error diagnostic.
    """
    def default_reader(p: str) -> str:
        with open(p, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()

    load = reader or default_reader
    try:
        text = load(path)
    except OSError as exc:
        raise FileUnreadable(Location(path), f"cannot read: {exc.strerror}") from exc
    diags = Diagnostics(path)
    b = _Builder(diags)
    files: list[str] = []
    active: list[str] = []

    def walk(file_path: str, file_text: str) -> None:
        files.append(file_path)
        active.append(os.path.realpath(file_path))
        file_diags = Diagnostics(file_path)
        b.diags = file_diags
        tree = _tree(_lex(file_text, file_path, file_diags), file_diags, file_path)

        def include(stmt: _Stmt) -> None:
            pattern = stmt.words[1].text
            base = os.path.dirname(file_path)
            full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
            matches = sorted(glob.glob(full))
            if not matches and not glob.has_magic(full):
                b.diags.error(stmt.words[1].line, stmt.words[1].column,
                              f"included file {full} does not exist")
            for match in matches:
                if os.path.realpath(match) in active:
                    b.diags.error(stmt.words[1].line, stmt.words[1].column,
                                  f"{match} includes itself")
                    continue
                try:
                    inner_text = load(match)
                except OSError as exc:
                    b.diags.error(stmt.words[1].line, stmt.words[1].column,
                                  f"cannot read included file {match}: {exc.strerror}")
                    continue
                saved = b.diags
                walk(match, inner_text)
                b.diags = saved

        _walk_top(b, tree, include)
        diags.extend(file_diags.items)
        active.pop()

    walk(path, text)
    return Parsed(_finish(b, files), diags.freeze())


def diagnostics_for_host(config: DrbdConfig, hostname: str,
                         names: Iterable[str] | None = None) -> tuple[Diagnostic, ...]:
    """Check that the named resources (all when None) exist and have an `on` section here."""
    out: list[Diagnostic] = []
    wanted = list(names) if names is not None else [r.name for r in config.resources]
    for name in wanted:
        res = config.resource(name)
        if res is None:
            out.append(Diagnostic(Severity.ERROR, Location(config.files[0] if config.files
                                                            else DEFAULT_PATH),
                                  f"DRBD resource {name} is not defined"))
            continue
        if res.host(hostname) is None and not any(h.floating for h in res.hosts):
            listed = ", ".join(n for h in res.hosts for n in h.names)
            out.append(Diagnostic(Severity.ERROR, res.location or Location(DEFAULT_PATH),
                                  f"DRBD resource {name} has no 'on {hostname}' section "
                                  f"(it names {listed})"))
    return tuple(out)


# ---------------------------------------------------------------------------
# Rendering


def _render_section(name: str, table: tuple[OptionSpec, ...], options: Any,
                    indent: str) -> list[str]:
    lines: list[str] = []
    for spec in table:
        value = getattr(options, spec.attribute)
        if value == spec.default or value is None:
            continue
        if isinstance(value, bool) and spec.render is _render_flag:
            lines.append(f"{indent}\t{spec.name}{'' if value else ' no'};")
        else:
            lines.append(f"{indent}\t{spec.name} {spec.render(value)};")
    for key, values in options.extra.items():
        lines.append(f"{indent}\t{' '.join((key, *(_quote(v) for v in values)))};")
    if not lines:
        return []
    return [f"{indent}{name} {{", *lines, f"{indent}}}"]


def _quote(word: str) -> str:
    if word and re.fullmatch(r'[^\s{};"#\\]+', word):
        return word
    return _render_text(word)


def render(config: DrbdConfig) -> str:
    """A single drbd.conf text (no includes) that parses back to an equal model."""
    out = ["# DRBD configuration written by vigil"]
    glob_lines = _render_section("global", GLOBAL_OPTIONS, config.global_options, "")
    out.extend(glob_lines)
    for res in config.resources:
        out.append(f"resource {res.name} {{")
        for name, table, options in (("net", NET_OPTIONS, res.net),
                                     ("disk", DISK_OPTIONS, res.disk),
                                     ("startup", STARTUP_OPTIONS, res.startup),
                                     ("options", RESOURCE_OPTIONS, res.options)):
            out.extend(_render_section(name, table, options, "\t"))
        if res.handlers:
            out.append("\thandlers {")
            for key, cmd in res.handlers.items():
                out.append(f"\t\t{key} {_render_text(cmd)};")
            out.append("\t}")
        for host in res.hosts:
            out.extend(_render_host(host))
        out.append("}")
    return "\n".join(out) + "\n"


def _render_host(host: Host) -> list[str]:
    if host.floating:
        assert host.address is not None
        head = f"\tfloating {host.address.family} {host.address} {{"
    else:
        head = f"\ton {' '.join(host.names)} {{"
    lines = [head]
    if host.address is not None and not host.floating:
        lines.append(f"\t\taddress {host.address.family} {host.address};")
    if host.node_id is not None:
        lines.append(f"\t\tnode-id {host.node_id};")
    for vol in host.volumes:
        lines.append(f"\t\tvolume {vol.number} {{")
        if vol.device is not None or vol.minor is not None:
            parts = [p for p in (vol.device, f"minor {vol.minor}" if vol.minor is not None
                                 else None) if p]
            lines.append(f"\t\t\tdevice {' '.join(parts)};")
        if vol.disk is not None:
            lines.append(f"\t\t\tdisk {_quote(vol.disk)};")
        if vol.meta_disk is not None:
            lines.append(f"\t\t\tmeta-disk {vol.meta_disk};")
        lines.append("\t\t}")
    lines.append("\t}")
    return lines


def default_options(section: str) -> Any:
    """A section's options with every default (for docs and `vigil config show`)."""
    return _SECTION_CLASSES[section]()


def option_defaults(section: str) -> dict[str, Any]:
    return {f.name: f.default for f in fields(_SECTION_CLASSES[section]) if f.name != "extra"}


__all__ = [
    "DEFAULT_PATH", "DEFAULT_PORT", "OPTION_TABLES", "Address", "DiskOptions", "DrbdConfig",
    "GlobalOptions", "Host", "NetOptions", "OptionSpec", "Resource", "ResourceOptions",
    "StartupOptions", "Volume", "analyze", "default_options", "diagnostics_for_host",
    "option_defaults", "parse", "read", "render",
]
