"""DRBD resource files: sections, units, includes, unknown options kept, and errors."""

import dataclasses
import re
from pathlib import Path

import pytest

from vigil.config import drbd
from vigil.config.base import FileUnreadable
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR / "drbd-mysqldata.res"
KIB = 1024


def errors(text):
    return [(d.location.line, d.location.column, d.message)
            for d in drbd.analyze(text, "r.res").errors]


def test_seed_resource():
    config = drbd.parse(SEED.read_text(), str(SEED))
    res = config.resource("mysqldata")
    assert res.net.protocol == "C"
    here = res.host("server5.example.com")
    assert here.address == drbd.Address("172.25.254.5", 7789, "ipv4")
    assert here.volumes == (drbd.Volume(0, "/dev/drbd1", 1, "/dev/vdb", "internal"),)
    assert [h.names for h in res.peers_of("server5.example.com")] == [("server6.example.com",)]
    assert drbd.diagnostics_for_host(config, "SERVER6.example.com") == ()


def test_defaults_are_drbd_84s():
    res = drbd.parse(SEED.read_text()).resources[0]
    assert (res.net.timeout, res.net.connect_int, res.net.ping_int, res.net.ping_timeout) == (
        6.0, 10.0, 10.0, 0.5)
    assert (res.net.after_sb_0pri, res.net.after_sb_1pri, res.net.after_sb_2pri) == (
        "disconnect", "disconnect", "disconnect")
    assert res.net.allow_two_primaries is False and res.net.shared_secret is None
    assert res.disk.resync_rate == 250 * KIB and res.disk.al_extents == 1237
    assert (res.disk.c_plan_ahead, res.disk.c_fill_target, res.disk.c_max_rate) == (
        2.0, 100 * 512, 102400 * KIB)
    assert res.disk.c_min_rate == 250 * KIB
    assert (res.disk.fencing, res.disk.on_io_error) == ("dont-care", "detach")


def test_the_machines_drbd_conf_and_its_includes_parse():
    """drbd-utils ships /etc/drbd.conf including drbd.d/global_common.conf (a DRBD 9 layout)."""
    parsed = drbd.read("/etc/drbd.conf")
    assert parsed.errors == ()
    assert "/etc/drbd.d/global_common.conf" in parsed.model.files
    assert parsed.model.global_options.usage_count == "no"
    assert parsed.model.global_options.udev_always_use_vnr is True


def test_options_units_and_inheritance_from_common():
    config = drbd.parse("""
global { usage-count no; minor-count 8; }
common {
    net { protocol B; fencing resource-only; }
    disk { resync-rate 10M; c-max-rate 100M; c-fill-target 20s; }
    handlers { fence-peer "/usr/lib/drbd/crm-fence-peer.sh"; }
    startup { wfc-timeout 30; }
}
resource r0 {
    net {
        cram-hmac-alg sha1; shared-secret "FooFunFactory";
        after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary;
        after-sb-2pri disconnect; allow-two-primaries; timeout 90; ping-timeout 10;
    }
    disk { al-extents 3389; c-plan-ahead 20; c-min-rate 4M; on-io-error pass_on; }
    device minor 1; meta-disk internal;
    on alice { address 10.1.1.31:7789; disk /dev/sda7; }
    on bob { address 10.1.1.32:7789; disk /dev/sda7; }
}
""")
    res = config.resource("r0")
    assert res.net.protocol == "B"  # from common
    assert res.disk.fencing == "resource-only"  # DRBD 9 spelling in net, stored in disk
    assert res.net.shared_secret == "FooFunFactory" and res.net.cram_hmac_alg == "sha1"
    assert res.net.after_sb_0pri == "discard-zero-changes"
    assert res.net.allow_two_primaries is True
    assert (res.net.timeout, res.net.ping_timeout) == (9.0, 1.0)
    assert res.disk.resync_rate == 10 * KIB * KIB and res.disk.c_max_rate == 100 * KIB * KIB
    assert res.disk.c_fill_target == 20 * 512 and res.disk.c_min_rate == 4 * KIB * KIB
    assert res.disk.al_extents == 3389 and res.disk.c_plan_ahead == 2.0
    assert res.startup.wfc_timeout == 30.0
    assert dict(res.handlers) == {"fence-peer": "/usr/lib/drbd/crm-fence-peer.sh"}
    assert res.host("bob").volumes[0] == drbd.Volume(0, "/dev/drbd1", 1, "/dev/sda7", "internal")
    assert config.global_options.minor_count == 8


