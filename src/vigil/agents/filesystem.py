"""Filesystem: mount a file system for the group, and unmount it whatever holds it.

heartbeat's `Filesystem::device::directory[::fstype[::options]]` (device may
also be `-Llabel`, `-Uuuid`, or a network `host:/path`). Start: refuse a
device already mounted elsewhere on this node (mounting it twice is how a
shared disk gets corrupted), fsck when configured, mount. Stop: unmount; when
busy, send SIGTERM to the processes using it, then SIGKILL, retrying. Status
comes from /proc/self/mountinfo.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from vigil.agents import mounts as mtab
from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus, bounded
from vigil.agents.options import AgentOptions, AgentPaths, FsckMode
from vigil.agents.script import run_agent_program
from vigil.log import event

log = logging.getLogger("vigil.agents.filesystem")

#: File systems that need no fsck before mounting (OCF Filesystem's list, run_fsck=auto).
JOURNALED = frozenset((
    "ext3", "ext4", "ext4dev", "reiserfs", "reiser4", "nss", "xfs", "jfs", "vfat", "fat",
    "nfs4", "nfs", "efs", "cifs", "smbfs", "ocfs2", "gfs2", "none", "lustre", "glusterfs",
    "ceph", "tmpfs", "overlay", "overlayfs", "zfs", "btrfs"))


class Filesystem(Agent):
    default_interval = 20.0
    default_timeout = 60.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        self.paths = paths or AgentPaths()
        if not 2 <= len(args) <= 4:
            raise AgentConfigError(
                "Filesystem takes device::directory[::fstype[::options]]", OcfStatus.ERR_ARGS)
        self.device = args[0]
        self.directory = os.path.normpath(args[1])
        self.fstype = args[2] if len(args) > 2 and args[2] else None
        self.mount_options = args[3] if len(args) > 3 and args[3] else None
        if not self.directory.startswith("/") or self.directory == "/":
            raise AgentConfigError(f"Filesystem: mount point {args[1]!r} must be an absolute "
                                   "path other than /", OcfStatus.ERR_CONFIGURED)

    # -- helpers ------------------------------------------------------------------------------
    def _mounts(self) -> list[mtab.Mount]:
        return mtab.read_mounts(self.paths.proc)

    async def _resolve_device(self, timeout: float) -> str:
        """`-Llabel`/`-Uuuid` (and LABEL=/UUID=) to a device node, as mount would."""
        kind = None
        if self.device.startswith(("-L", "-U")):
            kind, value = self.device[:2], self.device[2:]
        elif self.device.startswith(("LABEL=", "UUID=")):
            key, _, value = self.device.partition("=")
            kind = "-L" if key == "LABEL" else "-U"
        if kind is None:
            return self.device
        program = await run_agent_program(["blkid", kind, value], timeout, self.label, "blkid")
        path = program.output.strip().splitlines()[-1] if program.ok and program.output else ""
        return path or self.device

    def _fsck_needed(self) -> bool:
        mode = self.options.fsck
        if mode is FsckMode.NO:
            return False
        if mode is FsckMode.FORCE:
            return True
        return self.fstype not in JOURNALED if self.fstype else False

    # -- operations ----------------------------------------------------------------------------
    async def start(self, timeout: float) -> AgentResult:
        return await bounded(self._start(timeout), timeout, f"{self.label} start")

    async def _start(self, timeout: float) -> AgentResult:
        device = await self._resolve_device(timeout)
        number = mtab.device_number(device)
        mounts = self._mounts()
        here = mtab.mounted_at(mounts, self.directory)
        if here is not None:
            if (number and here.device == number) or here.source == device:
                return AgentResult(OcfStatus.SUCCESS, f"{device} already mounted on "
                                   f"{self.directory}")
            return AgentResult(OcfStatus.ERR_GENERIC, f"{self.directory} already has "
                               f"{here.source} mounted on it")
        if number is not None:
            elsewhere = mtab.mounts_of_device(mounts, number)
            if elsewhere:
                where = ", ".join(m.mountpoint for m in elsewhere)
                event(log, "filesystem.refused", level=logging.ERROR, device=device, at=where)
                return AgentResult(OcfStatus.ERR_GENERIC,
                                   f"{device} is already mounted on {where}: refusing to mount "
                                   "it a second time")
        elif ":" not in device and not os.path.exists(device):
            return AgentResult(OcfStatus.ERR_INSTALLED, f"no device {device}")
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        if self._fsck_needed():
            argv = ["fsck", "-p", *(["-t", self.fstype] if self.fstype else []), device]
            program = await run_agent_program(argv, timeout, self.label, "fsck")
            if program.timed_out or program.returncode is None or program.returncode >= 2:
                return AgentResult(OcfStatus.ERR_GENERIC, f"fsck of {device} failed "
                                   f"(exit {program.returncode}): {program.output.strip()[-200:]}")
        argv = ["mount"]
        if self.fstype:
            argv += ["-t", self.fstype]
        if self.mount_options:
            argv += ["-o", self.mount_options]
        argv += [device, self.directory]
        program = await run_agent_program(argv, timeout, self.label, "mount")
        if not program.ok:
            return AgentResult(OcfStatus.ERR_GENERIC, f"mount {device} on {self.directory} "
                               f"failed: {program.output.strip()[-200:]}")
        if mtab.mounted_at(self._mounts(), self.directory) is None:
            return AgentResult(OcfStatus.ERR_GENERIC,
                               f"{self.directory} is not mounted after mount")
        event(log, "filesystem.mounted", device=device, directory=self.directory)
        return AgentResult(OcfStatus.SUCCESS, f"{device} mounted on {self.directory}")

    async def stop(self, timeout: float) -> AgentResult:
        return await bounded(self._stop(timeout), timeout, f"{self.label} stop")

    async def _stop(self, timeout: float) -> AgentResult:
        grace = self.options.kill_grace
        tries = max(self.options.umount_retries, 1)
        last = ""
        for attempt in range(tries):
            mounts = self._mounts()
            here = mtab.mounted_at(mounts, self.directory)
            if here is None:
                return AgentResult(OcfStatus.SUCCESS, f"{self.directory} is not mounted")
            for inner in [*mtab.submounts(mounts, self.directory), here]:
                program = await run_agent_program(["umount", inner.mountpoint], timeout,
                                                  self.label, "umount")
                last = program.output.strip()
            if mtab.mounted_at(self._mounts(), self.directory) is None:
                event(log, "filesystem.unmounted", directory=self.directory)
                return AgentResult(OcfStatus.SUCCESS, f"{self.directory} unmounted")
            # Busy: the first half of the tries ask nicely, the rest kill.
            signum = signal.SIGTERM if attempt < (tries + 1) // 2 else signal.SIGKILL
            users = mtab.users_of(here.device, self.paths.proc)
            for pid in users:
                try:
                    os.kill(pid, signum)
                except (ProcessLookupError, PermissionError):
                    continue
            event(log, "filesystem.busy", level=logging.WARNING, directory=self.directory,
                  signal=signum.name, pids=",".join(map(str, users)) or "none")
            await self._wait_gone(users, grace)
        return AgentResult(OcfStatus.ERR_GENERIC,
                           f"cannot unmount {self.directory} after {tries} tries: {last[-200:]}")

    @staticmethod
    async def _wait_gone(pids: list[int], grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            if not any(_alive(pid) for pid in pids):
                return
            await asyncio.sleep(0.02)

    async def status(self, timeout: float) -> AgentResult:
        here = mtab.mounted_at(self._mounts(), self.directory)
        if here is None:
            return AgentResult(OcfStatus.NOT_RUNNING, f"{self.directory} is not mounted")
        return AgentResult(OcfStatus.SUCCESS, f"running: {here.source} on {self.directory}")

    async def monitor(self, timeout: float) -> AgentResult:
        result = await self.status(timeout)
        if not result.ok:
            return result
        try:
            await asyncio.wait_for(asyncio.to_thread(os.listdir, self.directory), timeout)
        except TimeoutError:
            return AgentResult(OcfStatus.ERR_GENERIC, f"{self.directory} hangs")
        except OSError as exc:
            return AgentResult(OcfStatus.ERR_GENERIC, f"{self.directory}: {exc.strerror}")
        return result


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
