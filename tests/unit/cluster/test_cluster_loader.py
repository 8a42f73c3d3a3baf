"""The directory as a set: what `vigil check` finds in the seed's files on this machine."""

import glob
import os
import shutil
from pathlib import Path

import pytest

from vigil.cluster import loader
from vigil.cluster.loader import ConfigPaths, HostFacts
from vigil.config.base import ConfigErrors, Severity
from vigil.config.haresources import ResourceResolver
from vigil.config.resolve import StaticResolver
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR


def seed_dir(tmp_path, variant, extra=()):
    d = tmp_path / "ha.d"
    d.mkdir()
    shutil.copy(SEED / "ha.cf", d / "ha.cf")
    shutil.copy(SEED / "authkeys", d / "authkeys")
    os.chmod(d / "authkeys", 0o600)
    shutil.copy(SEED / f"haresources.{variant}", d / "haresources")
    for name in extra:
        shutil.copy(SEED / name, d / name)
    return d


def runnable(name):
    """Whether heartbeat would find a script `name` here (a copied ha.d has no resource.d)."""
    return os.access(os.path.join("/etc/init.d", name), os.X_OK) and \
        os.path.isfile(os.path.join("/etc/init.d", name))


def drbd_defines(resource, conf="/etc/drbd.conf"):
    files = [conf, *glob.glob("/etc/drbd.d/*")]
    return any(f"resource {resource}" in Path(f).read_text() for f in files if os.path.isfile(f))


def errors_of(report):
    return sorted((Path(d.location.path).name, d.location.line, d.message)
                  for d in report.errors)


def missing_script(name, line, column, ha_dir):
    return ("haresources", line,
            f"cannot locate resource {name}: not a vigil built-in agent and no executable "
            f"{ha_dir}/resource.d/{name} or /etc/init.d/{name}")


SERVER5 = HostFacts("server5.example.com")


def test_seed_mysqld_reports_only_what_is_missing_here(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "no-drbd.conf")), SERVER5)
    expected = [] if runnable("mysqld") else [missing_script("mysqld", 1, 52, d)]
    assert errors_of(report) == expected
    assert [d.message.split(" (")[0] for d in report.warnings] == ["crc authenticates nothing"]
    assert [n.location.line for n in report.notes] == [12, 13]  # ipfail, apiauth
    assert report.exit_code == (1 if expected else 0)


def test_seed_lvs_with_its_ldirectord_cf(tmp_path):
    d = seed_dir(tmp_path, "lvs", extra=("ldirectord.cf",))
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "no-drbd.conf")), SERVER5)
    expected = [] if runnable("httpd") else [missing_script("httpd", 1, 63, d)]
    assert errors_of(report) == expected
    assert list(report.config.ldirectord) == ["ldirectord.cf"]
    assert report.config.ldirectord["ldirectord.cf"].virtuals[0].quiescent is True


def test_seed_lvs_without_ldirectord_cf_names_the_missing_file(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "no-drbd.conf")), SERVER5)
    assert ("haresources", 1,
            f"ldirectord: ldirectord config ldirectord.cf not found (looked for {d}/ldirectord.cf "
            f"and {d}/conf/ldirectord.cf)") in errors_of(report)


def test_seed_drbd_mysql_against_this_machines_drbd_conf(tmp_path):
    d = seed_dir(tmp_path, "drbd-mysql")
    report = loader.check(ConfigPaths(str(d), "/etc/drbd.conf"), SERVER5)
    expected = [] if runnable("mysqld") else [missing_script("mysqld", 1, 115, d)]
    if not drbd_defines("mysqldata"):
        expected.append(("haresources", 1,
                         "drbddisk::mysqldata: DRBD resource mysqldata is not defined in "
                         + ", ".join(report.config.drbd.files)))
        assert report.config.drbd.files[0] == "/etc/drbd.conf"
    assert errors_of(report) == sorted(expected)


def test_seed_drbd_mysql_with_the_seeds_resource_file(tmp_path):
    d = seed_dir(tmp_path, "drbd-mysql")
    conf = tmp_path / "drbd.conf"
    conf.write_text(f'include "{SEED}/drbd-mysqldata.res";\n')
    report = loader.check(ConfigPaths(str(d), str(conf)), SERVER5)
    expected = [] if runnable("mysqld") else [missing_script("mysqld", 1, 115, d)]
    assert errors_of(report) == expected
    assert report.config.drbd.resource("mysqldata").host("server5.example.com") is not None
    # the same files checked for a host the DRBD resource does not name
    report7 = loader.check(ConfigPaths(str(d), str(conf)), HostFacts("server7"))
    messages = [m for _, _, m in errors_of(report7)]
    assert any(m.startswith("this host (server7) is not a node") for m in messages)
    assert ("DRBD resource mysqldata (used by drbddisk::mysqldata) has no 'on server7' section; "
            "it names server5.example.com, server6.example.com") in messages


