"""External agents for real: LSB scripts, Debian's OCF agents, fake `vigil volume/director`."""

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vigil.agents.base import AgentConfigError, OcfStatus
from vigil.agents.drbddisk import DrbdDisk
from vigil.agents.factory import build_agent, parse_resource
from vigil.agents.ipaddr import IPaddr
from vigil.agents.ldirectord import Ldirectord
from vigil.agents.lsb import LsbScript
from vigil.agents.ocf import OcfAgent
from vigil.agents.options import AgentOptions, AgentPaths, DrbdBackend
from vigil.agents.systemd import SystemdUnit
from vigil.testing import wait_until

OCF_ROOT = "/usr/lib/ocf"


def script(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def paths_for(tmp_path, **extra):
    resource_d, init_d = tmp_path / "resource.d", tmp_path / "init.d"
    resource_d.mkdir(exist_ok=True)
    init_d.mkdir(exist_ok=True)
    return AgentPaths(script_dirs=(resource_d, init_d), state_dir=tmp_path / "state", **extra)


def run(coroutine):
    return asyncio.run(coroutine)


LSB_SERVICE = """\
    state={state}
    case "$1" in
      start) touch $state; echo "Starting svc";;
      stop) rm -f $state;;
      status) if [ -f $state ]; then echo "svc is running"; exit 0; fi
              echo "svc is not running"; exit 3;;
    esac
"""


def test_lsb_script_lookup_order_start_stop_status(tmp_path):
    paths = paths_for(tmp_path)
    state = tmp_path / "svc.state"
    script(paths.script_dirs[1], "svc", LSB_SERVICE.format(state=state))
    agent = build_agent("svc", options=AgentOptions(), paths=paths)
    assert isinstance(agent, LsbScript) and agent.script.parent == paths.script_dirs[1]
    assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING
    assert run(agent.start(5)).ok and state.exists()
    assert run(agent.status(5)).ok
    assert run(agent.stop(5)).ok and not state.exists()
    # resource.d comes first, as in heartbeat
    script(paths.script_dirs[0], "svc", "exit 0\n")
    assert build_agent("svc", paths=paths).script.parent == paths.script_dirs[0]


def test_lsb_arguments_come_before_the_operation(tmp_path):
    paths = paths_for(tmp_path)
    log = tmp_path / "argv"
    script(paths.script_dirs[0], "args", f'echo "$@" > {log}\n')
    agent = build_agent(*parse_resource("args::one::two"), paths=paths)
    assert run(agent.start(5)).ok
    assert log.read_text().strip() == "one two start"


@pytest.mark.parametrize("output, code, expected", [
    ("mysqld (pid 42) is running...", 0, OcfStatus.SUCCESS),
    ("running", 1, OcfStatus.SUCCESS),  # R1 scripts: the text wins, the code is ignored
    ("OK", 3, OcfStatus.SUCCESS),
    ("mysqld is not running", 0, OcfStatus.NOT_RUNNING),
    ("stopped", 3, OcfStatus.NOT_RUNNING),  # no words heartbeat knows: the LSB code
    ("", 0, OcfStatus.SUCCESS),
    ("pid file exists but process is dead", 1, OcfStatus.NOT_RUNNING),
    ("cannot determine status, may be running (Unknown)", 4, OcfStatus.SUCCESS),
    ("", 4, OcfStatus.ERR_GENERIC),  # unknown: may be running
    ("INFO:  Resource is stopped", 7, OcfStatus.NOT_RUNNING),  # hto-mapfuncs wrappers
])
def test_heartbeat_reading_of_status_output(tmp_path, output, code, expected):
    paths = paths_for(tmp_path)
    script(paths.script_dirs[0], "st", f'echo "{output}"; exit {code}\n')
    assert run(build_agent("st", paths=paths).status(5)).status is expected


HEARTBEAT_RESOURCE_D = Path("/etc/ha.d/resource.d")


@pytest.mark.skipif(not (HEARTBEAT_RESOURCE_D / "IPv6addr").exists(),
                    reason="Debian's heartbeat (its resource.d wrappers) is not installed")
def test_heartbeats_own_ocf_wrapper_saying_stopped_is_read_as_stopped(tmp_path):
    # IPv6addr is one of heartbeat 3.0.6's hto-mapfuncs wrappers; status only reads
    paths = AgentPaths(script_dirs=(HEARTBEAT_RESOURCE_D,), state_dir=tmp_path / "state")
    agent = build_agent("IPv6addr", ("2001:db8::99/64",), paths=paths)
    result = run(agent.status(10))
    assert result.status is OcfStatus.NOT_RUNNING, result


def test_unknown_resource_names_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(AgentConfigError) as caught:
        build_agent("nosuchservice", paths=paths_for(tmp_path))
    assert caught.value.status is OcfStatus.ERR_INSTALLED
    assert "resource.d" in str(caught.value) and "init.d" in str(caught.value)


def test_a_hung_agent_hits_its_timeout_and_is_killed(tmp_path):
    paths = paths_for(tmp_path)
    pidfile = tmp_path / "hung.pid"
    script(paths.script_dirs[0], "hung", f"trap '' TERM; echo $$ > {pidfile}; "
           "while :; do sleep 1; done\n")
    agent = build_agent("hung", paths=paths)
    started = time.monotonic()
    result = run(agent.start(0.5))
    elapsed = time.monotonic() - started
    assert result.status is OcfStatus.ERR_GENERIC and "timed out" in result.message
    assert elapsed < 6  # 0.5 s, then TERM (ignored), then KILL after the grace
    assert gone(int(pidfile.read_text()))


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] == "Z"
    except FileNotFoundError:
        return True


