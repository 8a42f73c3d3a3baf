"""Filesystem in a lab host: ext4 on a loop device, users killed on stop, double mounts refused."""

import secrets
import subprocess
import sys

import pytest

from vigil.testing import wait_until

pytestmark = pytest.mark.lab

VIGIL = [sys.executable, "-m", "vigil"]
#: The image's ext4 label, this run's own: a lookup by label must not find another run's disk.
LABEL = f"vigil{secrets.token_hex(4)}"


@pytest.fixture
def loop_device(tmp_path):
    """An ext4 image on a loop device, detached again whatever happens."""
    image = tmp_path / "disk.img"
    with open(image, "wb") as disk:
        disk.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", LABEL, str(image)], check=True)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                            capture_output=True, text=True).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], check=False, capture_output=True)


def resource(host, *args, check=True):
    return host.run([*VIGIL, "resource", *args, "--timeout", "20"], check=check, timeout=60)


def mounted(host, directory):
    mountinfo = host.run(["cat", "/proc/self/mountinfo"]).stdout
    return any(line.split()[4] == str(directory) for line in mountinfo.splitlines())


@pytest.fixture
def data(tmp_path):
    """The mount point: a fresh directory (mounts stay inside the host's namespace)."""
    return str(tmp_path / "data")


def test_mount_unmount_and_status_from_mountinfo(pair_lab, loop_device, data):
    server5, server6 = pair_lab.host("server5"), pair_lab.host("server6")
    spec = f"Filesystem::{loop_device}::{data}::ext4"
    assert resource(server5, "status", spec, check=False).returncode == 7
    resource(server5, "start", spec)
    assert mounted(server5, data)
    assert not mounted(server6, data)  # mounts are per host
    server5.run(f"echo hello > {data}/file")
    assert resource(server5, "status", spec).returncode == 0
    assert resource(server5, "monitor", spec).returncode == 0
    resource(server5, "stop", spec)
    assert not mounted(server5, data)
    assert resource(server5, "status", spec, check=False).returncode == 7
    # the data is on the device: mounted again, the file is there
    resource(server5, "start", f"Filesystem::-L{LABEL}::{data}::ext4")
    assert server5.run(["cat", f"{data}/file"]).stdout == "hello\n"
    resource(server5, "stop", spec)


def test_processes_holding_the_mount_are_killed_on_stop(pair_lab, loop_device, data):
    server5 = pair_lab.host("server5")
    spec = f"Filesystem::{loop_device}::{data}::ext4"
    resource(server5, "start", spec)
    holder = server5.spawn(["sh", "-c", f"cd {data} && exec sleep 600"], name="cwd-holder")
    stubborn = server5.spawn(["sh", "-c", f"trap '' TERM; exec 3>{data}/log; "
                              "while :; do sleep 1; done"], name="fd-holder")
    wait_until(lambda: server5.run(f"ls -l /proc/*/fd 2>/dev/null | grep -c {data}/log",
                                   check=False).stdout.strip() not in ("", "0"), 5,
               "the file to be held open")
    done = resource(server5, "stop", spec)
    assert done.returncode == 0
    assert not mounted(server5, data)
    assert not holder.alive() and not stubborn.alive()


def test_a_device_mounted_elsewhere_is_refused(pair_lab, loop_device, data):
    server5 = pair_lab.host("server5")
    server5.run(["mkdir", "-p", "/mnt/other"])
    server5.run(["mount", loop_device, "/mnt/other"])
    refused = resource(server5, "start", f"Filesystem::{loop_device}::{data}::ext4",
                       check=False)
    assert refused.returncode == 1
    assert "already mounted on /mnt/other" in refused.stdout
    assert not mounted(server5, data)
    server5.run(["umount", "/mnt/other"])
