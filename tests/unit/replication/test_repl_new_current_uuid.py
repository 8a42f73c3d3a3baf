"""new-current-uuid's generations and refusals, `-d` plans, and the verbs vigil lacks."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from vigil.cli import volume as volume_cli  # imported before the tests fake uname
from vigil.cli import volume_dryrun
from vigil.cli.main import main
from vigil.lab.seed import lab_file
from vigil.replication import config, messages
from vigil.replication.generations import Generations, Side, Sync, compare, plan_new_current
from vigil.replication.wire import ProtocolError

FRESH = Generations()


def test_new_current_uuid_moves_current_to_bitmap_and_bitmap_to_history():
    g = Generations(0xA, 0xB, (0xC, 0xD))
    assert g.new_current_uuid(0xE) == Generations(0xE, 0xA, (0xB, 0xC))
    # no bitmap generation: history stays
    assert Generations(0xA, 0, (0xC, 0xD)).new_current_uuid(0xE) == \
        Generations(0xE, 0xA, (0xC, 0xD))
    assert FRESH.new_current_uuid(0xE) == Generations(0xE, 0, (0, 0))
    with pytest.raises(ValueError):
        g.new_current_uuid(0)


def test_after_a_new_current_uuid_on_the_primary_the_peer_resyncs_from_its_bitmap():
    """DRBD's use without --clear-bitmap: the peer's current is now the bitmap's base."""
    peer = Generations(0xA, 0, (0, 0))
    mine = peer.new_current_uuid(0xE)
    assert compare(Side(mine), Side(peer), True).sync is Sync.SOURCE_BITMAP
    assert compare(Side(peer), Side(mine), False).sync is Sync.TARGET_BITMAP


def test_skipping_the_initial_sync_leaves_both_sides_equal():
    mine = Generations(0xE, 0, (0, 0))
    theirs = Generations(0xE, 0, (0, 0))
    assert compare(Side(mine), Side(theirs), True).sync is Sync.NONE


def test_plan_disconnected_always_allowed():
    for clear in (False, True):
        plan = plan_new_current(False, False, Generations(5, 0, (0, 0)), None, clear)
        assert not plan.refusal and not plan.skip_initial_sync


def test_plan_skip_initial_sync_only_on_two_fresh_established_disks():
    assert plan_new_current(True, True, FRESH, FRESH, True).skip_initial_sync
    used = Generations(7, 0, (0, 0))
    for connected_case in [
        (True, FRESH, FRESH, False),   # no --clear-bitmap
        (True, used, FRESH, True),     # this node has data
        (True, FRESH, used, True),     # the peer has data
        (False, FRESH, FRESH, True),   # resync or verify under way
        (True, FRESH, None, True),     # the peer's generations unknown
    ]:
        established, mine, peer, clear = connected_case
        plan = plan_new_current(True, established, mine, peer, clear)
        assert plan.refusal and not plan.skip_initial_sync, connected_case


def test_the_skip_field_is_checked():
    assert messages.skip_initial_sync({"role": "Secondary"}) is None
    assert messages.skip_initial_sync({"skip_initial_sync": 0xE}) == 0xE
    for value in (0, -1, 2**64, True, "14", 1.5, None, [1]):
        with pytest.raises(ProtocolError):
            messages.skip_initial_sync({"skip_initial_sync": value})


@pytest.fixture
def seed_res(tmp_path, monkeypatch):
    path = tmp_path / "drbd.conf"
    path.write_text(lab_file("drbd-mysqldata.res").replace("/dev/vdb", "/srv/disk.img"))
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"nodename": "server5.example.com"}))
    return path


