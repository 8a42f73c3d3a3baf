"""`vigil check` and `vigil config show` as a user runs them."""

import json
import os
import shutil
import subprocess
import sys

from vigil.cli.main import main
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR


def make_dir(tmp_path, haresources, authkeys="auth 2\n2 sha1 s3cret\n", mode=0o600):
    d = tmp_path / "ha.d"
    d.mkdir()
    shutil.copy(SEED / "ha.cf", d / "ha.cf")
    shutil.copy(SEED / "ldirectord.cf", d / "ldirectord.cf")
    (d / "authkeys").write_text(authkeys)
    os.chmod(d / "authkeys", mode)
    (d / "haresources").write_text(haresources)
    return d


CLEAN = "server5.example.com IPaddr::172.25.254.100/24/eth0 ldirectord\n"


def run_check(capsys, *args):
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_clean_directory_exits_0(tmp_path, capsys):
    d = make_dir(tmp_path, CLEAN)
    code, out = run_check(capsys, "--dir", str(d), "--host", "server5.example.com",
                          "--drbd-conf", str(tmp_path / "none"))
    assert code == 0
    assert out.splitlines()[-1] == (
        f"vigil check: 0 errors, 0 warnings (checked {d} as server5.example.com)")
    assert "note: apiauth is accepted and ignored" in out


def test_quiet_hides_notes(tmp_path, capsys):
    d = make_dir(tmp_path, CLEAN)
    code, out = run_check(capsys, "-q", "--dir", str(d), "--host", "server5.example.com",
                          "--drbd-conf", str(tmp_path / "none"))
    assert code == 0 and "note:" not in out


def test_errors_exit_1_with_file_line_column_source_and_caret(tmp_path, capsys):
    d = make_dir(tmp_path, "server5.example.com IPaddr::172.25.254.100/24/eth0 nosuchd\n")
    code, out = run_check(capsys, "--dir", str(d), "--host", "server5.example.com",
                          "--drbd-conf", str(tmp_path / "none"))
    assert code == 1
    lines = out.splitlines()
    i = lines.index(f"{d}/haresources:1:52: error: cannot locate resource nosuchd: not a vigil "
                    f"built-in agent and no executable {d}/resource.d/nosuchd or "
                    f"/etc/init.d/nosuchd")
    assert lines[i + 1] == "server5.example.com IPaddr::172.25.254.100/24/eth0 nosuchd"
    assert lines[i + 2] == " " * 51 + "^"
    assert lines[-1].startswith("vigil check: 1 error, 0 warnings")


def test_world_readable_authkeys_and_tab_carets(tmp_path, capsys):
    d = make_dir(tmp_path, CLEAN, authkeys="auth 1\n1\tsha7 x\n", mode=0o644)
    code, out = run_check(capsys, "--dir", str(d), "--host", "server5.example.com",
                          "--drbd-conf", str(tmp_path / "none"))
    assert code == 1
    assert (f"{d}/authkeys: error: authkeys is readable by group and others (mode 0644): "
            f"heartbeat and vigil refuse to start; run 'chmod 600 {d}/authkeys'") in out
    lines = out.splitlines()
    i = lines.index(f"{d}/authkeys:2:3: error: unknown method 'sha7': expected crc, md5, sha1, "
                    "sha256 or sha512")
    assert lines[i + 1:i + 3] == ["1\tsha7 *", " \t^"]  # the secret starred out


def test_unreadable_directory_exits_2(tmp_path, capsys):
    code, out = run_check(capsys, "--dir", str(tmp_path / "missing"))
    assert code == 2
    assert f"{tmp_path}/missing: error: no such directory" in out


def test_check_runs_as_a_command_without_traceback(tmp_path):
    d = make_dir(tmp_path, CLEAN)
    (d / "ha.cf").write_text("keepalive 2\ncrm respawn\n")
    done = subprocess.run([sys.executable, "-m", "vigil", "check", "--dir", str(d), "--host",
                           "server5.example.com"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert f"{d}/ha.cf:2:5: error: crm respawn: vigil manages resources from haresources" in \
        done.stdout


def test_config_show_json_masks_secrets(tmp_path, capsys):
    d = make_dir(tmp_path, CLEAN)
    code = main(["config", "show", "--json", "--dir", str(d), "--host", "server5.example.com",
                 "--drbd-conf", str(tmp_path / "none")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["hacf"]["keepalive"] == 2.0 and data["hacf"]["deadping"] == 30.0
    assert data["authkeys"]["keys"]["2"] == {"number": 2, "method": "sha1", "secret": "********"}
    assert data["haresources"]["groups"][0]["resources"][1]["name"] == "ldirectord"
    virtual = data["ldirectord"]["ldirectord.cf"]["virtuals"][0]
    assert virtual["quiescent"] is True and virtual["reals"][0]["forwarding"] == "gate"
    assert data["extension"]["defaults"]["monitor_interval"] is None  # the agents' own
    assert data["extension"]["defaults"]["failed_stop"] == "block"
    code = main(["config", "show", "--json", "--show-secrets", "--dir", str(d), "--host",
                 "server5.example.com", "--drbd-conf", str(tmp_path / "none")])
    assert json.loads(capsys.readouterr().out)["authkeys"]["keys"]["2"]["secret"] == "s3cret"


def test_config_show_text_and_refusal_on_errors(tmp_path, capsys):
    d = make_dir(tmp_path, CLEAN)
    assert main(["config", "show", "--dir", str(d), "--host", "server5.example.com",
                 "--drbd-conf", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "  keepalive: 2.0" in out and "  auto_failback: on" in out
    (d / "haresources").write_text("server5.example.com nosuchd\n")
    assert main(["config", "show", "--dir", str(d), "--host", "server5.example.com",
                 "--drbd-conf", str(tmp_path / "none")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot locate resource nosuchd" in captured.err


def test_check_never_prints_a_secret(tmp_path, capsys):
    # errors on secret-bearing lines: the line is shown, its secret starred out
    d = make_dir(tmp_path, "server5.example.com IPaddr::172.25.254.100/24/eth0\n",
                 authkeys="auth 2\n2 sha1 s3cret-word extra\n3 crc TopSecretCrc\n")
    res = tmp_path / "drbd.conf"
    res.write_text('resource r0 {\n net { cram-hmac-alg crc32c; shared-secret "DrbdSecret"; }\n'
                   " on server5.example.com { device /dev/drbd0; disk /srv/d; "
                   "address 198.51.100.5:7789; meta-disk internal; }\n}\n")
    _, out = run_check(capsys, "--dir", str(d), "--host", "server5.example.com",
                       "--drbd-conf", str(res))
    assert "authkeys:2" in out and "authkeys:3" in out and "drbd.conf:2" in out
    for secret in ("s3cret-word", "TopSecretCrc", "DrbdSecret"):
        assert secret not in out