def test_debian_ocf_dummy_exit_codes(tmp_path):
    state = tmp_path / "dummy.state"
    agent = build_agent("ocf:heartbeat:Dummy", (f"state={state}",))
    assert isinstance(agent, OcfAgent)
    assert run(agent.status(10)).status is OcfStatus.NOT_RUNNING
    assert run(agent.start(10)).ok and state.exists()
    assert run(agent.monitor(10)).status is OcfStatus.SUCCESS
    assert run(agent.stop(10)).ok and not state.exists()
    assert run(agent.monitor(10)).status is OcfStatus.NOT_RUNNING
    assert run(agent.stop(10)).ok  # stopping a stopped resource succeeds


def test_ocf_parameters_and_environment(tmp_path):
    root = tmp_path / "ocf"
    (root / "resource.d" / "acme").mkdir(parents=True)
    dump = tmp_path / "env"
    script(root / "resource.d" / "acme", "Probe",
           f'env | grep -E "^OCF_" | sort > {dump}; [ "$1" = start ] && exit 6; exit 7\n')
    agent = build_agent("ocf:acme:Probe", ("port=8080", "name=a b"),
                        paths=AgentPaths(ocf_root=root))
    assert run(agent.start(5)).status is OcfStatus.ERR_CONFIGURED
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines())
    assert env["OCF_ROOT"] == str(root) and env["OCF_RESKEY_port"] == "8080"
    assert env["OCF_RESKEY_name"] == "a b" and env["OCF_RESOURCE_TYPE"] == "Probe"
    assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING


@pytest.mark.parametrize("name, args", [("ocf:heartbeat", ()), ("ocf:heartbeat:Dummy", ("x",)),
                                        ("ocf:nobody:Nothing", ())])
def test_bad_ocf_resources(name, args):
    with pytest.raises(AgentConfigError):
        build_agent(name, args)


def test_systemd_units_report_not_installed_without_systemd(tmp_path):
    agent = build_agent("systemd:nginx", paths=AgentPaths(systemd_marker=tmp_path / "none"))
    assert isinstance(agent, SystemdUnit) and agent.unit == "nginx.service"
    for operation in (agent.start, agent.stop, agent.status):
        result = run(operation(5))
        assert result.status is OcfStatus.ERR_INSTALLED and "systemd is not running" in \
            result.message


