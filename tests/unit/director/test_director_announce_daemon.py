"""The director's loop telling ExaBGP what it announces: ExaBGP 4.2's text commands
on a pipe as the real server comes and goes, on drain and on stop."""

import asyncio
import os
from pathlib import Path

import pytest

from vigil.config.extension import conntrackd_syncs
from vigil.director import daemon
from vigil.director.adapter import load_config
from vigil.director.announce import Cause, Change
from vigil.director.backends.memory import MemoryBackend
from vigil.director.speaker import ExaBGPSpeaker, exabgp_line
from vigil.errors import VigilError

CONFIG = """\
checktimeout=5
checkinterval=1
virtual=127.0.0.1:8080
\treal=127.0.0.2:{port} masq
\tscheduler=mh
\tchecktype=connect
"""
PREFIX = "127.0.0.1/32"


async def serve(port: int = 0) -> asyncio.Server:
    """A real server on 127.0.0.2 that accepts every check's connection and closes it."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.2", port, reuse_address=True)


def test_nat_is_refused_active_active_without_conntrack_sync(run_dir):
    cf = run_dir / "ldirectord.cf"
    cf.write_text(CONFIG.format(port=8081))
    director = daemon.Director(cf, MemoryBackend(), speaker=ExaBGPSpeaker(out_fd=-1, in_fd=-1))
    with pytest.raises(VigilError, match=r"ldirectord.cf: tcp:127.0.0.1:8080 -> "
                       r"127.0.0.2:8081 uses NAT \(masq\).*conntrackd_conf"):
        asyncio.run(director.run())
    assert not director.backend.transactions  # refused before any table was applied
    # without --announce, NAT runs as before
    assert daemon.Director(cf, MemoryBackend()).refuse_unsafe(
        load_config(cf)).services[0].reals[0].real.forward.value == "masq"


def test_conntrackd_sync_section(tmp_path):
    conf = tmp_path / "conntrackd.conf"
    conf.write_text("# Sync {\nGeneral {\n}\n")
    assert not conntrackd_syncs(str(conf))
    conf.write_text("Sync {\n  Mode FTFW {\n  }\n}\n")
    assert conntrackd_syncs(str(conf))
    assert not conntrackd_syncs(str(tmp_path / "missing.conf"))
    assert not conntrackd_syncs(None)


def test_exabgp_lines():
    assert exabgp_line(Change("198.51.100.100/32", True, Cause.SERVING)) == (
        "announce route 198.51.100.100/32 next-hop self\n")
    assert exabgp_line(Change("2001:db8::1/128", False, Cause.DRAINING)) == (
        "withdraw route 2001:db8::1/128 next-hop self\n")


async def served_config(run_dir) -> tuple[asyncio.Server, int, Path]:
    """A real server, its port, and the ldirectord.cf that checks it."""
    real = await serve()
    port = real.sockets[0].getsockname()[1]
    cf = run_dir / "ldirectord.cf"
    cf.write_text(CONFIG.format(port=port))
    return real, port, cf


def speaker_pipes() -> tuple[int, int, int, int]:
    """The speaker's two pipes: commands (read without blocking) and answers."""
    commands_r, commands_w = os.pipe()
    answers_r, answers_w = os.pipe()
    os.set_blocking(commands_r, False)
    return commands_r, commands_w, answers_r, answers_w


async def stop_all(director, task, real: asyncio.Server, *fds: int) -> None:
    """The director stopped, the real server closed, the speaker's pipes closed."""
    director._stop.set()
    await asyncio.wait_for(task, 10)
    real.close()
    await real.wait_closed()
    for fd in fds:
        os.close(fd)


def test_announce_withdraw_drain_and_stop_reach_the_speaker(run_dir):
    async def scenario():
        real, port, cf = await served_config(run_dir)
        commands_r, commands_w, answers_r, answers_w = speaker_pipes()
        # masq: the memory backend forwards nothing; NAT needs conntrack_sync to announce
        moments: list[tuple[str, float]] = []

        class TimedBackend(MemoryBackend):
            async def apply(self, operations, desired):
                moments.append(("apply", asyncio.get_running_loop().time()))
                await super().apply(operations, desired)

        class TimedSpeaker(ExaBGPSpeaker):
            def send(self, changes):
                moments.append(("send", asyncio.get_running_loop().time()))
                super().send(changes)

        speaker = TimedSpeaker(out_fd=commands_w, in_fd=answers_r)
        backend = TimedBackend()
        director = daemon.Director(cf, backend, speaker=speaker, conntrack_sync=True,
                                   linger=2.0)
        task = asyncio.create_task(director.run())
        seen: list[str] = []

        async def line(expected: str) -> None:
            try:
                async with asyncio.timeout(15):
                    while expected not in seen:
                        try:
                            seen.extend(os.read(commands_r, 4096).decode().splitlines())
                        except BlockingIOError:
                            await asyncio.sleep(0.02)
            except TimeoutError:
                raise AssertionError(
                    f"no {expected!r} within 15 s; read {seen}; announce "
                    f"{director.announce_status()}; health {director.policy.snapshot()}; "
                    f"moments {moments}") from None

        try:
            await line(f"announce route {PREFIX} next-hop self")
            assert director.announce_status()["vips"] == [
                {"vip": "127.0.0.1", "prefix": PREFIX, "announced": True, "cause": "serving"}]
            os.write(answers_w, b"done\nerror\n")
            async with asyncio.timeout(15):
                while speaker.errors < 1:
                    await asyncio.sleep(0.02)
            real.close()  # the only real server goes away: withdraw
            await real.wait_closed()
            await line(f"withdraw route {PREFIX} next-hop self")
            assert director.announce_status()["vips"][0]["cause"] == "no-healthy-real"
            real = await serve(port)
            seen.clear()
            await line(f"announce route {PREFIX} next-hop self")
            seen.clear()
            director.set_draining(True)
            await line(f"withdraw route {PREFIX} next-hop self")
            assert director.announce_status()["vips"][0]["cause"] == "draining"
            seen.clear()
            director.set_draining(False)
            await line(f"announce route {PREFIX} next-hop self")
            seen.clear()
            moments.clear()
            director._stop.set()
            await asyncio.wait_for(task, 10)
            await line(f"withdraw route {PREFIX} next-hop self")
            # the withdrawal first, the table cleared (cleanstop) only after the linger
            # (a check's apply may land just before the stop: only what follows counts)
            withdrawn = [at for what, at in moments if what == "send"]
            assert len(withdrawn) == 1, moments
            after = [at for what, at in moments if what == "apply" and at >= withdrawn[0]]
            assert len(after) == 1 and after[0] - withdrawn[0] >= 2.0, moments
            assert len(backend.table) == 0
            assert director.announcer.snapshot()[0]["cause"] == "stopping"
        finally:
            await stop_all(director, task, real, commands_r, commands_w, answers_r, answers_w)

    asyncio.run(scenario())


