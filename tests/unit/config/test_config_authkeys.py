"""authkeys: keys, methods, the signing key, and heartbeat's mode rule on real files."""

import os
from pathlib import Path

import pytest

from vigil.config import authkeys
from vigil.config.authkeys import AuthMethod
from vigil.config.base import Severity
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR
DEBIAN = Path("/usr/share/doc/heartbeat/authkeys")


def errors(text):
    parsed = authkeys.analyze(text, "authkeys")
    found = list(parsed.errors) + [d for d in authkeys.validate(parsed.model) if d.is_error]
    return [(d.location.line, d.location.column, d.message) for d in found]


def test_seed_file():
    keys = authkeys.parse((SEED / "authkeys").read_text())
    assert keys.auth == 1
    assert keys.signing_key == authkeys.AuthKey(1, AuthMethod.CRC, "")
    assert list(keys.keys) == [1]  # the commented sha1/md5 lines are comments
    assert authkeys.validate(keys) == ()


def test_seed_crc_gets_a_warning():
    parsed = authkeys.analyze((SEED / "authkeys").read_text(), "authkeys")
    [warning] = parsed.warnings
    assert (warning.location.line, warning.location.column) == (2, 3)
    assert warning.message.startswith("crc authenticates nothing")


def test_several_keys_all_accepted_one_signs():
    keys = authkeys.parse("auth 2\n1 md5 Hello!\n2 sha1 HI!\n3 sha256 s3cret\n15 sha512 x\n")
    assert keys.auth == 2 and keys.signing_key.method is AuthMethod.SHA1
    assert keys.signing_key.secret == "HI!"
    assert [k.method for k in keys.keys.values()] == [
        AuthMethod.MD5, AuthMethod.SHA1, AuthMethod.SHA256, AuthMethod.SHA512]
    assert keys.accepts(1) and keys.accepts(15) and not keys.accepts(4)


def test_extension_methods_are_noted_as_vigil_only():
    notes = authkeys.analyze("auth 1\n1 sha256 k\n", "authkeys").notes
    assert notes[0].message == "sha256 is a vigil extension: heartbeat peers cannot verify it"


def test_debian_example_parses_and_is_incomplete_until_edited():
    parsed = authkeys.analyze(DEBIAN.read_text(), str(DEBIAN))
    assert parsed.diagnostics == ()
    assert [d.message for d in authkeys.validate(parsed.model)] == [
        "no 'auth N' line: say which key signs outgoing packets"]


@pytest.mark.parametrize(("text", "expected"), [
    ("auth 1\n1 md5\n", (2, 3, "method md5 needs a secret")),
    ("auth 1\n1 crc secret\n", (2, 7, "method crc takes no secret (it signs nothing)")),
    ("auth 1\n1 sha3 x\n", (2, 3, "unknown method 'sha3': expected crc, md5, sha1, sha256 or "
                              "sha512")),
    ("auth 1\n16 sha1 x\n", (2, 1, "key number 16 is out of range 0..15")),
    ("auth one\n1 crc\n", (1, 1, "bad auth line: expected 'auth N' (N = the key that signs "
                                "outgoing packets)")),
    ("auth 2\n1 crc\n", (1, 1, "auth 2 names key 2, which is not listed")),
    ("1 crc\n", (0, 0, "no 'auth N' line: say which key signs outgoing packets")),
    ("auth 1\n1 crc\n1 sha1 x\n", (3, 1, "key 1 listed twice (first on line 2)")),
    ("auth 1\nauth 1\n1 crc\n", (2, 1, "auth given twice (first on line 1)")),
    ("1 crc\nauth 1\n", (2, 1, "auth 1 comes after key 1 (line 1): heartbeat needs the auth "
                              "line first")),
    ("auth 1\nkey 1 crc\n", (2, 1, "bad key line: expected 'N METHOD [SECRET]', got 'key'")),
    ("auth 1\n1\n", (2, 2, "key 1 needs a method (crc, md5, sha1, sha256 or sha512)")),
])
def test_golden_errors(text, expected):
    assert expected in errors(text)


@pytest.mark.parametrize(("mode", "message"), [
    (0o600, None),
    (0o400, None),
    (0o640, "authkeys is readable by group (mode 0640)"),
    (0o604, "authkeys is readable by others (mode 0604)"),
    (0o644, "authkeys is readable by group and others (mode 0644)"),
    (0o620, "authkeys is writable by group (mode 0620)"),
    (0o602, "authkeys is writable by others (mode 0602)"),
])
def test_mode_rule_on_a_real_file(tmp_path, mode, message):
    path = tmp_path / "authkeys"
    path.write_text("auth 1\n1 sha1 secret\n")
    os.chmod(path, mode)
    problem = authkeys.check_mode(str(path))
    if message is None:
        assert problem is None
        assert authkeys.read(str(path)).ok
    else:
        assert problem is not None and problem.severity is Severity.ERROR
        assert problem.message.startswith(message)
        assert f"chmod 600 {path}" in problem.message
        assert not authkeys.read(str(path)).ok


def test_read_refuses_a_missing_file(tmp_path):
    from vigil.config.base import FileUnreadable

    with pytest.raises(FileUnreadable) as caught:
        authkeys.read(str(tmp_path / "authkeys"))
    assert caught.value.exit_code == 2
    assert "cannot read: No such file or directory" in str(caught.value)


def test_render_round_trip_keeps_secrets():
    keys = authkeys.parse("auth 3\n1 crc\n3 sha1 HI!\n4 md5 Hello!\n")
    assert authkeys.parse(authkeys.render(keys)) == keys
    assert "3 sha1 HI!" in authkeys.render(keys)


def test_an_authkeys_owned_by_another_user_is_refused(tmp_path):
    path = tmp_path / "authkeys"
    path.write_text("auth 1\n1 sha1 secret\n")
    os.chmod(path, 0o600)
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(path, 65534, 65534)
    problem = authkeys.check_mode(str(path))
    assert problem is not None and "belongs to uid 65534, not root" in problem.message
    assert not authkeys.read(str(path)).ok


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("auth16\n", 1, 5, "key number 16 is out of range 0..15"),
    ("auth " + "9" * 5000 + "\n", 1, 6, "key number 99999999999999999999... is out of range"),
    ("auth 1\n1 sha1 x\n" + "7" * 5000 + " sha1 y\n", 3, 1,
     "key number 77777777777777777777... is out of range"),
    ("auth 1\n" + "7" * 5000 + "\n", 2, 5001, "key 77777777777777777777... needs a method"),
    ("auth 1\n1 sha1 caf\udcc3\n", 2, 8, "the secret is not valid UTF-8 text"),
])
def test_hostile_lines_are_errors_at_their_place(text, line, column, message):
    found = [(d.location.line, d.location.column, d.message)
             for d in authkeys.analyze(text, "authkeys").errors]
    assert any((at, col) == (line, column) and m.startswith(message) for at, col, m in found), \
        found