def test_world_readable_authkeys_is_an_error(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    os.chmod(d / "authkeys", 0o644)
    report = loader.check(ConfigPaths(str(d)), HostFacts(
        "server5.example.com", resolver=ResourceResolver(builtins=frozenset({"IPaddr",
                                                                             "mysqld"}))))
    [error] = report.errors
    assert error.location.path == str(d / "authkeys")
    assert error.message.startswith("authkeys is readable by group and others (mode 0644)")


def test_home_node_must_be_a_node(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    (d / "haresources").write_text("# groups\nserver9 IPaddr::10.0.0.1/24/eth0\n")
    report = loader.check(ConfigPaths(str(d)), SERVER5)
    [error] = report.errors
    assert (error.location.line, error.location.column) == (2, 1)
    assert error.message == ("home node server9 is not a node of ha.cf (server5.example.com, "
                             "server6.example.com)")
    assert error.source_line == "server9 IPaddr::10.0.0.1/24/eth0"


def test_unreadable_files_give_exit_code_2(tmp_path):
    report = loader.check(ConfigPaths(str(tmp_path / "nothere")), SERVER5)
    assert report.exit_code == 2 and report.errors[0].message == "no such directory"
    d = seed_dir(tmp_path, "mysqld")
    (d / "ha.cf").unlink()
    report = loader.check(ConfigPaths(str(d)), SERVER5)
    assert report.exit_code == 2
    assert report.unreadable == (str(d / "ha.cf"),)


def test_machine_facts_interfaces_addresses_users_programs(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    (d / "ha.cf").write_text(
        "bcast eth9\nucast eth0 198.51.100.5\nrespawn nobody-here /bin/true\n"
        "respawn root /nonexistent/prog\nnode server5.example.com\nauto_failback on\n")
    facts = HostFacts("server5.example.com", interfaces=frozenset({"lo", "eth0"}),
                      local_addresses=frozenset({"198.51.100.5"}),
                      resolver=ResourceResolver(builtins=frozenset({"IPaddr", "mysqld"})))
    messages = [(e.location.line, e.message) for e in loader.check(ConfigPaths(str(d)),
                                                                   facts).errors]
    assert messages == [
        (1, "bcast: interface eth9 does not exist on this host"),
        (3, "respawn: user nobody-here does not exist"),
        (4, "respawn: /nonexistent/prog is not an executable file"),
    ]
    (d / "ha.cf").write_text("ucast eth0 198.51.100.5\nnode server5.example.com\n"
                             "auto_failback on\n")
    [error] = loader.check(ConfigPaths(str(d)), facts).errors
    assert error.message.startswith("every heartbeat medium is a ucast to this host's own")


def test_ldirectord_hosts_must_resolve(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    (d / "web.cf").write_text("virtual=www.example.com:80\n\treal=web1->web3:80 gate\n")
    (d / "haresources").write_text("server5.example.com 10.0.0.1 ldirectord::web.cf\n")
    names = StaticResolver({"www.example.com": ("10.0.0.80",), "web1": ("10.0.0.1",)})
    facts = HostFacts("server5.example.com", names=names)
    [error] = loader.check(ConfigPaths(str(d)), facts).errors
    assert (Path(error.location.path).name, error.location.line) == ("web.cf", 1)
    assert error.message == "real server web3 does not resolve to an IPv4 address"


def test_group_order_and_vigil_cf_cross_checks(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    (d / "haresources").write_text(
        "server5.example.com Filesystem::/dev/drbd1::/srv drbddisk::r0 IPaddr::10.0.0.1\n")
    (d / "vigil.cf").write_text("agent httpd\n  monitor off\nresource IPaddr::10.0.0.1\n"
                                "  monitor_interval 3\n")
    conf = tmp_path / "drbd.conf"
    conf.write_text("resource r0 { on server5.example.com { address 10.0.0.5:7789; "
                    "device /dev/drbd1; disk /dev/sdb; meta-disk internal; } }\n")
    report = loader.check(ConfigPaths(str(d), str(conf)), SERVER5)
    assert report.errors == ()
    warnings = [(Path(w.location.path).name, w.location.line, w.message.split(":")[0])
                for w in report.warnings]
    assert ("haresources", 1, "Filesystem") in warnings
    assert ("vigil.cf", 1, "agent httpd") in warnings
    assert report.config.extension.policy_for(
        report.config.haresources.groups[0].resources[2]).monitor_interval == 3.0


def test_load_raises_with_every_error(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    (d / "ha.cf").write_text("keepalive x\nnode a\n")
    with pytest.raises(ConfigErrors) as caught:
        loader.load(ConfigPaths(str(d)), SERVER5)
    messages = [e.message for e in caught.value.errors]
    assert messages[0].startswith("keepalive: bad time 'x'")
    assert "no heartbeat medium: add a bcast, mcast or ucast line" in messages


def test_load_gives_the_model_of_a_clean_directory(tmp_path):
    d = seed_dir(tmp_path, "lvs", extra=("ldirectord.cf",))
    (d / "haresources").write_text("server5.example.com IPaddr::172.25.254.100/24/eth0 "
                                   "ldirectord\n")
    config = loader.load(ConfigPaths(str(d), str(tmp_path / "none")), SERVER5)
    assert config.hacf.keepalive == 2.0 and config.authkeys.auth == 1
    assert config.haresources.groups[0].node == "server5.example.com"
    assert config.paths.ha_dir == str(d)
    notes = loader.check(ConfigPaths(str(d), str(tmp_path / "none")), SERVER5).notes
    assert all(n.severity is Severity.NOTE for n in notes)


def test_ldirectord_execute_configs_are_checked_too(tmp_path):
    d = seed_dir(tmp_path, "lvs", extra=("ldirectord.cf",))
    with open(d / "ldirectord.cf", "a") as f:
        f.write("execute=second.cf\nexecute=missing.cf\n")
    (d / "conf").mkdir()
    (d / "conf" / "second.cf").write_text("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n"
                                          "execute=ldirectord.cf\n")
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "none")),
                          HostFacts("server5.example.com", resolver=ResourceResolver(
                              builtins=frozenset({"IPaddr", "ldirectord", "httpd"}))))
    assert sorted(report.config.ldirectord) == ["ldirectord.cf", "second.cf"]
    [error] = report.errors
    assert error.location.path == str(d / "ldirectord.cf")
    assert error.message.startswith("execute=missing.cf: ldirectord config missing.cf not found")


def test_resource_scripts_are_looked_up_in_the_checked_directory(tmp_path):
    d = seed_dir(tmp_path, "mysqld")
    (d / "haresources").write_text("server5.example.com 198.51.100.100 localscript\n")
    paths = ConfigPaths(str(d), str(tmp_path / "no-drbd.conf"))
    assert errors_of(loader.check(paths, SERVER5)) == [missing_script("localscript", 1, 50, d)]
    (d / "resource.d").mkdir()
    script = d / "resource.d" / "localscript"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    assert errors_of(loader.check(paths, SERVER5)) == []


def test_a_scheduler_only_ipvs_runs_is_reported_with_its_line(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    (d / "web.cf").write_text("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n"
                              "\tscheduler=rr\n\n"
                              "virtual=10.0.0.1:81\n\treal=10.0.0.2:81 gate\n"
                              "\tscheduler=lblc\n")
    (d / "haresources").write_text("server5.example.com 10.0.0.1 ldirectord::web.cf\n")
    report = loader.check(ConfigPaths(str(d)), HostFacts("server5.example.com"))
    [warning] = [w for w in report.warnings if "scheduler" in w.message]
    assert (Path(warning.location.path).name, warning.location.line) == ("web.cf", 5)
    assert "scheduler lblc runs only with the ipvs backend" in warning.message


def test_an_oracle_negotiate_check_is_refused_and_connect_is_fine(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    (d / "haresources").write_text("server5.example.com 10.0.0.1 ldirectord::web.cf\n")
    (d / "web.cf").write_text("virtual=10.0.0.1:1521\n\treal=10.0.0.2:1521 gate\n")
    [error] = loader.check(ConfigPaths(str(d)), HostFacts("server5.example.com")).errors
    assert "no oracle negotiate check" in error.message and error.location.line == 1
    (d / "web.cf").write_text("virtual=10.0.0.1:1521\n\treal=10.0.0.2:1521 gate\n"
                              "\tchecktype=connect\n")
    assert loader.check(ConfigPaths(str(d)), HostFacts("server5.example.com")).errors == ()


def test_heartbeat_rc_d_hooks_a_user_added_are_named_and_notify_command_checked(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    rc = d / "rc.d"
    rc.mkdir()
    for name in ("status", "ask_resources", "page-oncall"):  # two stock hooks, one added
        (rc / name).write_text("#!/bin/sh\n")
    report = loader.check(ConfigPaths(str(d)), HostFacts("server5.example.com"))
    [warning] = [w for w in report.warnings if "rc.d" in w.location.path]
    assert "page-oncall are not run by vigil" in warning.message
    assert "status" not in warning.message and "set notify_command" in warning.message
    (d / "vigil.cf").write_text(f"notify_command {tmp_path}/absent\n")
    report = loader.check(ConfigPaths(str(d)), HostFacts("server5.example.com"))
    assert any("notify_command" in e.message and "not an executable" in e.message
               for e in report.errors)
    program = tmp_path / "notify"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    (d / "vigil.cf").write_text(f"notify_command {program}\n")
    report = loader.check(ConfigPaths(str(d)), HostFacts("server5.example.com"))
    assert not [e for e in report.errors if "notify_command" in e.message]
    assert any(f"notify_command {program} runs" in w.message for w in report.warnings)


def test_a_fence_agent_that_does_not_answer_monitor_is_an_error_at_its_section(tmp_path):
    import asyncio
    import dataclasses

    from vigil.ha.fencing import fence_monitor

    d = seed_dir(tmp_path, "lvs")
    agent = tmp_path / "fence_lab"
    agent.write_text(f"#!/bin/sh\ncat > {tmp_path}/asked\n"
                     f"grep -q reachable=yes {tmp_path}/asked && exit 0\n"
                     "echo 'Failed: Unable to connect to the device' >&2\nexit 1\n")
    agent.chmod(0o755)

    def check(reachable: str, ask: bool = True):
        (d / "vigil.cf").write_text(f"# fencing\nfence server6.example.com\n    agent {agent}\n"
                                    f"    reachable {reachable}\n")
        facts = HostFacts("server5.example.com")
        if ask:
            facts = dataclasses.replace(facts, fence_monitor=lambda a, p: asyncio.run(
                fence_monitor(a, p, 10)))
        return [e for e in loader.check(ConfigPaths(str(d)), facts).errors
                if e.location.path.endswith("vigil.cf")]

    [error] = check("no")
    assert error.location.line == 2
    assert "action=monitor failed (exit 1): Failed: Unable to connect" in error.message
    assert "action=monitor\n" in (tmp_path / "asked").read_text()
    assert check("yes") == []
    (tmp_path / "asked").unlink()
    assert check("no", ask=False) == []  # another host's check: the agent is not run
    assert not (tmp_path / "asked").exists()


def test_nat_with_director_announce_is_an_error_at_the_real_servers_line(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    (d / "web.cf").write_text("virtual=10.0.0.80:80\n\treal=10.0.0.1:80 gate\n"
                              "\treal=10.0.0.2:80 masq\n")
    (d / "haresources").write_text("server5.example.com 10.0.0.80 ldirectord::web.cf\n")
    facts = HostFacts("server5.example.com", resolver=ResourceResolver(
        builtins=frozenset({"IPaddr", "ldirectord"})))
    paths = ConfigPaths(str(d), str(tmp_path / "none"))
    assert loader.check(paths, facts).errors == ()  # NAT without announcing: fine
    (d / "vigil.cf").write_text("director_announce exabgp\n")
    [error] = loader.check(paths, facts).errors
    assert (Path(error.location.path).name, error.location.line) == ("web.cf", 3)
    assert "10.0.0.2 uses NAT (masq)" in error.message and "conntrackd_conf" in error.message
    conntrackd = tmp_path / "conntrackd.conf"
    conntrackd.write_text("Sync {\n  Mode FTFW {\n  }\n}\n")
    (d / "vigil.cf").write_text(f"director_announce exabgp\nconntrackd_conf {conntrackd}\n")
    assert loader.check(paths, facts).errors == ()


def test_director_announce_bird_wants_a_bird_conf_that_includes_and_exports_the_routes(
        tmp_path):
    d = seed_dir(tmp_path, "lvs")
    (d / "vigil.cf").write_text("director_announce bird\n")
    bird = tmp_path / "bird.conf"
    paths = ConfigPaths(str(d), str(tmp_path / "none"), str(bird))
    facts = HostFacts("server5.example.com")

    def said() -> list[str]:
        return [w.message for w in loader.check(paths, facts).warnings
                if "director_announce bird" in w.message]

    assert "cannot be read" in said()[0]
    bird.write_text("router id 198.51.100.5;\n# include \"/etc/bird/vigil-announce.conf\";\n")
    assert "does not include" in said()[0]  # a comment does not count
    bird.write_text('router id 198.51.100.5;\ninclude "/etc/bird/vigil-announce.conf";\n')
    assert "exports neither vigil_announce4 nor vigil_announce6" in said()[0]
    bird.write_text('include "/etc/bird/vigil-announce.conf";\nprotocol bgp uplink {\n'
                    '  ipv4 { export where proto = "vigil_announce4"; };\n}\n')
    assert said() == []
    (d / "vigil.cf").write_text("director_announce exabgp\n")
    bird.unlink()
    assert said() == []  # only bird's announcer needs bird.conf