def test_unknown_options_are_warned_about_and_kept():
    parsed = drbd.analyze("resource r0 {\n net { bogus-option 7; }\n on a { address 1.2.3.4:7788;"
                          " device /dev/drbd0; disk /dev/sdb; meta-disk internal; }\n}\n", "r.res")
    assert parsed.ok
    [warning] = [w for w in parsed.warnings if "bogus" in w.message]
    assert (warning.location.line, warning.location.column) == (2, 8)
    assert warning.message == "unknown net option 'bogus-option' (kept, not used by vigil)"
    assert dict(parsed.model.resources[0].net.extra) == {"bogus-option": ("7",)}


def test_drbd83_syncer_section_is_mapped():
    parsed = drbd.analyze("resource r0 {\n syncer { rate 33M; al-extents 257; verify-alg sha1; }\n"
                          " on a { address 1.2.3.4:7788; device /dev/drbd0; disk /dev/sdb;"
                          " meta-disk internal; }\n}\n", "r.res")
    res = parsed.model.resources[0]
    assert res.disk.resync_rate == 33 * KIB * KIB and res.disk.al_extents == 257
    assert res.net.verify_alg == "sha1"
    assert "DRBD 8.3 syntax" in parsed.warnings[0].message


def test_volumes_hosts_ipv6_floating():
    config = drbd.parse("""
resource r1 {
    device minor 1; disk /dev/sdb; meta-disk internal;
    on alice bob { address 10.2.2.100:7801; }
    on charlie { address ipv6 [fd00::1]:7801;
        volume 0 { device /dev/drbd2; disk /dev/sdc; meta-disk /dev/sdd [3]; }
        volume 1 { device minor 3; disk /dev/sde; meta-disk internal; } }
    floating 10.1.1.33:7802;
}
""")
    res = config.resources[0]
    assert res.host("bob") is res.host("alice")
    charlie = res.host("charlie")
    assert charlie.address == drbd.Address("fd00::1", 7801, "ipv6")
    assert charlie.volume(0).meta_disk == "/dev/sdd[3]"
    assert charlie.volume(1).device == "/dev/drbd3"
    assert [h.floating for h in res.hosts] == [False, False, True]


def test_includes_follow_globs_relative_to_the_file(tmp_path):
    (tmp_path / "drbd.d").mkdir()
    (tmp_path / "drbd.conf").write_text('include "drbd.d/global_common.conf";\n'
                                        'include "drbd.d/*.res";\n')
    (tmp_path / "drbd.d" / "global_common.conf").write_text(
        "common { net { protocol A; } }\n")
    (tmp_path / "drbd.d" / "mysqldata.res").write_text(SEED.read_text())
    (tmp_path / "drbd.d" / "r9.res").write_text(
        "resource r9 { on a { address 1.2.3.4:7788; device /dev/drbd9; disk /dev/x;"
        " meta-disk internal; } }\n")
    parsed = drbd.read(str(tmp_path / "drbd.conf"))
    assert parsed.ok, parsed.diagnostics
    assert [r.name for r in parsed.model.resources] == ["mysqldata", "r9"]
    # common's protocol A reaches r9; mysqldata says protocol C itself
    assert [r.net.protocol for r in parsed.model.resources] == ["C", "A"]
    assert parsed.model.resource("r9").location.path == str(tmp_path / "drbd.d" / "r9.res")


def test_an_include_of_a_missing_plain_file_is_an_error(tmp_path):
    (tmp_path / "drbd.conf").write_text('include "nothere.conf";\n')
    [error] = drbd.read(str(tmp_path / "drbd.conf")).errors
    assert error.location.line == 1 and error.message.endswith("nothere.conf does not exist")


def test_an_unreadable_top_file_is_reported_as_such(tmp_path):
    with pytest.raises(FileUnreadable):
        drbd.read(str(tmp_path / "none.conf"))


