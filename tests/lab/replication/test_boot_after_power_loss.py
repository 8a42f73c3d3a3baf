"""The replicated MySQL pair loses power during writes; both nodes boot as systemd boots them.

The tutorial's setup (demo scene 2's files: ha.cf, authkeys, haresources
`IPaddr drbddisk::mysqldata Filesystem::/dev/drbd1::/var/lib/mysql::ext4 mysqld`,
the .res) on server5 and server6 under `vigil heartbeat`. A client commits
numbered rows through the VIP and records which MariaDB acknowledged. Both
nodes lose power at the same instant, in the middle of the writes. Then they
boot by running exactly what `vigil units` writes, in the units' order:
vigil-volumes.service's ExecStart lines (`volume up all`, `wait-connect all`,
`become-primary all`), then vigil-heartbeat.service's ExecStartPre and
ExecStart. server6 comes back first: its boot must stop at wait-connect
(wfc-timeout 0, DRBD's default: until the peer is there), so its heartbeat
cannot start, take the group after initdead and promote a disk that lacks
server5's last writes; server5 boots once server6 has waited 10 s. MariaDB must come
back on server5 (the home node) and every acknowledged row must be in the
table.

The lab's power loss kills every process of a host and keeps its files; what
the kernel had in its page cache for them is kept too (the lab cannot drop
one host's cache).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import threading
import time
from dataclasses import dataclass, field

import pymysql
import pytest

from vigil.cli.units import render
from vigil.demo import replication_scene as scene
from vigil.demo.timeline import Timeline
from vigil.lab import Lab, LabProcess, seed_topology
from vigil.replication import loopdev
from vigil.testing import vigil_command, wait_until

pytestmark = [pytest.mark.lab, pytest.mark.slow]

#: Longest a boot step may take on this shared 2-core machine (a wait-connect that never
#: returns is a failure of the test, not a hang of it).
STEP_DEADLINE = 180.0
ROWS_BEFORE = 200


def unit_commands(unit: str, key: str) -> list[tuple[list[str], bool]]:
    """A unit's `key=` command lines, in order: (argv, failure allowed by a leading '-')."""
    commands = []
    for line in unit.splitlines():
        if line.startswith(f"{key}="):
            command = line.split("=", 1)[1]
            may_fail = command.startswith("-")
            commands.append((shlex.split(command.lstrip("-")), may_fail))
    return commands


@dataclass
class Step:
    argv: list[str]
    started: float
    ended: float = 0.0
    code: int | None = None
    output: str = ""


@dataclass
class Boot:
    """One host's boot, in a thread: the volumes unit, then the heartbeat unit."""

    lab: Lab
    name: str
    steps: list[Step] = field(default_factory=list)
    running: LabProcess | None = None
    heartbeat: LabProcess | None = None
    heartbeat_started: float = 0.0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"boot-{self.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            units = render()
            for argv, may_fail in unit_commands(units["vigil-volumes.service"], "ExecStart"):
                step = self._step(argv)
                assert step.code == 0 or may_fail, f"{self.name}: {step}"
            heartbeat = units["vigil-heartbeat.service"]
            host = self.lab.host(self.name)
            host.run(["mkdir", "-p", "/run/vigil"])  # RuntimeDirectory=vigil
            for argv, may_fail in unit_commands(heartbeat, "ExecStartPre"):
                step = self._step(argv)
                assert step.code == 0 or may_fail, f"{self.name}: {step}"
            [(argv, _)] = unit_commands(heartbeat, "ExecStart")
            self.heartbeat_started = time.time()
            self.heartbeat = host.spawn(argv, name="vigil-heartbeat.service")
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def _step(self, argv: list[str]) -> Step:
        step = Step(argv, time.time())
        self.steps.append(step)
        self.running = self.lab.host(self.name).spawn(argv, name=f"unit-step{len(self.steps)}")
        assert self.running.popen is not None
        step.code = self.running.popen.wait(timeout=STEP_DEADLINE)
        step.ended = time.time()
        step.output = self.running.output()
        self.running = None
        return step

    def live_output(self) -> str:
        running = self.running
        return running.output() if running is not None else ""

    def wait(self) -> None:
        assert self.done.wait(STEP_DEADLINE * 4), f"{self.name}: boot did not finish"
        if self.error is not None:
            raise self.error

    def step(self, verb: str) -> Step:
        return next(s for s in self.steps if verb in s.argv)


def _loops(lab: Lab, into: list[loopdev.LoopIdentity]) -> None:
    for name in scene.NODES:
        state = json.loads(lab.host(name).read_file(f"/run/vigil/volume/{scene.RESOURCE}/"
                                                    "state.json"))
        identity = loopdev.LoopIdentity(**state["loop"])
        if identity not in into:
            into.append(identity)


def _status(lab: Lab, name: str) -> dict:
    return scene.volume_status(lab.host(name))