def test_announce_settings_come_from_the_options_then_vigil_cf(tmp_path):
    import argparse

    from vigil.cli import director as director_cli
    from vigil.errors import UsageError

    cf = tmp_path / "vigil.cf"

    def settings(**options):
        values = {"announce": None, "announce_holddown": None, "announce_linger": None,
                  "vigil_cf": str(cf), **options}
        args = argparse.Namespace(**values)
        return director_cli._announce_settings(args, director_cli._vigil_cf(args))

    assert settings() == ("off", 0.0, False, 0.0)  # no vigil.cf
    cf.write_text("director_announce exabgp\nannounce_holddown 4\nannounce_linger 1\n")
    assert settings() == ("exabgp", 4.0, False, 1.0)
    assert settings(announce="off", announce_linger=2.5) == ("off", 4.0, False, 2.5)
    with pytest.raises(UsageError, match="announce_linger"):
        settings(announce_linger=11.0)
    # a detached director has no ExaBGP on its standard output
    args = argparse.Namespace(announce="exabgp", announce_holddown=None, announce_linger=None,
                              vigil_cf=str(cf), foreground=False, backend="userspace",
                              metrics_address=None)
    with pytest.raises(UsageError, match="add -d"):
        director_cli.start(None, args)


def test_exabgp_answers_are_bounded_and_the_pipe_closing_ends_the_reader():
    async def scenario():
        commands_r, commands_w = os.pipe()
        answers_r, answers_w = os.pipe()
        speaker = ExaBGPSpeaker(out_fd=commands_w, in_fd=answers_r)
        await speaker.start()
        os.write(answers_w, b"x" * 20000 + b"\ndone\n\xff\xfe garbage\nerror bad\n")
        os.close(answers_w)  # ExaBGP went away
        async with asyncio.timeout(15):
            await speaker._reader
        assert speaker.errors == 2  # the over-long line and the refusal
        speaker.send([Change("198.51.100.100/32", True, Cause.SERVING)])
        assert os.read(commands_r, 4096) == b"announce route 198.51.100.100/32 next-hop self\n"
        await speaker.close()
        for fd in (commands_r, commands_w, answers_r):
            os.close(fd)

    asyncio.run(scenario())


def test_a_director_announces_only_once_its_data_path_takes_moved_flows(run_dir):
    """A data path that is still learning drops mid-connection packets: the flows a
    router would move to this director would stall, so the route waits for it."""
    async def scenario():
        real, _, cf = await served_config(run_dir)
        commands_r, commands_w, answers_r, answers_w = speaker_pipes()

        class LearningBackend(MemoryBackend):
            learning = True

            def takes_moved_flows(self) -> bool:
                return not self.learning

        backend = LearningBackend()
        speaker = ExaBGPSpeaker(out_fd=commands_w, in_fd=answers_r)
        director = daemon.Director(cf, backend, speaker=speaker, conntrack_sync=True)
        task = asyncio.create_task(director.run())

        def written() -> str:
            try:
                return os.read(commands_r, 4096).decode()
            except BlockingIOError:
                return ""

        try:
            async with asyncio.timeout(15):
                while director.policy.phase != "running":
                    await asyncio.sleep(0.02)
            await asyncio.sleep(3 * daemon.SETTLE_POLL)
            assert written() == ""
            assert director.announce_status()["vips"][0]["announced"] is False
            backend.learning = False
            text = ""
            async with asyncio.timeout(5):
                while "announce route" not in text:
                    text += written()
                    await asyncio.sleep(0.02)
            assert text == f"announce route {PREFIX} next-hop self\n"
        finally:
            await stop_all(director, task, real, commands_r, commands_w, answers_r, answers_w)

    asyncio.run(scenario())
