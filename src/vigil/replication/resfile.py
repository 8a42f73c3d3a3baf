"""A minimal reader of DRBD resource files, standing in for `vigil.config.drbd`.

It knows the grammar (words, quoted strings, `{ }` blocks, `;`, `#`
comments, `include "glob";`, `skip { }`), `common` sections inherited by each
resource, and the 8.4 placement of options (`net`, `disk`, `handlers`,
`startup`, `options` sections; `protocol` at resource level). It does not
validate every keyword: that is the shared parser's job.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

from vigil.errors import ConfigError, Location

_TOKEN = re.compile(r'\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|([{};])|([^\s{};"#]+)')
Statement = tuple[list[str], list["Statement"] | None, Location]
SECTIONS = ("net", "disk", "handlers", "startup", "options", "syncer")


def tokenize(text: str, path: str) -> list[tuple[str, Location, bool]]:
    tokens = []
    line, line_start = 1, 0
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ConfigError(Location(path, line, position - line_start + 1),
                              f"unexpected character {text[position]!r}")
        where = Location(path, line, position - line_start + 1)
        if match.group(1) is not None:
            tokens.append((match.group(1), where, True))
        elif match.group(2) or match.group(3):
            tokens.append((match.group(2) or match.group(3), where, False))
        chunk = match.group(0)
        newlines = chunk.count("\n")
        if newlines:
            line += newlines
            line_start = position + chunk.rindex("\n") + 1
        position = match.end()
    return tokens


def parse(text: str, path: str) -> list[Statement]:
    tokens = tokenize(text, path)
    statements, _ = _block(tokens, 0, path, top=True)
    return statements


def _block(tokens, index, path, top):
    statements: list[Statement] = []
    words: list[str] = []
    start: Location | None = None
    while index < len(tokens):
        value, where, quoted = tokens[index]
        index += 1
        if not quoted and value == "}":
            if top:
                raise ConfigError(where, "unbalanced '}'")
            if words:
                raise ConfigError(where, f"missing ';' after {' '.join(words)!r}")
            return statements, index
        if not quoted and value == ";":
            if words:
                statements.append((words, None, start or where))
            words, start = [], None
            continue
        if not quoted and value == "{":
            body, index = _block(tokens, index, path, top=False)
            if words and words[0] != "skip":
                statements.append((words, body, start or where))
            words, start = [], None
            continue
        if not words:
            start = where
        words.append(value)
    if not top:
        raise ConfigError(Location(path), "missing '}' at end of file")
    if words:
        raise ConfigError(start or Location(path), f"missing ';' after {' '.join(words)!r}")
    return statements, index


def _expand(statements: list[Statement], base: Path, depth: int = 0) -> list[Statement]:
    out: list[Statement] = []
    for words, body, where in statements:
        if words[0] == "include" and body is None:
            if depth > 8:
                raise ConfigError(where, "includes nested too deeply")
            pattern = words[1] if len(words) > 1 else ""
            if not pattern.startswith("/"):
                pattern = str(base / pattern)
            for name in sorted(glob.glob(pattern)):
                text = Path(name).read_text()
                out += _expand(parse(text, name), Path(name).parent, depth + 1)
        else:
            out.append((words, body, where))
    return out


def _options(body: list[Statement]) -> dict[str, str]:
    return {words[0]: " ".join(words[1:]) for words, sub, _ in body if sub is None}


def read(path: Path) -> dict[str, dict[str, Any]]:
    """Every resource in the configuration at `path` (a file, or a directory of *.res)."""
    if path.is_dir():
        statements = []
        for name in sorted(path.glob("*.res")):
            statements += _expand(parse(name.read_text(), str(name)), path)
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(Location(str(path)), f"cannot read: {exc.strerror}") from None
        statements = _expand(parse(text, str(path)), path.parent)
    common: dict[str, dict[str, str]] = {}
    resources: dict[str, dict[str, Any]] = {}
    for words, body, _ in statements:
        if words[0] == "common" and body is not None:
            for sub_words, sub_body, _ in body:
                if sub_body is not None and sub_words[0] in SECTIONS:
                    common.setdefault(sub_words[0], {}).update(_options(sub_body))
                elif sub_body is None and sub_words[0] == "protocol":
                    common.setdefault("net", {})["protocol"] = " ".join(sub_words[1:])
    for words, body, where in statements:
        if words[0] != "resource" or body is None:
            continue
        if len(words) != 2:
            raise ConfigError(where, "expected 'resource NAME {'")
        sections = {k: dict(v) for k, v in common.items()}
        options: dict[str, str] = {}
        hosts: dict[str, dict[str, str]] = {}
        for sub_words, sub_body, sub_where in body:
            key = sub_words[0]
            if sub_body is None:
                options[key] = " ".join(sub_words[1:])
                if key == "protocol":
                    sections.setdefault("net", {})["protocol"] = options[key]
            elif key in SECTIONS:
                section = "disk" if key == "syncer" else key
                sections.setdefault(section, {}).update(_options(sub_body))
            elif key == "on":
                if len(sub_words) < 2:
                    raise ConfigError(sub_where, "expected 'on HOSTNAME {'")
                fields = _options(sub_body)
                for vol_words, vol_body, _ in sub_body:  # volume 0 { ... } (one volume)
                    if vol_words[0] == "volume" and vol_body is not None:
                        fields.update(_options(vol_body))
                hosts[sub_words[1]] = fields
            elif key == "volume":
                shared = _options(sub_body)
                for fields in hosts.values():
                    for k, v in shared.items():
                        fields.setdefault(k, v)
        for fields in hosts.values():  # resource-level device/disk/meta-disk are defaults
            for k in ("device", "disk", "meta-disk"):
                if k in options:
                    fields.setdefault(k, options[k])
        resources[words[1]] = {"name": words[1], "location": where, "sections": sections,
                               "options": options, "hosts": hosts}
    return resources