def test_systemd_units_use_systemctl_when_systemd_runs(tmp_path, monkeypatch):
    marker = tmp_path / "systemd"
    marker.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    script(bin_dir, "systemctl", f'echo "$@" >> {calls}\n'
           '[ "$1" = is-active ] && exit 3; exit 0\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    agent = build_agent("systemd:nginx", paths=AgentPaths(systemd_marker=marker))
    assert run(agent.start(5)).ok
    assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING
    assert calls.read_text().splitlines() == ["start nginx.service",
                                              "is-active --quiet nginx.service"]


FAKE_VIGIL = """\
    # a stand-in for `vigil volume` and `vigil director`, keeping state in files
    state={state}
    echo "$@" >> $state/calls
    case "$1 $2" in
      "volume primary") n=$(cat $state/refuse 2>/dev/null || echo 0)
          if [ "$n" -gt 0 ]; then
              echo $((n-1)) > $state/refuse; echo "peer is primary" >&2; exit 11; fi
          echo Primary > $state/role.$3;;
      "volume secondary") [ -f $state/stuck ] && { echo "device is held open" >&2; exit 11; }
          echo Secondary > $state/role.$3;;
      "volume role") cat $state/role.$3 2>/dev/null || { echo "Unknown" ; exit 10; };;
      "director start") touch $state/director
          echo "metrics=${VIGIL_DIRECTOR_METRICS_ADDRESS:-none} other=${UNRELATED:-none}" \
              >> $state/calls;;
      "director stop") rm -f $state/director;;
      "director status") [ -f $state/director ] && { echo "ldirectord is running"; exit 0; }
          echo "ldirectord is stopped"; exit 3;;
    esac
"""


@pytest.fixture
def fake_vigil(tmp_path, monkeypatch):
    bin_dir, state = tmp_path / "bin", tmp_path / "vstate"
    bin_dir.mkdir()
    state.mkdir()
    script(bin_dir, "vigil", FAKE_VIGIL.replace("{state}", str(state)))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return state


#: The fake `vigil` is found on PATH, so the agents run it by that name.
BY_NAME = ("vigil",)


def test_drbddisk_promotes_and_demotes_through_vigil_volume(fake_vigil, tmp_path):
    options = AgentOptions(drbd_retry_delay=0.01, vigil_command=BY_NAME)
    agent = build_agent("drbddisk", ("mysqldata",), options=options)
    assert isinstance(agent, DrbdDisk) and agent.backend is DrbdBackend.VIGIL  # no /proc/drbd
    assert run(agent.status(5)).status is OcfStatus.ERR_GENERIC  # unknown: may be running
    assert run(agent.start(5)).ok
    assert run(agent.status(5)).status is OcfStatus.SUCCESS
    assert run(agent.stop(5)).ok
    assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING
    assert (fake_vigil / "calls").read_text().splitlines()[1] == "volume primary mysqldata"


def test_drbddisk_retries_promotion_like_heartbeats(fake_vigil):
    (fake_vigil / "refuse").write_text("5")  # refused 5 times, 6th try works
    agent = DrbdDisk("drbddisk", ("r0",), AgentOptions(drbd_retry_delay=0.01,
                                                       vigil_command=BY_NAME))
    assert run(agent.start(10)).ok
    (fake_vigil / "refuse").write_text("6")
    (fake_vigil / "role.r0").write_text("Secondary")
    result = run(agent.start(10))
    assert not result.ok and "6 tries" in result.message


def test_drbddisk_failed_demotion_never_looks_released(fake_vigil):
    from vigil.agents.group import Group

    options = AgentOptions(drbd_retry_delay=0.01, stop_retries=1, stop_retry_delay=0,
                           vigil_command=BY_NAME)
    agent = DrbdDisk("drbddisk", ("r0",), options)
    assert run(agent.start(5)).ok
    (fake_vigil / "stuck").touch()
    result = run(Group("g", [agent], options).stop())
    assert result.blocked and not result.released
    assert (fake_vigil / "calls").read_text().count("volume secondary r0") == 2 * 3


def test_drbddisk_uses_drbdadm_when_drbd_is_loaded(tmp_path):
    proc_drbd = tmp_path / "drbd"
    proc_drbd.write_text("version: 8.4.11\n")
    agent = DrbdDisk("drbddisk", ("r0",), AgentOptions(), proc_drbd=proc_drbd)
    assert agent.backend is DrbdBackend.DRBDADM and agent._argv("primary") == \
        ["drbdadm", "primary", "r0"]


def test_ldirectord_resource_runs_vigil_director(fake_vigil, tmp_path, monkeypatch):
    from vigil.director import daemon

    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path)
    agent = build_agent("ldirectord", ("ldirectord.cf",),
                        options=AgentOptions(vigil_command=BY_NAME))
    assert isinstance(agent, Ldirectord)
    assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING
    assert run(agent.start(5)).ok
    assert run(agent.stop(5)).ok
    assert "director start ldirectord.cf" in (fake_vigil / "calls").read_text()


