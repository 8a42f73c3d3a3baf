"""`vigil lvs` against a running director on loopback: the command line in a worker
thread, the director (userspace proxy, or the in-memory backend) on the test's loop.
Every check reads what the director reports back (-S, -L), never a value assumed."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from vigil.cli import lvs as lvs_cli
from vigil.cli.main import main
from vigil.director import control, daemon
from vigil.director.backends.memory import MemoryBackend
from vigil.director.backends.userspace import ProxyLimits, UserspaceBackend
from vigil.testing import loopback

VIP = "127.0.0.1"


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(daemon, "STATE_DIR", tmp_path / "state")
    # An edit that finds no director answering starts one (a detached process): never
    # from a test, whose director is the one on its own loop.
    def no_detached_director(*args, **kwargs):
        raise AssertionError(f"the test's director did not answer; would have run {args}")
    monkeypatch.setattr(lvs_cli, "subprocess", SimpleNamespace(run=no_detached_director))
    (tmp_path / "run").mkdir()
    return tmp_path


def _lvs(words: tuple[str, ...], stdin: bytes) -> Done:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["lvs", *words])
            except SystemExit as exc:  # argparse's own refusals
                code = int(exc.code or 0)
    finally:
        sys.stdin = saved
    return Done(code, out.getvalue(), err.getvalue())


async def lvs(*words: str, stdin: bytes = b"") -> Done:
    """`vigil lvs WORDS` as a user runs it (its control requests block: a thread)."""
    return await asyncio.to_thread(_lvs, words, stdin)


async def until(condition, timeout: float = 10.0, interval: float = 0.02) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(interval)


def with_director(backend, scenario) -> None:
    async def run() -> None:
        director = daemon.Director(None, backend)
        task = asyncio.create_task(director.run())
        try:
            async def answering() -> bool:
                # its control socket (an empty listing is no sign: ipvsadm -L without a
                # director prints the headers and succeeds)
                return bool(await asyncio.to_thread(control.running_instances))
            await until(answering)
            await scenario(director)
        finally:
            director._stop.set()
            await asyncio.wait_for(task, 10)
    asyncio.run(run())


def free_port() -> int:
    return loopback.free_port(host=VIP)


async def echo_server(name: str):
    async def handler(reader, writer):
        while line := await reader.readline():
            writer.write(f"{name}:{line.decode()}".encode())
            await writer.drain()
        writer.close()
    server = await asyncio.start_server(handler, "127.0.0.2", 0)
    return server, server.sockets[0].getsockname()[1]


def userspace() -> UserspaceBackend:
    return UserspaceBackend(ProxyLimits(max_descriptors=1000, sweep_every=0.05))


def saved_rules(vport: int, port1: int, port2: int) -> str:
    return (f"-A -t {VIP}:{vport} -s rr\n"
            f"-a -t {VIP}:{vport} -r 127.0.0.2:{port1} -m -w 1\n"
            f"-a -t {VIP}:{vport} -r 127.0.0.2:{port2} -m -w 2 -x 100 -y 50\n")


def test_restore_then_save_gives_the_rules_back_and_a_bad_input_changes_nothing(run_dir):
    async def scenario(director):
        vport, port1, port2 = free_port(), 20001, 20002
        rules = saved_rules(vport, port1, port2)
        done = await lvs("-R", stdin=("# a comment\n\nipvsadm " + rules).encode())
        assert done.code == 0, done.err
        assert (await lvs("-S", "-n")).out == rules

        # line 3 does not parse: refused with its number, nothing applied
        bad = f"-D -t {VIP}:{vport}\n-A -t {VIP}:{vport + 1} -s wrr\n-a -t {VIP}:x -r y\n"
        done = await lvs("-R", stdin=bad.encode())
        assert done.code == 2 and "line 3: unknown port 'x'" in done.err
        assert "nothing applied" in done.err
        # line 2 parses but does not fit the table: refused with its number
        misfit = f"-D -t {VIP}:{vport}\n-D -t {VIP}:{vport}\n"
        done = await lvs("-R", stdin=misfit.encode())
        assert done.code == 1 and "line 2:" in done.err and "does not exist" in done.err
        # bytes that are not text: refused at their line
        done = await lvs("-R", stdin=b"-C\n-A -t \xff\n")
        assert done.code == 2 and "line 2: not UTF-8" in done.err
        assert (await lvs("-S", "-n")).out == rules

        # -C in a restore clears what is held at that point, then the rest applies
        other = f"-C\n-A -u {VIP}:{vport} -s sh -b sh-port\n"
        assert (await lvs("-R", stdin=other.encode())).code == 0
        assert (await lvs("-S", "-n")).out == f"-A -u {VIP}:{vport} -s sh -b sh-port\n"
    with_director(userspace(), scenario)


def test_restore_refused_by_the_backend_leaves_the_table(run_dir):
    async def scenario(director):
        vport = free_port()
        blocker = socket.socket()
        blocker.bind((VIP, vport))
        blocker.listen(1)
        try:
            before = (await lvs("-S", "-n")).out
            # the proxy cannot listen where another socket does: the whole restore goes
            rules = f"-A -t {VIP}:{free_port()} -s rr\n-A -t {VIP}:{vport} -s rr\n"
            done = await lvs("-R", stdin=rules.encode())
            assert done.code == 1 and "cannot listen" in done.err
            assert (await lvs("-S", "-n")).out == before
        finally:
            blocker.close()
        # and it stays so: the next edit, which could now bind, brings none of it back
        later = f"-A -t {VIP}:{free_port()} -s wlc"
        assert (await lvs(*later.split())).code == 0
        assert (await lvs("-S", "-n")).out == before + later + "\n"
    with_director(userspace(), scenario)


def test_edits_E_D_C_and_their_options_show_in_the_listing(run_dir):
    async def scenario(director):
        vport = free_port()
        service = ("-t", f"{VIP}:{vport}")
        assert (await lvs("-A", *service, "-s", "rr")).code == 0
        assert (await lvs("-a", *service, "-r", "127.0.0.2:9", "-m", "-w", "4",
                          "-x", "30", "-y", "20")).code == 0
        assert (await lvs("-a", *service, "-r", "127.0.0.3", "-i")).code == 0
        # -E: scheduler, persistence with a mask, scheduler flags
        done = await lvs("-E", *service, "-s", "sh", "-p", "600", "-M", "255.255.255.0",
                         "-b", "sh-port")
        assert done.code == 0, done.err
        listing = (await lvs("-L", "-n")).lines
        assert listing[3] == f"TCP  {VIP}:{vport} sh persistent 600 mask 255.255.255.0 (sh-port)"
        assert [line.split()[1:3] for line in listing[4:]] == [
            ["127.0.0.2:9", "Masq"], [f"127.0.0.3:{vport}", "Tunnel"]]
        saved = (await lvs("-S", "-n")).lines
        assert saved[0] == f"-A -t {VIP}:{vport} -s sh -p 600 -M 255.255.255.0 -b sh-port"
        assert saved[1] == f"-a -t {VIP}:{vport} -r 127.0.0.2:9 -m -w 4 -x 30 -y 20"
        assert saved[2] == f"-a -t {VIP}:{vport} -r 127.0.0.3:{vport} -i -w 1"
        # -x above 65535 is refused as ipvsadm refuses it
        done = await lvs("-e", *service, "-r", "127.0.0.2:9", "-m", "-x", "70000")
        assert done.code == 2 and "thresholds" in done.err
        # -E of a service that does not exist
        done = await lvs("-E", "-t", f"{VIP}:1", "-s", "rr")
        assert done.code == 1 and "does not exist" in done.err
        # -D removes the service with its servers; -C removes every service
        assert (await lvs("-A", "-u", f"{VIP}:{vport}", "-s", "rr")).code == 0
        assert (await lvs("-D", *service)).code == 0
        assert (await lvs("-S", "-n")).lines == [f"-A -u {VIP}:{vport} -s rr"]
        assert (await lvs("-C")).code == 0
        assert (await lvs("-S", "-n")).out == ""
    with_director(userspace(), scenario)


async def _read_line(reader) -> str:
    return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()


def test_counters_zero_connections_list_and_timeouts_hold(run_dir):
    async def scenario(director):
        one, port1 = await echo_server("rs1")
        vport = free_port()
        rules = f"-A -t {VIP}:{vport} -s rr\n-a -t {VIP}:{vport} -r 127.0.0.2:{port1} -m\n"
        assert (await lvs("-R", stdin=rules.encode())).code == 0
        reader, writer = await asyncio.open_connection(VIP, vport)
        writer.write(b"hi\n")
        assert await _read_line(reader) == "rs1:hi"
        stats = (await lvs("-L", "-n", "--stats", "--exact")).lines
        assert stats[3].split()[:3] == ["TCP", f"{VIP}:{vport}", "1"]

        # -L -c: the open connection, from this client's port to the real server
        local = writer.get_extra_info("sockname")
        listing = (await lvs("-L", "-c", "-n")).lines
        assert listing[:2] == ["IPVS connection entries",
                               "pro expire state       source             virtual            "
                               "destination"]
        [row] = listing[2:]
        assert row.split()[0] == "TCP" and row.split()[2:] == [
            "ESTABLISHED", f"{local[0]}:{local[1]}", f"{VIP}:{vport}", f"127.0.0.2:{port1}"]

        # -Z: the counters start again at 0 (the open connection stays)
        assert (await lvs("-Z", "-t", f"{VIP}:{vport}")).code == 0
        stats = (await lvs("-L", "-n", "--stats")).lines
        assert stats[3].split()[2:] == ["0"] * 5
        writer.write(b"again\n")
        assert await _read_line(reader) == "rs1:again"
        done = await lvs("-Z", "-t", f"{VIP}:1")
        assert done.code == 1 and "does not exist" in done.err

        # --set: 0 keeps a value; the one set is what -L --timeout shows and what holds
        before = (await lvs("-L", "--timeout")).out.split(":")[1].split()
        assert (await lvs("--set", "1", "0", "0")).code == 0
        after = (await lvs("-L", "--timeout")).out
        assert after == f"Timeout (tcp tcpfin udp): 1 {before[1]} {before[2]}\n"
        async def closed() -> bool:
            return await reader.read(100) == b""
        await until(closed, timeout=5)  # idle longer than 1 s: the proxy closed it
        listing = (await lvs("-L", "-c", "-n")).lines
        assert listing[2:] == []
        done = await lvs("--set", "1", str(daemon.MAX_TIMEOUT + 1), "0")
        assert done.code == 2 and "invalid timeout" in done.err
        writer.close()
        one.close()
    with_director(userspace(), scenario)


def test_rate_and_stats_columns_are_nine_wide_as_ipvsadm(run_dir):
    async def scenario(director):
        vport = free_port()
        rules = f"-A -t {VIP}:{vport} -s rr\n-a -t {VIP}:{vport} -r 127.0.0.2:9 -m\n"
        assert (await lvs("-R", stdin=rules.encode())).code == 0
        for option in ("--rate", "--stats"):
            lines = (await lvs("-L", "-n", option)).lines
            width = len(lines[1])  # the title: 33 columns, then five of 9
            assert width == 33 + 5 * 9
            assert all(len(line) == width for line in lines[3:]), lines
    with_director(userspace(), scenario)


def test_sort_orders_addresses_as_numbers_and_nosort_keeps_the_director_s_order(run_dir):
    async def scenario(director):
        ports = sorted(free_port() for _ in range(2))
        rules = "".join(f"-A -u 127.0.0.{n}:{ports[0]} -s rr\n" for n in (10, 9))
        rules += f"-A -t 127.0.0.10:{ports[1]} -s rr\n"
        assert (await lvs("-R", stdin=rules.encode())).code == 0
        listing = [line.split()[:2] for line in (await lvs("-L", "-n", "--sort")).lines[3:]]
        assert listing == [["TCP", f"127.0.0.10:{ports[1]}"], ["UDP", f"127.0.0.9:{ports[0]}"],
                           ["UDP", f"127.0.0.10:{ports[0]}"]]
        assert (await lvs("-L", "-n")).lines == (await lvs("-L", "-n", "--sort")).lines
        unsorted = [line.split()[:2] for line in (await lvs("-L", "-n", "--nosort")).lines[3:]]
        assert sorted(unsorted) == sorted(listing)
        done = await lvs("-L", "--sort", "--nosort")
        assert done.code == 2
    with_director(userspace(), scenario)


def test_a_backend_without_counters_connections_or_timeouts_says_so(run_dir):
    async def scenario(director):
        for words, what in ((("-Z",), "cannot zero counters"),
                            (("-L", "-c"), "cannot list connections"),
                            (("-L", "--timeout"), "no connection timeouts"),
                            (("--set", "10", "0", "0"), "cannot set connection timeouts")):
            done = await lvs(*words)
            assert done.code == 1 and what in done.err, (words, done)
            assert done.out == ""
    with_director(MemoryBackend(), scenario)


def test_tcpfin_ends_a_half_closed_connection(run_dir):
    async def scenario(director):
        stay = asyncio.Event()

        async def half_closing(reader, writer):  # answers, then keeps its side open
            writer.write(await reader.readline())
            await writer.drain()
            await reader.read()
            await stay.wait()
            writer.close()
        server = await asyncio.start_server(half_closing, "127.0.0.2", 0)
        port = server.sockets[0].getsockname()[1]
        vport = free_port()
        rules = f"-A -t {VIP}:{vport} -s rr\n-a -t {VIP}:{vport} -r 127.0.0.2:{port} -m\n"
        assert (await lvs("-R", stdin=rules.encode())).code == 0
        assert (await lvs("--set", "0", "1", "0")).code == 0  # tcp stays as it was
        reader, writer = await asyncio.open_connection(VIP, vport)
        writer.write(b"bye\n")
        assert await _read_line(reader) == "bye"
        listing = (await lvs("-L", "-c", "-n")).lines
        assert [row.split()[2] for row in listing[2:]] == ["ESTABLISHED"]
        writer.write_eof()

        async def states() -> list[str]:
            return [row.split()[2] for row in (await lvs("-L", "-c", "-n")).lines[2:]]

        async def fin_wait() -> bool:
            return await states() == ["FIN_WAIT"]

        async def gone() -> bool:
            return await states() == []
        await until(fin_wait, timeout=5)
        await until(gone, timeout=5)  # idle half-closed longer than tcpfin: ended
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(100), 5) == b""
        stay.set()
        writer.close()
        server.close()
    with_director(userspace(), scenario)


def test_a_restore_larger_than_one_request_is_refused_whole(run_dir):
    async def scenario(director):
        before = (await lvs("-S", "-n")).out
        rules = "".join(f"-A -t 127.0.{n // 250}.{n % 250 + 1}:80 -s rr\n" for n in range(2000))
        done = await lvs("-R", stdin=rules.encode())
        assert done.code == 1 and "split the input; nothing applied" in done.err
        assert (await lvs("-S", "-n")).out == before
    with_director(MemoryBackend(), scenario)