def test_dry_run_plans_name_the_actions(seed_res):
    cfg = config.load("mysqldata", seed_res, "server5.example.com")
    up = volume_dryrun.plan("up", cfg, config_path="/etc/drbd.conf")
    assert up[0].endswith("vigil.replication.daemon mysqldata -c /etc/drbd.conf")
    assert "/srv/disk.img" in up[1] and "/dev/drbd1" in up[2]
    assert up[3] == "mysqldata: connect to server6.example.com at 198.51.100.6:7789"
    assert len(volume_dryrun.plan("up", cfg, standalone=True)) == 3
    assert volume_dryrun.plan("new-current-uuid", cfg, clear_bitmap=True)[0].endswith(
        "control.sock: new-current-uuid --clear-bitmap")
    assert volume_dryrun.plan("primary", cfg, force=True)[0].endswith("primary --force")
    assert volume_dryrun.plan("detach", cfg)[0].endswith("control.sock: detach")
    for verb in ("create-md", "down", "status", "wait-connect", "become-primary", "resize",
                 "attach", "adjust", "connect", "outdate"):
        assert volume_dryrun.plan(verb, cfg)
    with pytest.raises(ValueError):
        volume_dryrun.plan("frobnicate", cfg)


def test_every_verb_has_a_dry_run_plan(seed_res):
    cfg = config.load("mysqldata", seed_res, "server5.example.com")
    for verb in volume_cli.VERBS:
        assert volume_dryrun.plan(verb, cfg), verb