def test_ldirectord_resource_passes_the_directors_metrics_address(fake_vigil, tmp_path,
                                                                 monkeypatch):
    from vigil.director import daemon

    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path)
    agent = build_agent("ldirectord", ("ldirectord.cf",),
                        options=AgentOptions(vigil_command=BY_NAME))
    monkeypatch.delenv("VIGIL_DIRECTOR_METRICS_ADDRESS", raising=False)
    monkeypatch.setenv("UNRELATED", "x")
    assert run(agent.start(5)).ok
    monkeypatch.setenv("VIGIL_DIRECTOR_METRICS_ADDRESS", "9695")
    assert run(agent.start(5)).ok
    calls = (fake_vigil / "calls").read_text().splitlines()
    assert [c for c in calls if c.startswith("metrics=")] == [
        "metrics=none other=none", "metrics=9695 other=none"]


def test_ldirectord_status_reads_the_directors_pid_file(tmp_path, monkeypatch):
    """Read in-process: running only while the pid file names a live vigil director."""
    import subprocess

    from vigil.director import daemon

    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path)
    agent = Ldirectord("ldirectord", ("/etc/ha.d/ldirectord.cf",))
    pid_file = daemon.Paths("ldirectord.cf").pid
    other = subprocess.Popen(["sleep", "30"])
    # (not `sh -c`: the shell may exec sleep, and the command line changes under the test)
    director = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                                 "vigil-director"])
    try:
        # right after the spawn /proc may still show the parent's command line
        wait_until(lambda: b"vigil-director" in Path(f"/proc/{director.pid}/cmdline")
                   .read_bytes(), 5, "the stand-in's command line")
        assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING  # no pid file
        pid_file.write_text(f"{other.pid}\n")  # a pid that is not a director
        assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING
        pid_file.write_text(f"{director.pid}\n")
        result = run(agent.status(5))
        assert result.ok and str(director.pid) in result.message
    finally:
        for process in (other, director):
            process.kill()
            process.wait()
    assert run(agent.status(5)).status is OcfStatus.NOT_RUNNING  # it died


def test_factory_names():
    assert parse_resource("198.51.100.100/24/eth0") == ("IPaddr", ("198.51.100.100/24/eth0",))
    assert parse_resource("IPaddr2::2001:db8:0:1::100/64/eth0") == \
        ("IPaddr2", ("2001:db8:0:1::100/64/eth0",))
    assert parse_resource("Filesystem::/dev/drbd1::/var/lib/mysql::ext4") == \
        ("Filesystem", ("/dev/drbd1", "/var/lib/mysql", "ext4"))
    assert parse_resource("ocf:heartbeat:Dummy::state=/tmp/x") == \
        ("ocf:heartbeat:Dummy", ("state=/tmp/x",))
    # a config parser that split an IPv6 address at its "::" still gets the right agent
    agent = build_agent("IPaddr2", ("2001:db8:0:1", "100/64"))
    assert isinstance(agent, IPaddr) and agent.spec.ip == "2001:db8:0:1::100"
    assert build_agent("198.51.100.7").name == "IPaddr"
    with pytest.raises(AgentConfigError):
        build_agent("IPaddr", ("not-an-ip",))
    with pytest.raises(AgentConfigError):
        build_agent("Filesystem", ("/dev/sdb1",))


def test_builtin_names_match_the_registry():
    from vigil.agents import BUILTIN_AGENTS
    from vigil.agents.registry import AGENTS

    assert set(AGENTS) == BUILTIN_AGENTS
