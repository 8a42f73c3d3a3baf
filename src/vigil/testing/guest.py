"""Run a command inside a throw-away QEMU guest with Debian's stock 6.1 kernel.

This machine's kernel has neither IPVS nor DRBD; Debian's kernel has both as
modules. The guest boots that kernel under software emulation (TCG: the
machine's KVM cannot run a stock kernel), with the machine's own root file
system shared read-only over 9p plus a tmpfs overlay for writes, so the host's
Python, this checkout, ipvsadm, ldirectord and drbdadm all work inside. A
boot takes about 6 s; Python runs about ten times slower in there, so keep
timing-sensitive logic on the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import EnvironmentProblem

CACHE = Path(os.environ.get("VIGIL_GUEST_CACHE", "/var/cache/vigil/guest"))
KERNEL_PACKAGE_PATTERN = r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$"
#: Modules the initramfs loads to mount the shared root.
EARLY_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
HOST_PROGRAMS = {"qemu-system-x86_64": "qemu-system-x86", "depmod": "kmod"}
BUSYBOX = Path("/bin/busybox")
BIOS = Path("/usr/share/qemu/qboot.rom")


@dataclass(frozen=True)
class GuestResult:
    returncode: int
    output: str
    wall_seconds: float
    console: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class GuestKernel:
    version: str
    image: Path
    modules: Path  # .../lib/modules/VERSION
    initramfs: Path


def guest_unavailable_reason() -> str | None:
    """Why a guest cannot run here (None when it can): used by tests to skip clearly."""
    for program, package in HOST_PROGRAMS.items():
        if shutil.which(program) is None:
            return f"{program} is missing (Debian package {package})"
    if not _is_static(BUSYBOX):
        return "a static /bin/busybox is missing (Debian package busybox-static)"
    if not BIOS.exists():
        return f"{BIOS} is missing (Debian package qemu-system-data)"
    return None


def _is_static(program: Path) -> bool:
    """An ELF file without a PT_INTERP program header needs no dynamic loader."""
    try:
        data = program.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit ELF only
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    for index in range(phnum):
        offset = phoff + index * phentsize
        if int.from_bytes(data[offset : offset + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def _newest_kernel_package() -> str:
    done = subprocess.run(
        ["apt-cache", "search", "--names-only", KERNEL_PACKAGE_PATTERN],
        capture_output=True, text=True,
    )
    names = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    if not names:
        raise EnvironmentProblem(
            "no linux-image-6.1.0-*-amd64-unsigned in the apt index (run apt-get update)"
        )
    return max(names, key=lambda n: [int(p) if p.isdigit() else p for p in n.split("-")])


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_kernel() -> GuestKernel:
    """Fetch and unpack Debian's kernel once (cached), and build the initramfs."""
    with _cache_lock():
        version_file = CACHE / "kernel-version"
        root = CACHE / "root"
        if not version_file.exists():
            package = _newest_kernel_package()
            download = CACHE / "download"
            shutil.rmtree(download, ignore_errors=True)
            download.mkdir()
            subprocess.run(["apt-get", "download", "-q", package], cwd=download,
                           check=True, capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
            deb = next(download.glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            shutil.rmtree(download)
            version = next((root / "lib" / "modules").iterdir()).name
            subprocess.run(["depmod", "-b", str(root), version], check=True)
            version_file.write_text(version)
        version = version_file.read_text().strip()
        modules = root / "lib" / "modules" / version
        initramfs = CACHE / f"initramfs-{version}.cpio.gz"
        if not initramfs.exists():
            initramfs.write_bytes(_build_initramfs(modules))
        return GuestKernel(version, root / "boot" / f"vmlinuz-{version}", modules, initramfs)


def _module_order(modules: Path, wanted: Iterable[str]) -> list[Path]:
    """Module files to insmod, dependencies first (from modules.dep)."""
    dependencies: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        path, _, deps = line.partition(":")
        dependencies[path] = deps.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[name] = path
    ordered: list[str] = []

    def visit(path: str) -> None:
        for dep in dependencies.get(path, []):
            visit(dep)
        if path not in ordered:
            ordered.append(path)

    for name in wanted:
        visit(by_name[name])
    return [modules / path for path in ordered]


def _init_script(version: str) -> str:
    return f"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in /mods/*.ko; do insmod $m || echo "insmod $m failed"; done
o9p=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $o9p,ro,cache=loose hostroot /lower || {{ echo 9p-root-failed; poweroff -f; }}
mount -t 9p -o $o9p,ro,cache=loose kmods /kmods
mount -t 9p -o $o9p,cache=none xfer /xfer
mount -t tmpfs -o size=75% tmpfs /upper; mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot ||
  {{ echo overlay-failed; poweroff -f; }}
for d in proc sys dev; do mount --move /$d /newroot/$d; done
mkdir -p /newroot/dev/pts; mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/tmp; mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/usr/lib/modules/{version} /newroot/xfer
mount --bind /kmods /newroot/usr/lib/modules/{version}
mount --move /xfer /newroot/xfer
# switch_root, not chroot: the kernel's request_module runs /sbin/modprobe in PID 1's root.
exec switch_root /newroot /bin/bash /xfer/.stage2
"""


def _build_initramfs(modules: Path) -> bytes:
    """A newc cpio archive: busybox, the early modules and /init, gzip-compressed."""
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "lower", "mods", "kmods", "xfer",
                      "upper", "newroot"):
        archive.directory(directory)
    archive.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    for applet in ("sh", "mount", "umount", "insmod", "mkdir", "switch_root", "poweroff",
                   "echo", "cat", "sleep", "ln"):
        archive.symlink(f"bin/{applet}", "busybox")
    for index, module in enumerate(_module_order(modules, EARLY_MODULES), start=10):
        archive.file(f"mods/{index}-{module.name}", module.read_bytes(), 0o644)
    archive.file("init", _init_script(modules.name).encode(), 0o755)
    return gzip.compress(archive.finish(), compresslevel=1)


class _Cpio:
    """The 'newc' cpio format, which the kernel unpacks as an initramfs."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.inode = 1

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{value:08x}"
            for value in (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0,
                          len(encoded), 0)
        )
        self.inode += 1
        self.buffer.write(header.encode() + encoded)
        self._pad()
        self.buffer.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buffer.write(b"\0" * (-self.buffer.tell() % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755, b"")

    def file(self, name: str, data: bytes, permissions: int) -> None:
        self._entry(name, 0o100000 | permissions, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"")
        return self.buffer.getvalue()


STAGE2 = """export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
{reveal_tmp}mkdir -p /run/lock /run/netns
hostname {hostname}
ip link set lo up
cd /xfer
bash /xfer/command.sh > /xfer/.out 2>&1
echo $? > /xfer/.rc
sync
echo o > /proc/sysrq-trigger
sleep 10
"""


def _reveal_tmp() -> str:
    """The guest's /tmp is a fresh tmpfs over the host's; a checkout or venv living
    under the host's /tmp (a CI clone) must stay visible: then the tmpfs goes, and
    the guest's /tmp is the host's seen through the root overlay (writes stay in
    the guest)."""
    tmp = Path("/tmp").resolve()
    needed = (Path(sys.prefix).resolve(), Path(__file__).resolve())
    return "umount /tmp\n" if any(tmp in path.parents for path in needed) else ""


def section(output: str, name: str) -> list[str]:
    """The lines a guest script printed after its `=== NAME` marker, up to the next one
    (the guest tests print each observation under such a marker)."""
    match = re.search(rf"^=== {re.escape(name)}\n(.*?)(?=^=== |\Z)", output, re.M | re.S)
    if match is None:
        raise AssertionError(f"no section {name!r} in:\n{output[-3000:]}")
    return match.group(1).rstrip("\n").splitlines()


def run_in_guest(
    command: str,
    timeout: float = 300.0,
    memory_mib: int = 1024,
    cpus: int = 1,
    hostname: str = "guest1",
    environment: dict[str, str] | None = None,
) -> GuestResult:
    """Boot a guest, run `command` in bash as root with cwd /xfer, power off.

    `/xfer` inside is a fresh host directory shared read-write (files the
    command writes there are gone afterwards; print what you need). The
    checkout and its venv are visible at their host paths.
    """
    reason = guest_unavailable_reason()
    if reason:
        raise EnvironmentProblem(f"cannot run a guest: {reason}")
    kernel = ensure_kernel()
    exports = "".join(
        f"export {key}={shlex.quote(value)}\n" for key, value in (environment or {}).items()
    )
    with tempfile.TemporaryDirectory(prefix="vigil-guest.") as xfer_dir:
        xfer = Path(xfer_dir)
        (xfer / "command.sh").write_text(exports + command + "\n")
        (xfer / ".stage2").write_text(STAGE2.format(hostname=hostname,
                                                    reveal_tmp=_reveal_tmp()))
        argv = [
            "qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-M", "pc",
            "-m", str(memory_mib), "-smp", str(cpus), "-nodefaults", "-no-user-config",
            "-nographic", "-serial", "stdio", "-bios", str(BIOS),
            "-kernel", str(kernel.image), "-initrd", str(kernel.initramfs),
            "-append", "console=ttyS0 quiet panic=-1 rootwait", "-no-reboot",
            "-fsdev", "local,id=f0,path=/,security_model=passthrough,readonly=on,"
            "multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=f0,mount_tag=hostroot",
            "-fsdev", f"local,id=f1,path={kernel.modules},security_model=passthrough,"
            "readonly=on",
            "-device", "virtio-9p-pci,fsdev=f1,mount_tag=kmods",
            "-fsdev", f"local,id=f2,path={xfer},security_model=passthrough",
            "-device", "virtio-9p-pci,fsdev=f2,mount_tag=xfer",
        ]
        started = time.monotonic()
        console = ""
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  errors="replace", stdin=subprocess.DEVNULL)
            console = done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            console = exc.stdout if isinstance(exc.stdout, str) else ""
        wall = time.monotonic() - started
        output = (xfer / ".out").read_text(errors="replace") if (xfer / ".out").exists() else ""
        rc_file = xfer / ".rc"
        returncode = int(rc_file.read_text().strip()) if rc_file.exists() else 125
        return GuestResult(returncode, output, wall, console)


def early_guest_output(name: str, run: Callable[[], GuestResult]) -> str:
    """What a test module's guest run printed: the run the suite started early under
    `name` (`vigil.testing.early.GUEST_RUNS`), or `run` now; it must have exited 0."""
    import pytest

    from vigil.testing.early import GUEST_RUNS

    reason = guest_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no QEMU guest here: {reason}")
    result = GUEST_RUNS.result(name, run)
    assert result.returncode == 0, result.output[-4000:] + result.console[-2000:]
    print(f"guest run: {result.wall_seconds:.1f} s")
    return result.output
