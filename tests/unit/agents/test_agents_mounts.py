"""Reading /proc/self/mountinfo."""

from vigil.agents.mounts import mounted_at, mounts_of_device, parse_mountinfo, submounts

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 7:3 / /srv/my\\040data rw,relatime - ext4 /dev/loop3 rw,errors=remount-ro
41 40 0:50 / /srv/my\\040data/tmp rw - tmpfs tmpfs rw
42 22 7:3 /sub /mnt/again rw - ext4 /dev/loop3 rw
"""


def test_mountinfo_fields_and_escapes():
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 4
    data = mounted_at(mounts, "/srv/my data")
    assert data.device == (7, 3) and data.fstype == "ext4" and data.source == "/dev/loop3"
    assert [m.mountpoint for m in mounts_of_device(mounts, (7, 3))] == ["/srv/my data",
                                                                        "/mnt/again"]
    assert [m.mountpoint for m in submounts(mounts, "/srv/my data")] == ["/srv/my data/tmp"]
    assert mounted_at(mounts, "/srv") is None