@pytest.mark.parametrize(("text", "expected"), [
    ("resource r0 {\n  net { protocol D; }\n}\n",
     (2, 18, "protocol: bad value 'D': expected A | B | C")),
    ("resource r0 {\n  net { timeout 9999; }\n}\n",
     (2, 17, "timeout: 9999 is out of range 1..600")),
    ("resource r0 {\n  disk { resync-rate fast; }\n}\n",
     (2, 22, "resync-rate: bad size 'fast': expected a number with an optional K, M or G "
             "suffix")),
    ("resource r0 {\n  on a { address 1.2.3.4:7788 }\n}\n",
     (2, 30, "missing ';' after 'address 1.2.3.4:7788'")),
    ("resource r0 {\n  net { protocol C; }\n", (1, 13, "this '{' is never closed")),
    ("}\n", (1, 1, "'}' without a matching '{'")),
    ("resource r0 { }\n", (1, 1, "resource r0 has no 'on HOST { ... }' section")),
    ("resource r0 {\n  on a { device /dev/drbd0; disk /dev/sdb; meta-disk internal; }\n}\n",
     (2, 3, "host a has no address")),
    ("resource r0 {\n  on a { address 1.2.3.4:7788; }\n}\n",
     (2, 3, "on a: volume 0 has no device, disk, meta-disk")),
    ("resource r0 {\n  on a { address fd00::1:7788; }\n}\n",
     (2, 18, "bad address 'fd00::1:7788' (IPv6 addresses go in brackets after 'ipv6')")),
    ("resource r0 {}\nresource r0 {}\n", (2, 10, "resource r0 defined twice (first on line 1)")),
    ("frobnicate { }\n", (1, 1, "unknown top-level statement 'frobnicate': expected global, "
                               "common, resource, include or skip")),
    ('resource r0 {\n  net { shared-secret "unterminated; }\n}\n',
     (2, 23, "unterminated string (a quoted value must end on the same line)")),
])
def test_golden_errors(text, expected):
    assert expected in errors(text)


def test_skip_comments_out_a_block():
    config = drbd.parse("skip resource old { this is { not parsed } at all; }\n" + SEED.read_text())
    assert [r.name for r in config.resources] == ["mysqldata"]


def test_drbddisk_checks_for_a_host():
    config = drbd.parse(SEED.read_text(), "r.res")
    [missing, other] = drbd.diagnostics_for_host(config, "server7", ["nothere", "mysqldata"])
    assert missing.message == "DRBD resource nothere is not defined"
    assert other.location.line == 3
    assert other.message == ("DRBD resource mysqldata has no 'on server7' section (it names "
                             "server5.example.com, server6.example.com)")


@pytest.mark.parametrize("section", ["net", "disk", "startup", "options", "global"])
def test_option_tables_and_models_agree(section):
    """One record per option: every table entry is a typed field with the same default."""
    table = drbd.OPTION_TABLES[section]
    model = drbd.default_options(section)
    names = [f.name for f in dataclasses.fields(model) if f.name != "extra"]
    assert names == [spec.attribute for spec in table]
    for spec in table:
        assert getattr(model, spec.attribute) == spec.default


def test_render_round_trip():
    text = """
global { usage-count yes; }
resource r0 {
    net { protocol A; cram-hmac-alg sha1; shared-secret "a \\"quoted\\" secret";
          after-sb-0pri discard-node-alice; max-buffers 8000; sndbuf-size 512k; x-opt 1 2; }
    disk { resync-rate 1G; c-fill-target 0; disk-flushes no; size 10G; resync-after r1; }
    startup { degr-wfc-timeout 120; become-primary-on alice; }
    options { on-no-data-accessible suspend-io; }
    handlers { split-brain "/usr/lib/drbd/notify-split-brain.sh root"; }
    on alice { address ipv6 [fd00::1]:7789; volume 0 { device minor 0; disk /dev/sda;
      meta-disk internal; } volume 1 { device /dev/drbd5; disk none; meta-disk internal; } }
    on bob { address 10.0.0.2:7789; device /dev/drbd0; disk /dev/sdb; meta-disk /dev/sdc[1]; }
}
"""
    config = drbd.parse(text)
    assert drbd.parse(drbd.render(config)) == config


ONE_HOST = (" on a { address 1.2.3.4:7788; device /dev/drbd0; disk /dev/sdb;"
            " meta-disk internal; }\n}\n")


def test_an_unsupported_cram_hmac_alg_is_an_error_at_its_line():
    text = "resource r0 {\n net {\n  cram-hmac-alg crc32c; shared-secret s;\n }\n" + ONE_HOST
    assert errors(text) == [(3, 17, "cram-hmac-alg: 'crc32c' is not supported (use one of md5, "
                                    "sha1, sha256, sha384, sha512)")]
    ok = drbd.analyze(text.replace("crc32c", "SHA256"), "r.res")
    assert ok.ok and ok.model.resources[0].net.cram_hmac_alg == "sha256"


