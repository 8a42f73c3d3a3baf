"""The lab's power-off finds the FUSE connections a host mounted, and only those."""

from __future__ import annotations

from vigil.lab.lab import _fuse_mounts

MOUNTINFO = """\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:38 / /run/vigil/volume/r0/fuse rw,nosuid,nodev shared:20 - fuse /dev/fuse rw,user_id=0
41 22 0:45 / /mnt/sshfs rw,nosuid,nodev shared:21 - fuse.sshfs host:/ rw,user_id=0
42 22 0:46 / /sys/fs/fuse/connections rw,relatime shared:22 - fusectl fusectl rw
43 22 7:1 / /var/lib/mysql rw,relatime shared:23 - ext4 /dev/drbd1 rw
44 22 8:17 / /media/usb rw,relatime shared:24 - fuseblk /dev/sdb1 rw
"""


def test_fuse_mounts_are_the_anonymous_fuse_devices():
    # fusectl is no connection; fuseblk sits on a real block device (major 8)
    assert _fuse_mounts(MOUNTINFO) == {38, 45}


def test_no_fuse_mounts():
    assert _fuse_mounts("22 1 252:1 / / rw shared:1 - ext4 /dev/vda1 rw\n") == set()


def test_a_mount_namespace_inode_given_to_a_newer_host_does_not_make_its_processes_victims():
    """The kernel reuses a dead namespace's inode number: a host booting in another lab
    while this one's host is waited for may get it. Only processes older than the
    power-off are the dead host's."""
    import os
    import subprocess
    import time

    from vigil.kernel import namespaces
    from vigil.lab.lab import Plug

    before = namespaces.clock_ticks_now() - 10
    newer = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                              "sleep", "60"])
    try:
        inode, deadline = None, time.monotonic() + 10
        while inode is None and time.monotonic() < deadline:  # until unshare made it
            ns = os.stat(f"/proc/{newer.pid}/ns/mnt").st_ino
            if ns != os.stat("/proc/self/ns/mnt").st_ino:
                inode = ns
            time.sleep(0.01)
        assert inode is not None
        assert Plug(inode, [], before).older_in_mount_namespace() == []
        after = namespaces.clock_ticks_now() + 1
        assert Plug(inode, [], after).older_in_mount_namespace() == [newer.pid]
    finally:
        newer.kill()
        newer.wait()
