"""One lab host: its own network, mount, UTS and PID namespaces.

Each host has an init process (PID 1 of its PID namespace) that owns the
host's namespaces and reaps orphans, as a machine's init does; everything run
in the host is entered through it with `nsenter`. Inside, `/etc` and `/var` are
overlays whose upper layers live in the lab's directory (each host writes its
own `/etc/ha.d`, `/var/lib/heartbeat`, `/var/lib/mysql`, logs, ... while seeing
the machine's installed files), `/run` is a fresh tmpfs at every boot, `/proc`
shows only the host's processes (so an init script's `killall` or
`start-stop-daemon --exec` never reaches another host), `/sys` shows the
host's own interfaces, and `uname -n` is the host's name.

PIDs: `LabProcess.pid` and `Host.pids()` are PIDs as the machine sees them (what
the test process can signal); a PID read from a file inside the host is the
host's own PID: translate it with `Host.outer_pid()` before signalling it from
outside, or signal it inside with `host.run(["kill", ...])`.

A crash kills the host's init, which takes every process of the host with it
(so the mount namespace and its tmpfs vanish), and deletes its network
namespace; a boot builds both again from the topology, like a machine after a
power cycle. The upper layers survive, like a disk.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.errors import VigilError
from vigil.kernel import namespaces
from vigil.lab import wallclock
from vigil.lab.topology import HostSpec

if TYPE_CHECKING:
    from vigil.lab.lab import Lab


class LabError(VigilError):
    """A lab operation failed (a command in a host, a namespace, a link)."""


#: Directories every boot creates in the host's fresh /run (heartbeat, DRBD,
#: resource-agents, MariaDB and nginx expect them, as their packages' tmpfiles do).
RUN_DIRECTORIES = (
    "lock/subsys",
    "heartbeat/ccm",
    "heartbeat/crm",
    "heartbeat/dopd",
    "heartbeat/rsctmp",
    "crm",
    "resource-agents",
    "vigil",
    "nginx",
    "netns",
)
#: Directories of /etc and /var the daemons write; created in the host's overlay.
PRIVATE_DIRECTORIES = (
    "/etc/ha.d",
    "/etc/vigil",
    "/var/lib/vigil",
    "/var/lib/heartbeat",
    "/var/log",
)


def launch_logged(argv: Sequence[str], log_path: Path,
                  env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start `argv` in its own session, its output appended to `log_path`.

    Returns the process and where its lines begin in the log (an earlier process of
    the same name appends to the same file).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log_offset = log.tell()
        popen = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return popen, log_offset


@dataclass
class LabProcess:
    """A long-lived process started in a host: its PID, log file and how to stop it.

    `pid` is the process itself as the machine sees it; `launcher` is the
    `nsenter` that entered the host's PID namespace for it and waits for it.
    """

    host: str
    name: str
    pid: int
    start_time: int | None
    argv: list[str]
    log: str
    popen: subprocess.Popen[bytes] | None = None
    launcher: int | None = None
    #: where this process's lines begin in the log (an earlier run of the same name appends
    #: to the same file: its lines are not this process's)
    log_offset: int = 0

    @classmethod
    def launched(cls, *, host: str, name: str, argv: Sequence[str], log: Path,
                 popen: subprocess.Popen[bytes], pid: int, log_offset: int) -> LabProcess:
        """The record of a process `launch_logged` started (`pid` may be its child)."""
        return cls(host=host, name=name, pid=pid, start_time=namespaces.process_start_time(pid),
                   argv=list(argv), log=str(log), popen=popen, launcher=popen.pid,
                   log_offset=log_offset)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "name": self.name,
            "pid": self.pid,
            "start_time": self.start_time,
            "argv": self.argv,
            "log": self.log,
            "launcher": self.launcher,
            "log_offset": self.log_offset,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabProcess:
        return cls(
            host=data["host"],
            name=data["name"],
            pid=data["pid"],
            start_time=data["start_time"],
            argv=list(data["argv"]),
            log=data["log"],
            launcher=data.get("launcher"),
            log_offset=int(data.get("log_offset", 0)),
        )

    def alive(self) -> bool:
        """True while this very process (not a later one with its PID) runs."""
        if self.popen is not None:
            self.popen.poll()  # collect the launcher once the process has ended
        return (
            self.start_time is not None
            and namespaces.process_start_time(self.pid) == self.start_time
            and not is_zombie(self.pid)
        )

    def signal(self, signum: int) -> None:
        """Signal the process and its group (the launcher's session, unless it left it)."""
        if not self.alive():
            return
        if self.launcher is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.launcher, signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> bool:
        """Wait for the process to end; True if it did within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(max(0.1, deadline - time.monotonic()))
        return True

    @property
    def returncode(self) -> int | None:
        """The exit status (known for processes this Python process started)."""
        return None if self.popen is None else self.popen.poll()

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status when known."""
        self.signal(signal.SIGTERM)
        if not self.wait(timeout):
            self.signal(signal.SIGKILL)
            self.wait(timeout)
        return self.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(5.0)

    def output(self) -> str:
        """What the process wrote to its log so far."""
        try:
            with open(self.log, "rb") as stream:
                stream.seek(self.log_offset)
                return stream.read().decode(errors="replace")
        except OSError:
            return ""


def is_zombie(pid: int) -> bool:
    """The process has ended and waits for its parent to collect it (or is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def children_of(pid: int) -> list[int]:
    """The PIDs of a process's children (its main thread's), none if it is gone."""
    try:
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


class Host:
    """A lab host. Run commands in it, spawn daemons, read and write its files."""

    def __init__(self, lab: Lab, spec: HostSpec):
        self.lab = lab
        self.spec = spec
        self.name = spec.name
        self.hostname = spec.hostname
        self.netns = f"{lab.run_id}-{spec.name}"
        self.holder_pid: int | None = None
        self.holder_start: int | None = None
        #: what every process started in the host gets in its environment
        self.environment: dict[str, str] = {}

    # -- paths -------------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        """The host's own directory in the lab (overlay layers)."""
        return self.lab.directory / "hosts" / self.name

    @property
    def clock_file(self) -> Path:
        return self.directory / "clock-offset"

    def allow_clock_steps(self) -> None:
        """Give the processes started in this host from now on a wall clock of their own
        (`step_clock`); processes that start others with a clean environment (resource
        agents) leave it behind, as they leave any preloaded library."""
        self.clock_file.parent.mkdir(parents=True, exist_ok=True)
        self.step_clock(0)
        self.environment.update({
            "LD_PRELOAD": str(wallclock.library(self.lab.directory)),
            wallclock.OFFSET_VARIABLE: str(self.clock_file),
        })

    @property
    def clock_steps_allowed(self) -> bool:
        return wallclock.OFFSET_VARIABLE in self.environment

    def step_clock(self, offset: float) -> None:
        """Set the host's wall clock `offset` seconds from the machine's (0: back in step)."""
        wallclock.write_offset(self.clock_file, offset)

    @property
    def netns_path(self) -> Path:
        return namespaces.named_netns_path(self.netns)

    def path(self, inside: str | os.PathLike[str]) -> Path:
        """A path of the host's file system, usable from outside the host."""
        self._require_up()
        return Path(f"/proc/{self.holder_pid}/root") / str(inside).lstrip("/")

    def write_file(self, inside: str, text: str, mode: int = 0o644) -> Path:
        """Write a file in the host (parents created), with the given mode.

        A symbolic link in the way is replaced, never followed: its target may be a
        file of the machine itself (/etc/ha.d/resource.d/ldirectord links to the
        shared /usr/sbin/ldirectord)."""
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(text)
        os.chmod(target, mode)
        return target

    def read_file(self, inside: str) -> str:
        return self.path(inside).read_text()

    # -- state ---------------------------------------------------------------------------
    def holder_alive(self) -> bool:
        """Whether the process that keeps the host's namespaces is the one we started."""
        return (
            self.holder_pid is not None
            and namespaces.process_start_time(self.holder_pid) == self.holder_start
        )

    def is_up(self) -> bool:
        return self.holder_alive() and self.netns_path.exists()

    def _require_up(self) -> None:
        if not self.is_up():
            raise LabError(f"host {self.name} is down (crashed or not booted)")

    def to_json(self) -> dict[str, Any]:
        return {
            "netns": self.netns,
            "holder_pid": self.holder_pid,
            "holder_start": self.holder_start,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.holder_pid = data.get("holder_pid")
        self.holder_start = data.get("holder_start")

    # -- running things --------------------------------------------------------------------
    def _enter_argv(self, argv: Sequence[str], cwd: str = "/") -> list[str]:
        self._require_up()
        return [
            "nsenter",
            f"--target={self.holder_pid}",
            "--net",
            "--mount",
            "--uts",
            "--pid",
            f"--wd={cwd}",
            "--",
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        check: bool = True,
        timeout: float = 60.0,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str = "/",
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the host and wait for it; a string is run by `sh -c`."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        full_env = {**os.environ, **self.environment, **(env or {})}
        with subprocess.Popen(
            self._enter_argv(argv, cwd),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                # The command is nsenter's child: end the whole group, not nsenter alone.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise LabError(
                    f"{self.name}: {shlex.join(argv)} did not finish within {timeout:g} s"
                ) from exc
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            raise LabError(
                f"{self.name}: {shlex.join(argv)} exited with {done.returncode}: {detail}"
            )
        return done

    def spawn(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str = "/",
    ) -> LabProcess:
        """Start a long-lived process in the host; the lab stops it at teardown."""
        name = name or Path(argv[0]).name
        log_path = self.lab.directory / "logs" / f"{self.name}.{name}.log"
        popen, log_offset = launch_logged(self._enter_argv(argv, cwd), log_path,
                                          env={**os.environ, **self.environment, **(env or {})})
        process = LabProcess.launched(host=self.name, name=name, argv=argv, log=log_path,
                                      popen=popen, pid=self._launched_child(popen),
                                      log_offset=log_offset)
        self.lab.track(process)
        return process

    def _launched_child(self, popen: subprocess.Popen[bytes]) -> int:
        """The PID of the process nsenter forked into the host's PID namespace."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            found = children_of(popen.pid)
            if found:
                return found[0]
            if popen.poll() is not None:
                break
            time.sleep(0.0005)
        why = (f"nsenter exited {popen.returncode}" if popen.returncode is not None
               else "no process in the host after 5 s")
        raise LabError(f"{self.name}: could not start {shlex.join(map(str, popen.args))} "
                       f"({why}; the host {'runs' if self.is_up() else 'is down'})")

    def sysctl(self, name: str, value: str | int) -> None:
        """Set a sysctl of the host's network namespace (never the machine's)."""
        self.run(["sysctl", "-q", "-w", f"{name}={value}"])

    def pids(self) -> list[int]:
        """Every process running in this host (its init included), as the machine numbers them."""
        if self.holder_alive():
            try:
                inode = namespaces.ns_inode(f"/proc/{self.holder_pid}/ns/pid")
                return namespaces.pids_in_namespace("pid", inode)
            except OSError:
                pass
        if not self.netns_path.exists():
            return []
        return namespaces.pids_in_namespace("net", namespaces.ns_inode(self.netns_path))

    def pid_map(self) -> dict[int, int]:
        """The host's own PIDs (what its pid files hold) -> the machine's PIDs."""
        mapping = {}
        for outer in self.pids():
            inner = namespaces.innermost_pid(outer)
            if inner is not None:
                mapping[inner] = outer
        return mapping

    def outer_pid(self, inner: int) -> int:
        """Translate a PID read inside the host into one the test process can signal."""
        try:
            return self.pid_map()[inner]
        except KeyError:
            raise LabError(f"host {self.name} has no process {inner}") from None

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run a block with the calling thread in the host's network namespace."""
        self._require_up()
        with namespaces.entered_netns(self.netns_path):
            yield

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket that lives in the host's network namespace (for probes from tests)."""
        with self.entered():
            return socket.socket(family, kind)

    def connect(self, address: str, port: int, timeout: float = 2.0) -> socket.socket:
        """A TCP connection opened from this host."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self.socket(family)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError:
            sock.close()
            raise
        return sock

    def address(self, segment: str = "lan", family: int = 4) -> str:
        """The host's own address on a segment (without prefix length)."""
        for cidr in self.spec.port(segment).addresses:
            ip = cidr.split("/")[0]
            if (":" in ip) == (family == 6):
                return ip
        raise LabError(f"host {self.name} has no IPv{family} address on {segment}")

    def __repr__(self) -> str:
        return f"<Host {self.name} ({self.hostname}) netns={self.netns}>"
