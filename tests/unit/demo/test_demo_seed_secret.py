"""The demo's one change to the tutorial's files beyond addresses: links that authenticate."""

from vigil.config import authkeys, drbd
from vigil.lab.seed import demo_file, lab_file


def test_authkeys_selects_sha1_with_the_runs_secret_and_keeps_every_other_line():
    text = demo_file("authkeys", "0123abcd")
    keys = authkeys.parse(text, "authkeys")
    assert keys.keys[keys.auth].method.value == "sha1"
    assert keys.keys[keys.auth].secret == "0123abcd"
    assert len(text.splitlines()) == len(lab_file("authkeys").splitlines())


def test_the_drbd_resource_gets_a_shared_secret_and_no_warning_about_it():
    parsed = drbd.analyze(demo_file("drbd-mysqldata.res", "0123abcd"), "r.res")
    assert parsed.ok
    assert parsed.model.resources[0].net.shared_secret == "0123abcd"
    assert not [w for w in parsed.warnings if "shared-secret" in w.message]
