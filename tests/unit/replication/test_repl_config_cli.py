"""The resource file as the volume sees it, and the CLI's drbdadm-compatible answers."""

from __future__ import annotations

import pytest

from vigil.cli.main import main
from vigil.cli.volume import format_status
from vigil.errors import ConfigError, UsageError
from vigil.lab.seed import lab_file
from vigil.replication import config
from vigil.replication.completion import Protocol


@pytest.fixture
def seed_res(tmp_path):
    path = tmp_path / "drbd.conf"
    path.write_text(lab_file("drbd-mysqldata.res").replace("/dev/vdb", "/srv/disk.img"))
    return path


def test_the_seed_resource_for_each_host(seed_res):
    five = config.load("mysqldata", seed_res, "server5.example.com")
    assert five.protocol is Protocol.C
    assert (five.local.address, five.local.port, five.peer.address) == (
        "198.51.100.5", 7789, "198.51.100.6")
    assert five.local.device == "/dev/drbd1" and five.local.disk == "/srv/disk.img"
    assert five.local.internal_metadata
    assert five.i_connect  # the lower address connects, the other accepts
    six = config.load("mysqldata", seed_res, "server6.example.com")
    assert not six.i_connect and six.peer.host == "server5.example.com"
    # DRBD 8.4's defaults where the file says nothing.
    assert five.link.ping_int == 10 and five.link.ping_timeout == 0.5
    assert five.policies.after_sb_0pri == "disconnect"


def test_options_and_errors(tmp_path):
    path = tmp_path / "r.res"
    path.write_text("""resource r {
      protocol A;
      net { shared-secret "x"; after-sb-0pri discard-zero-changes; ping-timeout 20; }
      disk { c-max-rate 200M; c-fill-target 8M; fencing resource-only; }
      handlers { fence-peer "/bin/true"; }
      on a { device /dev/drbd7; disk /d; address 10.9.9.1:7000; meta-disk /md[2]; }
      on b { device /dev/drbd7; disk /d; address 10.9.9.2:7000; meta-disk /md[2]; }
    }""")
    cfg = config.load("r", path, "a")
    assert cfg.protocol is Protocol.A and cfg.shared_secret == "x"
    assert cfg.policies.after_sb_0pri == "discard-zero-changes"
    assert cfg.link.ping_timeout == 2.0
    assert cfg.rate.c_max_rate == 200 << 20 and cfg.rate.c_fill_target == 8 << 20
    assert (cfg.local.meta_disk, cfg.local.meta_index) == ("/md", 2)
    assert cfg.fencing == "resource-only" and cfg.handlers["fence-peer"] == "/bin/true"
    with pytest.raises(UsageError, match="not defined"):
        config.load("nope", path, "a")
    with pytest.raises(UsageError, match="no 'on c'"):
        config.load("r", path, "c")
    path.write_text("resource r { on a { device /dev/drbd1 }")
    with pytest.raises(ConfigError):
        config.load("r", path, "a")


def test_cli_exit_codes_when_not_up(seed_res, capsys, monkeypatch):
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"nodename": "server5.example.com"}))
    assert main(["volume", "-c", str(seed_res), "role", "mysqldata"]) == 0
    assert capsys.readouterr().out.strip() == "Unconfigured"  # what drbddisk reads
    assert main(["volume", "-c", str(seed_res), "status", "mysqldata"]) == 10
    assert main(["volume", "-c", str(seed_res), "primary", "mysqldata"]) == 10
    assert main(["volume", "-c", str(seed_res), "status", "other"]) == 10


def test_status_text_shows_progress_rate_and_eta():
    text = format_status({
        "name": "r0", "role": "Primary", "peer_role": "Secondary", "connection": "Connected",
        "replication": "SyncSource", "disk": "UpToDate", "peer_disk": "Inconsistent",
        "protocol": "C", "size": 1 << 30, "out_of_sync": 512 << 20, "device": "/dev/drbd1",
        "loop": "/dev/loop3", "split_brain": "", "reason": "",
        "sync": {"percent": 50.0, "total_bytes": 1 << 30, "left_bytes": 512 << 20,
                 "rate": 100 << 20, "eta": 5.12}})
    assert "replication:SyncSource" in text and "done:50.0%" in text
    assert "rate:100.0 MiB/s" in text and "eta:5.1s" in text


def test_the_volume_carries_its_files_warnings_to_say_them_at_start(seed_res):
    # the seed's resource has no shared-secret: said at start, with file and line
    five = config.load("mysqldata", seed_res, "server5.example.com")
    assert any(w.startswith(f"{seed_res}:") and "no shared-secret" in w for w in five.warnings)
    seed_res.write_text(seed_res.read_text().replace(
        "protocol C;", "protocol C;\n  net { cram-hmac-alg sha1; shared-secret s; }\n"
        "  disk { on-io-error detach; disk-timeout 50; }", 1))
    five = config.load("mysqldata", seed_res, "server5.example.com")
    assert not any("no shared-secret" in w for w in five.warnings)
    assert any("disk-timeout: not implemented" in w for w in five.warnings)
    assert not any("on-io-error" in w for w in five.warnings)
    assert five.on_io_error == "detach"