def test_both_nodes_boot_after_power_loss_and_every_acknowledged_row_is_there():
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (namespaces, FUSE, loop devices)")
    lab = Lab(seed_topology())
    timeline = Timeline(out=io.StringIO())
    result = scene.ReplicationResult("boot after power loss")
    committer: scene.Committer | None = None
    try:
        lab.up()
        vip = lab.address("vip")
        client, server5 = lab.host("client"), lab.host("server5")
        assert server5.path("/etc/drbd.conf").exists()  # the volumes unit's condition
        ok = scene.configure(lab, timeline, result) and scene.prepare_volume(lab, timeline,
                                                                            result)
        assert ok, (result.problems, timeline.out.getvalue())
        scene.start_heartbeat(lab, timeline, result, vip)
        wait_until(lambda: server5.run(["mariadb", "-e", "SELECT 1"], check=False)
                   .returncode == 0, 120, "MariaDB on server5 (the group's first start)",
                   interval=0.2)
        server5.run(["mariadb", "-e", scene.APP_SQL])
        committer = scene.Committer(client, vip)
        committer.start()
        wait_until(lambda: committer.acked() >= ROWS_BEFORE, 60,
                   lambda: f"{ROWS_BEFORE} rows acknowledged ({committer.acked()})")

        lab.power_loss("server5", "server6")
        lost_power = time.time()
        acked_at_loss = committer.acked()

        # server6 comes back first and must wait for server5 before heartbeat starts.
        lab.boot("server6")
        booted6 = time.time()
        boot6 = Boot(lab, "server6")
        boot6.start()
        # It says what it waits for, and still waits 10 s later (its progress line).
        waiting = wait_until(lambda: "still waiting for the peer" in boot6.live_output()
                             and boot6.live_output(), 120,
                             lambda: f"server6's wait-connect to go on waiting: "
                             f"{boot6.steps} {boot6.error!r} {boot6.live_output()!r}")
        assert waiting.startswith("mysqldata: waiting for the peer to connect, forever "
                                  "(wfc-timeout): "), waiting
        assert boot6.heartbeat is None and not boot6.done.is_set()

        lab.boot("server5")
        booted5 = time.time()
        boot5 = Boot(lab, "server5")
        boot5.start()
        boot5.wait()
        boot6.wait()
        _loops(lab, result.loops)

        # Both waits ended because the peers connected; heartbeat started after that only.
        for boot in (boot5, boot6):
            wait_step = boot.step("wait-connect")
            assert wait_step.code == 0, wait_step
            assert "mysqldata: connected after" in wait_step.output, wait_step.output
            assert boot.heartbeat_started >= wait_step.ended
        wait6 = boot6.step("wait-connect")
        assert wait6.ended >= booted5 and wait6.ended - wait6.started >= 10
        assert "not promoted here (become-primary-on: not set)" in \
            boot5.step("become-primary").output

        back = wait_until(lambda: committer.acked_since(booted5) > 0 and time.time(), 240,
                          lambda: "the client's INSERTs to be acknowledged again through "
                          f"the VIP (holders {scene.vip_holders(lab, vip)})", interval=0.2)
        assert scene.vip_holders(lab, vip) == ["server5"]
        assert server5.run(vigil_command("volume", "role", scene.RESOURCE)).stdout.strip() \
            == "Primary/Secondary"
        for name in scene.NODES:
            assert _status(lab, name)["split_brain"] == ""
        wait_until(lambda: committer.acked_since(booted5) >= 50, 60, "50 rows after the boot")
        committer.stop.set()
        committer.join(15)

        with client.entered():
            connection = pymysql.connect(host=vip, user="app", password="app-pw",
                                         database="app", connect_timeout=5)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT id FROM numbers")
            present = {row[0] for row in cursor.fetchall()}
        acknowledged = {number for number, _ in committer.acknowledged}
        missing = sorted(acknowledged - present)
        print(f"acknowledged {len(acknowledged)} rows ({acked_at_loss} before the power loss), "
              f"{len(present)} in the table, missing {len(missing)}; power loss to server5 "
              f"booted {booted5 - lost_power:.1f} s; server6 waited "
              f"{boot6.step('wait-connect').ended - boot6.step('wait-connect').started:.1f} s "
              f"(booted {booted5 - booted6:.1f} s before server5); server5 boot to MariaDB "
              f"acknowledging again {back - booted5:.1f} s")
        assert not missing, f"{len(missing)} acknowledged rows missing: {missing[:10]}"
        assert acked_at_loss >= ROWS_BEFORE
        assert not sorted(present - set(committer.attempted))
    finally:
        if committer is not None:
            committer.stop.set()
            committer.join(15)
        lab.down()
        leaked = [identity.name for identity in result.loops if loopdev.is_ours(identity)]
        for identity in result.loops:
            loopdev.force_detach(identity)
        assert not leaked, f"loop devices left attached: {leaked}"
