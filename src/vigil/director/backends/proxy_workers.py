"""Worker processes of the userspace proxy: more cores for the same listeners.

The director's process serves every virtual service itself; each worker is a
child process running the same proxy (`UserspaceBackend` with one process) on
its own event loop, with its own listener on the same VIP:port, joined to the
director's by SO_REUSEPORT: the kernel spreads new connections over the
processes by a hash of the connection's addresses and ports. Services that
must see every connection of a client in one place stay in the director's
process only: UDP services and persistent ones (`-p`).

The director talks to each worker over a socket pair, one JSON line per
request and one per answer: the table (every change, before `apply` returns),
zeroing, timeouts, and reads of the counters and connections, which the
director sums with its own. A worker that exits is noticed at once (its
process is awaited), logged, its counters as last read are kept, and a new
one is started with the current table. A worker whose director is gone sees
the end of its socket and exits; stopping the director stops the workers
(then kills what has not ended within a bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Collection
from typing import Any

from vigil.director.backends.base import (
    Connection,
    Counters,
    Rates,
    RealStats,
    ServiceStats,
    Timeouts,
)
from vigil.director.codec import (
    connection_to_json,
    key_from_json,
    key_to_json,
    stats_to_json,
    table_from_json,
    table_to_json,
)
from vigil.lvs.reconcile import reconcile
from vigil.lvs.table import Protocol, RealKey, ServiceKey, Table, VirtualService
from vigil.runtime import event_loop_runner

log = logging.getLogger("vigil.director.userspace")

#: An answer from a worker takes at most this long (it is on the same host).
ANSWER_TIMEOUT = 10.0
#: A stopping worker gets this long before it is killed.
STOP_TIMEOUT = 3.0
#: A worker that died is replaced after this pause (no busy loop if it dies at once).
RESPAWN_DELAY = 0.5
#: At most this many processes serve (VIGIL_PROXY_WORKERS).
MAX_WORKERS = 64
#: Longest JSON line either side accepts.
LINE_LIMIT = 64 << 20


def default_workers() -> int:
    """VIGIL_PROXY_WORKERS (the director's process counts as one; 1 means no worker,
    "cpus" one process per CPU), else 1: one process schedules exactly as IPVS does
    (round robin alternates over all connections), several each on their own."""
    wanted = os.environ.get("VIGIL_PROXY_WORKERS", "").strip()
    if wanted == "cpus":
        return max(1, min(MAX_WORKERS, os.cpu_count() or 1))
    if wanted:
        try:
            return max(1, min(MAX_WORKERS, int(wanted)))
        except ValueError:
            log.warning("proxy.workers_invalid value=%r (want a number or cpus)", wanted)
    return 1


def shared(service: VirtualService) -> bool:
    """Whether the workers serve this service too (TCP, no persistence)."""
    return service.key.protocol is Protocol.TCP and service.persistent is None


def shared_table(table: Table) -> Table:
    return Table.of(s for s in table if shared(s))


def stats_from_json(data: list[dict[str, Any]]) -> dict[ServiceKey, ServiceStats]:
    out: dict[ServiceKey, ServiceStats] = {}
    for item in data:
        stats = ServiceStats(Counters(**item["counters"]), Rates(**item["rates"]))
        for real in item["reals"]:
            stats.reals[RealKey(real["address"], real["port"])] = RealStats(
                real["active"], real["inactive"], Counters(**real["counters"]),
                Rates(**real["rates"]))
        out[key_from_json(item["key"])] = stats
    return out


def add_stats(into: dict[ServiceKey, ServiceStats],
              more: dict[ServiceKey, ServiceStats], keys: Collection[ServiceKey]) -> None:
    """Sum `more` into `into` for the services in `keys`."""
    for key, stats in more.items():
        if key not in keys:
            continue
        mine = into.setdefault(key, ServiceStats())
        mine.counters.add(stats.counters)
        _add_rates(mine.rates, stats.rates)
        for real_key, real in stats.reals.items():
            target = mine.reals.setdefault(real_key, RealStats())
            target.active += real.active
            target.inactive += real.inactive
            target.counters.add(real.counters)
            _add_rates(target.rates, real.rates)


def _add_rates(into: Rates, more: Rates) -> None:
    into.cps += more.cps
    into.in_pps += more.in_pps
    into.out_pps += more.out_pps
    into.in_bps += more.in_bps
    into.out_bps += more.out_bps


def without_activity(stats: dict[ServiceKey, ServiceStats]) -> dict[ServiceKey, ServiceStats]:
    """What a dead worker leaves behind: its counters; its connections and rates are gone."""
    for service in stats.values():
        service.rates = Rates()
        for real in service.reals.values():
            real.active = real.inactive = 0
            real.rates = Rates()
    return stats


class WorkerError(Exception):
    """A worker did not answer, or answered with an error."""


class Worker:
    """The director's end of one worker process."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()
        #: the counters as last read (kept if the worker dies)
        self.last_stats: dict[ServiceKey, ServiceStats] = {}
        #: started and given the current table and timeouts
        self.ready = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def spawn(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "vigil.director.backends.proxy_workers",
                str(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.reader, self.writer = await asyncio.open_unix_connection(sock=mine,
                                                                      limit=LINE_LIMIT)
        self.last_stats = {}

    async def ask(self, request: dict[str, Any]) -> Any:
        """One request, its answer's "value"; WorkerError if the worker cannot answer."""
        async with self.lock:
            if self.writer is None or self.reader is None:
                raise WorkerError(f"worker {self.index} is not running")
            try:
                self.writer.write(json.dumps(request).encode() + b"\n")
                async with asyncio.timeout(ANSWER_TIMEOUT):
                    await self.writer.drain()
                    line = await self.reader.readline()
            except (OSError, TimeoutError, ValueError) as exc:
                raise WorkerError(f"worker {self.index} (pid {self.pid}): {exc}") from exc
            if not line:
                raise WorkerError(f"worker {self.index} (pid {self.pid}) has gone")
            try:
                answer = json.loads(line)
            except ValueError as exc:
                raise WorkerError(f"worker {self.index} (pid {self.pid}): bad answer") from exc
            if not isinstance(answer, dict) or not answer.get("ok"):
                error = answer.get("error") if isinstance(answer, dict) else answer
                raise WorkerError(f"worker {self.index} (pid {self.pid}): {error}")
            return answer.get("value")

    def hang_up(self) -> None:
        self.ready = False
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def stop(self) -> None:
        """End of the socket (the worker closes its listeners and exits), then SIGKILL."""
        self.hang_up()
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            await process.wait()


# -- the worker's side ------------------------------------------------------------------------

async def _answer(backend: Any, request: dict[str, Any]) -> Any:
    op = request.get("op")
    if op == "table":
        desired = table_from_json(request["table"])
        await backend.apply(reconcile(desired, await backend.read()), desired)
        return None
    if op == "stats":
        return stats_to_json(await backend.stats())
    if op == "connections":
        return [connection_to_json(c) for c in await backend.connections()]
    if op == "zero":
        keys = request.get("keys")
        await backend.zero(None if keys is None else {key_from_json(k) for k in keys})
        return None
    if op == "timeouts":
        await backend.set_timeouts(Timeouts(*request["timeouts"]))
        return None
    if op == "read":
        return table_to_json(await backend.read())
    if op == "pid":
        return os.getpid()
    raise ValueError(f"unknown request {op!r}")


async def serve(fd: int) -> None:
    """A worker: answer the director until it hangs up, then close everything."""
    from vigil.director.backends.userspace import UserspaceBackend

    backend = UserspaceBackend(workers=1, reuse_port=True)
    await backend.start()
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
    try:
        while line := await reader.readline():
            try:
                answer = {"ok": True, "value": await _answer(backend, json.loads(line))}
            except Exception as exc:  # every failure is the director's to log
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
    finally:
        await backend.close()
        writer.close()


def connection_from_json(data: dict[str, Any]) -> Connection:
    return Connection(data["protocol"], data["expire"], data["state"],
                      (data["source"][0], data["source"][1]),
                      (data["virtual"][0], data["virtual"][1]),
                      (data["destination"][0], data["destination"][1]))


def keys_to_json(keys: Collection[ServiceKey] | None) -> list[dict[str, Any]] | None:
    return None if keys is None else [key_to_json(k) for k in keys]


def tables_to_json(table: Table) -> list[dict[str, Any]]:
    return table_to_json(shared_table(table))


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m vigil.director.backends.proxy_workers FD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the director's ^C: it stops us itself
    event_loop_runner()(serve(int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