@pytest.mark.parametrize("argv", [
    ["-d", "up", "mysqldata"], ["--dry-run", "down", "all"], ["create-md", "-d", "all"],
    ["-d", "new-current-uuid", "--clear-bitmap", "all"], ["-d", "detach", "mysqldata"],
    ["-d", "wait-connect", "all"],
])
def test_dry_run_changes_nothing_and_exits_0(seed_res, capsys, argv):
    # nothing is up here: without -d these would fail (10) or act
    assert main(["volume", "-c", str(seed_res), *argv]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mysqldata: ")
    assert not (seed_res.parent / "disk.img").exists()


def test_new_verbs_when_not_up_exit_10(seed_res, capsys):
    for argv in (["new-current-uuid", "mysqldata"], ["new-current-uuid", "--clear-bitmap", "all"],
                 ["detach", "mysqldata"], ["attach", "all"]):
        assert main(["volume", "-c", str(seed_res), *argv]) == 10, argv


# ---------------------------------------------------------------- the node, without a network
class FakeSession:
    """What `Node` uses of an established session: the peer's PARAMS and `send`."""

    def __init__(self, peer_generations: list[int]):
        self.peer = {"generations": peer_generations}
        self.sent: list = []
        self.closed = False

    def send(self, message) -> None:
        self.sent.append(message)


@pytest.fixture
def make_node(tmp_path):
    from vigil.replication.blockstore import BackingStore, MetadataStore, create_md
    from vigil.replication.node import Node

    opened = []

    def make(name: str = "a") -> Node:
        disk = tmp_path / f"{name}.img"
        disk.write_bytes(b"")
        os.truncate(disk, 16 << 20)
        text = lab_file("drbd-mysqldata.res").replace("/dev/vdb", str(disk))
        (tmp_path / f"{name}.conf").write_text(text)
        cfg = config.load("mysqldata", tmp_path / f"{name}.conf", "server5.example.com")
        create_md(str(disk))
        backing = BackingStore(str(disk))
        md = MetadataStore.open(backing, "internal")
        opened.append((backing, md))
        ids = iter(range(0x100, 0x200))
        return Node(cfg, backing, md, hostname="server5.example.com",
                    fresh_id=lambda: next(ids))

    yield make
    for backing, md in opened:
        md.close()
        backing.close()


def connected(node, peer_generations: list[int]):
    from vigil.replication.states import Conn, Repl
    session = FakeSession(peer_generations)
    node.session = session
    node.conn, node.repl = Conn.CONNECTED, Repl.ESTABLISHED
    return session


def test_node_skips_the_initial_sync_and_tells_the_peer(make_node):
    from vigil.replication.states import Disk
    node = make_node()
    session = connected(node, [0, 0, 0, 0])
    assert node.disk is Disk.INCONSISTENT
    assert "initial sync skipped" in node.new_current_uuid(clear_bitmap=True)
    assert node.disk is Disk.UP_TO_DATE and node.peer_disk is Disk.UP_TO_DATE
    assert node.sb.generations == Generations(0x100, 0, (0, 0))
    assert node.md.read_superblock().generations.current == 0x100  # on disk too
    (message,) = session.sent
    assert message.fields["skip_initial_sync"] == 0x100
    assert message.fields["disk"] == "UpToDate"


def test_node_refuses_while_connected_with_exit_10(make_node):
    from vigil.replication.states import Repl, SetupRefused
    node = make_node()
    session = connected(node, [0, 0, 0, 0])
    with pytest.raises(SetupRefused) as refused:
        node.new_current_uuid(clear_bitmap=False)
    assert refused.value.exit_code == 10
    connected(node, [9, 0, 0, 0])  # the peer has data
    with pytest.raises(SetupRefused):
        node.new_current_uuid(clear_bitmap=True)
    node.repl = Repl.VERIFY_S
    with pytest.raises(SetupRefused):
        node.new_current_uuid(clear_bitmap=True)
    assert node.sb.generations == Generations() and not session.sent


def test_node_disconnected_rotates_and_clears_only_when_asked(make_node):
    from vigil.replication.metadata import MdFlag
    from vigil.replication.states import Disk
    node = make_node()
    node._write_sb(replace(node.sb.with_flag(MdFlag.CONSISTENT),
                           generations=Generations(0xA, 0xB, (0xC, 0))))
    node.bitmap.set_range(0, 3)
    node.new_current_uuid()
    assert node.sb.generations == Generations(0x100, 0xA, (0xB, 0xC))
    assert node.bitmap.count == 3 and node.disk is Disk.CONSISTENT
    node.new_current_uuid(clear_bitmap=True)
    assert node.sb.generations == Generations(0x101, 0x100, (0xA, 0xB))
    assert node.bitmap.count == 0 and node.md.read_bitmap().count == 0
    assert node.disk is Disk.CONSISTENT


def test_node_takes_the_peers_generation_only_when_fresh(make_node):
    from vigil.replication.states import Disk, Repl, Role
    fresh = make_node("fresh")
    session = connected(fresh, [0, 0, 0, 0])
    fresh._peer_state({"skip_initial_sync": 0x77, "role": "Secondary", "disk": "UpToDate"})
    assert fresh.sb.generations.current == 0x77 and fresh.disk is Disk.UP_TO_DATE
    assert fresh.peer_disk is Disk.UP_TO_DATE
    assert session.sent[-1].fields == {"role": "Secondary", "disk": "UpToDate"}

    # with data of its own, as primary, or while syncing: refused, the truth said back
    for setup in ("data", "primary", "syncing"):
        node = make_node(setup)
        session = connected(node, [0, 0, 0, 0])
        if setup == "data":
            node.sb = replace(node.sb, generations=Generations(5, 0, (0, 0)))
        elif setup == "primary":
            node.role = Role.PRIMARY
        else:
            node.repl = Repl.SYNC_TARGET
        before = node.sb.generations
        node._peer_state({"skip_initial_sync": 0x77})
        assert node.sb.generations == before, setup
        assert node.disk is Disk.INCONSISTENT, setup
        assert session.sent[-1].fields["disk"] == "Inconsistent", setup


@pytest.mark.parametrize("argv, wanted", [
    (["volume", "--", "--clear-bitmap", "new-current-uuid", "r0"],
     ["volume", "new-current-uuid", "--clear-bitmap", "r0"]),
    (["volume", "-c", "x.conf", "--", "--force", "primary", "all"],
     ["volume", "-c", "x.conf", "primary", "--force", "all"]),
    (["--debug", "volume", "-d", "--", "--clear-bitmap", "new-current-uuid", "r0"],
     ["--debug", "volume", "-d", "new-current-uuid", "--clear-bitmap", "r0"]),
    (["volume", "status", "--", "r0"], ["volume", "status", "--", "r0"]),
    (["volume", "--", "r0"], ["volume", "--", "r0"]),
    (["heartbeat", "--", "volume", "--", "--x", "up"], ["heartbeat", "--", "volume", "--",
                                                          "--x", "up"]),
])
def test_drbdadm_backend_options_before_the_verb(argv, wanted):
    assert volume_cli.backend_options_after_verb(argv) == wanted


def test_drbdadm_84_syntax_reaches_the_verb(seed_res, capsys):
    argv = ["volume", "-c", str(seed_res), "-d", "--", "--clear-bitmap", "new-current-uuid",
            "mysqldata"]
    assert main(argv) == 0
    assert "new-current-uuid --clear-bitmap" in capsys.readouterr().out
