"""The BGP speakers a director tells its announcements to (`--announce`).

vigil speaks no BGP itself. With `exabgp`, the director runs as one of ExaBGP's
API processes (`process ... { run vigil director -d --announce exabgp ...; }`):
it writes ExaBGP 4.2's text commands on its standard output,

    announce route 198.51.100.100/32 next-hop self
    withdraw route 198.51.100.100/32 next-hop self

and reads ExaBGP's answers (`done`, `error`) on its standard input. Standard
output is kept for these lines alone: anything else the process would print
goes to standard error.

With `bird`, the director writes the prefixes it announces as static routes of
two static protocols, `vigil_announce4` and `vigil_announce6`, in a file that
bird.conf includes (/etc/bird/vigil-announce.conf), then asks the running BIRD
to re-read its configuration (`birdc configure`), as anycast health checkers
do; the user's bird.conf says where the routes go (export filters naming the
two protocols).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from vigil import log as vlog
from vigil.config.extension import ANNOUNCE_SPEAKERS
from vigil.director.announce import Change
from vigil.errors import UsageError

log = logging.getLogger("vigil.director.announce")

#: the speakers `--announce` knows
SPEAKERS = ANNOUNCE_SPEAKERS
#: where `--announce bird` writes its routes (bird.conf includes it) and BIRD's socket
BIRD_FILE = "/etc/bird/vigil-announce.conf"
BIRD_SOCKET = "/run/bird/bird.ctl"
#: the static protocols of that file, by IP version (bird.conf's export filters name them)
BIRD_PROTOCOLS = {4: "vigil_announce4", 6: "vigil_announce6"}
#: how long `birdc configure` may take
BIRDC_TIMEOUT = 10.0
#: the longest answer line from ExaBGP that is read (longer ones are cut and skipped)
MAX_ANSWER = 4096


class Speaker(Protocol):
    name: str

    async def start(self) -> None: ...

    def send(self, changes: Sequence[Change]) -> None: ...

    async def close(self) -> None: ...


def exabgp_line(change: Change) -> str:
    """One ExaBGP 4.2 text API command for a change."""
    verb = "announce" if change.announce else "withdraw"
    return f"{verb} route {change.prefix} next-hop self\n"


class ExaBGPSpeaker:
    """Commands on a private copy of standard output; answers from standard input."""

    name = "exabgp"

    def __init__(self, out_fd: int | None = None, in_fd: int | None = None):
        self._given_out = out_fd
        self._in_fd = 0 if in_fd is None else in_fd
        self._out: int | None = None
        self._reader: asyncio.Task[None] | None = None
        self.sent = 0
        self.errors = 0
        self.gone = False

    async def start(self) -> None:
        if self._given_out is not None:
            self._out = self._given_out
        else:
            # fd 1 is ExaBGP's pipe: keep a copy for the commands and point fd 1 at
            # stderr, so that a stray print can never be read as a command
            sys.stdout.flush()
            self._out = os.dup(1)
            os.dup2(2, 1)
        self._reader = asyncio.get_running_loop().create_task(self._read_answers())

    def send(self, changes: Sequence[Change]) -> None:
        if self._out is None or self.gone or not changes:
            return
        data = "".join(exabgp_line(c) for c in changes).encode()
        try:
            while data:
                written = os.write(self._out, data)
                data = data[written:]
        except OSError as exc:
            self.gone = True
            vlog.event(log, "announce.speaker_gone", logging.ERROR, speaker=self.name,
                       error=exc)
            return
        self.sent += len(changes)

    async def _read_answers(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_ANSWER)
        try:
            with open(self._in_fd, "rb", buffering=0, closefd=False) as pipe:
                transport, _ = await loop.connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), pipe)
                try:
                    await self._read_lines(reader)
                finally:
                    transport.close()
        except (OSError, ValueError) as exc:
            vlog.event(log, "announce.no_answers", logging.DEBUG, error=exc)
            return
        vlog.event(log, "announce.speaker_closed", logging.WARNING, speaker=self.name)

    async def _read_lines(self, reader: asyncio.StreamReader) -> None:
        """ExaBGP's answers until it closes the pipe; refusals are counted and logged."""
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self.errors += 1  # a line longer than MAX_ANSWER: skipped
                continue
            if not line:
                return
            answer = line.decode(errors="replace").strip()
            if answer.startswith("error"):
                self.errors += 1
                vlog.event(log, "announce.refused", logging.WARNING,
                           speaker=self.name, answer=answer[:200])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._out is not None and self._given_out is None:
            with contextlib.suppress(OSError):
                os.close(self._out)
        self._out = None


def bird_routes(prefixes: Sequence[str]) -> str:
    """The file bird.conf includes: a static protocol per IP version, a route per prefix."""
    lines = ["# vigil director --announce bird: the VIPs this director announces now.",
             "# Written at every change, then `birdc configure`; do not edit."]
    for version, protocol in BIRD_PROTOCOLS.items():
        lines += [f"protocol static {protocol} {{", f"    ipv{version};"]
        lines += [f"    route {prefix} blackhole;" for prefix in sorted(prefixes)
                  if ipaddress.ip_network(prefix).version == version]
        lines.append("}")
    return "\n".join(lines) + "\n"


class BirdSpeaker:
    """Static routes in a file bird.conf includes; `birdc configure` after each change."""

    name = "bird"

    def __init__(self, path: str = BIRD_FILE, socket: str = BIRD_SOCKET,
                 birdc: str = "birdc"):
        self.path = Path(path)
        self.socket = socket
        self.birdc = birdc
        self.prefixes: set[str] = set()
        self.sent = 0
        self.errors = 0
        self._configuring: asyncio.Task[None] | None = None
        self._again = False

    async def start(self) -> None:
        """Nothing announced yet: what an earlier run left in the file is withdrawn first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        await self._configure()

    def send(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        for change in changes:
            if change.announce:
                self.prefixes.add(change.prefix)
            else:
                self.prefixes.discard(change.prefix)
        self._write()
        self.sent += len(changes)
        if self._configuring is not None and not self._configuring.done():
            self._again = True  # once the running one is done: it may predate the files
            return
        self._configuring = asyncio.get_running_loop().create_task(self._configure())

    def _write(self) -> None:
        temporary = self.path.with_name(self.path.name + ".new")
        temporary.write_text(bird_routes(sorted(self.prefixes)))
        os.replace(temporary, self.path)  # BIRD never reads half a file

    async def _configure(self) -> None:
        while True:
            self._again = False
            try:
                done = await asyncio.create_subprocess_exec(
                    self.birdc, "-s", self.socket, "configure",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                out, _ = await asyncio.wait_for(done.communicate(), BIRDC_TIMEOUT)
                said = out.decode(errors="replace").strip()
                accepted = any(word in said for word in (
                    "Reconfigured", "Reconfiguration in progress", "queueing new config"))
                if done.returncode != 0 or not accepted:
                    self.errors += 1
                    vlog.event(log, "announce.refused", logging.WARNING, speaker=self.name,
                               answer=said[-300:])
            except (OSError, TimeoutError) as exc:
                self.errors += 1
                vlog.event(log, "announce.speaker_gone", logging.ERROR, speaker=self.name,
                           error=exc)
            if not self._again:
                return

    async def close(self) -> None:
        if self._configuring is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._configuring


def speaker_for(name: str) -> Speaker | None:
    if name == "off":
        return None
    if name == "exabgp":
        return ExaBGPSpeaker()
    if name == "bird":
        return BirdSpeaker()
    raise UsageError(f"unknown --announce {name!r} (one of: {', '.join(SPEAKERS)})")