@pytest.mark.parametrize("option", ["data-integrity-alg", "csums-alg", "verify-alg"])
def test_digests_are_read_and_an_unknown_one_is_refused_at_its_line(option):
    parsed = drbd.analyze(f"resource r0 {{\n net {{\n  {option} SHA1;\n }}\n" + ONE_HOST, "r.res")
    assert parsed.ok and not [w for w in parsed.warnings if w.message.startswith(option)]
    net = parsed.model.resources[0].net
    assert getattr(net, option.replace("-", "_")) == "sha1"
    bad = drbd.analyze(f"resource r0 {{\n net {{\n  {option} whirlpool;\n }}\n" + ONE_HOST,
                       "r.res")
    assert not bad.ok
    [error] = bad.errors
    assert error.location.line == 3 and "'whirlpool' is not supported" in error.message
    assert "crc32c" in error.message  # says what is


def test_a_resource_without_shared_secret_is_warned_about():
    def secret_warnings(net):
        text = f"resource r0 {{\n net {{ {net} }}\n" + ONE_HOST
        return [w.message for w in drbd.analyze(text, "r.res").warnings
                if "shared-secret" in w.message]

    [message] = secret_warnings("protocol C;")
    assert message.startswith("resource r0: no shared-secret: the replication link is not "
                              "authenticated")
    assert secret_warnings("cram-hmac-alg sha1; shared-secret s3cret;") == []


@pytest.mark.parametrize("section, line, said", [
    ("net { rr-conflict violently; }", "rr-conflict violently;", "rr-conflict: not impl"),
    ("net { always-asbp; }", "always-asbp;", "always-asbp: not implemented"),
    ("startup { stacked-timeouts; }", "stacked-timeouts;", "stacked-timeouts: not used"),
    ('handlers { pri-lost "/bin/true"; }', "pri-lost", "handler pri-lost: not run"),
    ('handlers { pri-on-incon-degr "/bin/true"; }', "pri-on", "handler pri-on-incon-degr: "),
    ("net { max-epoch-size 1000; }", "max-epoch-size", "max-epoch-size: no effect"),
    ("net { tcp-cork yes; }", "tcp-cork", "tcp-cork: no effect"),
    ("net { on-congestion pull-ahead; }", "on-congestion", "on-congestion: not implemented"),
    ("disk { disk-flushes no; }", "disk-flushes", "disk-flushes: not implemented"),
    ("disk { resync-after r1; }", "resync-after", "resync-after: not implemented"),
    ("disk { read-balancing round-robin; }", "read-balancing", "read-balancing: not impl"),
])
def test_what_vigil_does_not_carry_out_is_said_at_its_line(section, line, said):
    text = f"resource r0 {{\n {section}\n" + ONE_HOST
    parsed = drbd.analyze(text, "r.res")
    assert parsed.ok
    assert [w for w in parsed.warnings if w.message.startswith(said)], \
        [w.message for w in parsed.warnings]


def test_every_option_vigil_accepts_is_used_or_said_not_to_be():
    """An option whose value no module outside the parser reads must warn at its line."""
    source = "\n".join(path.read_text() for path in Path(drbd.__file__).parents[1].rglob("*.py")
                       if path.name != "drbd.py" or path.parent.name != "config")
    said = {*drbd.NOT_DONE, *drbd.NOT_DONE_UNLESS, *drbd.STARTUP_NOT_DONE}
    unused = [name for table in drbd._BY_NAME.values() for name, spec in table.items()
              if name not in said and not re.search(rf"\.{spec.attribute}\b", source)]
    assert unused == []


@pytest.mark.parametrize("section", ["disk { on-io-error pass_on; }",
                                     "disk { on-io-error detach; }",
                                     "disk { on-io-error call-local-io-error; } "
                                     'handlers { local-io-error "/bin/true"; }',
                                     "net { rr-conflict disconnect; }",
                                     "startup { wfc-timeout 30; degr-wfc-timeout 10; "
                                     "outdated-wfc-timeout 5; wait-after-sb; "
                                     "become-primary-on a; }",
                                     'handlers { fence-peer "/bin/true"; before-resync-source '
                                     '"/bin/true"; }'])
def test_what_vigil_does_is_not_warned_about(section):
    text = f"resource r0 {{\n {section}\n net {{ cram-hmac-alg sha1; shared-secret s; }}\n" \
        + ONE_HOST
    assert drbd.analyze(text, "r.res").warnings == ()


def test_become_primary_on_must_name_a_host_of_the_resource():
    def warned(value: str) -> list[str]:
        text = f"resource r0 {{\n startup {{ become-primary-on {value}; }}\n" + ONE_HOST
        return [w.message for w in drbd.analyze(text, "r.res").warnings
                if "become-primary-on" in w.message]

    [message] = warned("nobody")
    assert message == ("resource r0: become-primary-on nobody names no 'on' host of this "
                       "resource: no node promotes it at boot")
    assert warned("both") == [] and warned("a") == []
