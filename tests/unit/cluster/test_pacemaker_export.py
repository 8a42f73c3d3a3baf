"""`vigil export pacemaker`: the tutorial's three setups as Pacemaker sees them.

The translation is checked as data (groups, clones, constraints, corosync.conf)
and then by Pacemaker itself: `crm_verify` validates every exported CIB and
`crm_simulate` plays the tutorial's failures on it (a node lost: fence, then
the groups move; connectivity lost; quorum lost: nothing runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vigil.cli.export import cmd_export_pacemaker, read_config
from vigil.cli.main import main
from vigil.cluster import pacemaker
from vigil.cluster.loader import ConfigPaths
from vigil.config.resolve import StaticResolver
from vigil.lab.seed import SEED_DIR

S5, S6 = "server5.example.com", "server6.example.com"
NO_DRBD = "/nonexistent/drbd.conf"

needs_crm_verify = pytest.mark.skipif(shutil.which("crm_verify") is None,
                                      reason="no crm_verify here (Debian: pacemaker-cli-utils)")
needs_crm_simulate = pytest.mark.skipif(shutil.which("crm_simulate") is None,
                                        reason="no crm_simulate here (Debian: pacemaker)")


def seed_dir(tmp_path: Path, variant: str, vigil_cf: str | None = None,
             hacf: str | None = None) -> Path:
    d = tmp_path / "ha.d"
    d.mkdir()
    (d / "ha.cf").write_text(hacf if hacf is not None else (SEED_DIR / "ha.cf").read_text())
    shutil.copy(SEED_DIR / f"haresources.{variant}", d / "haresources")
    shutil.copy(SEED_DIR / "ldirectord.cf", d / "ldirectord.cf")
    if vigil_cf is not None:
        (d / "vigil.cf").write_text(vigil_cf)
    return d


def export(d: Path, drbd_conf: str = NO_DRBD, nodes: tuple[str, ...] = (),
           addresses: dict[str, list[str]] | None = None) -> pacemaker.Export:
    config, diagnostics = read_config(ConfigPaths(str(d), drbd_conf))
    assert not [x for x in diagnostics if x.severity.name == "ERROR"], diagnostics
    return pacemaker.translate(config, nodes, addresses)


def drbd_conf(tmp_path: Path) -> str:
    conf = tmp_path / "drbd.conf"
    conf.write_text(f'include "{SEED_DIR}/drbd-mysqldata.res";\n')
    return str(conf)


FENCED = f"""\
fence {S5}
    agent fence_dummy
    type file
fence {S6}
    agent fence_dummy
    type file
"""


def messages(result: pacemaker.Export) -> list[str]:
    return [p.message for p in result.problems]


# ---------------------------------------------------------------------------
# The translation, as data


def test_mysqld_is_one_group_homed_on_server5(tmp_path):
    result = export(seed_dir(tmp_path, "mysqld"))
    pcmk = result.pacemaker
    assert pcmk.nodes == (S5, S6)
    [group] = pcmk.groups
    assert [(m.agent, m.params) for m in group.members] == [
        ("ocf:heartbeat:IPaddr2",
         (("ip", "172.25.254.100"), ("cidr_netmask", "24"), ("nic", "eth0"))),
        ("lsb:mysqld", ()),
    ]
    # auto_failback on: no stickiness, the home node preferred
    assert ("resource-stickiness", "0") in pcmk.rsc_defaults
    assert pacemaker.LocationPreference(f"loc_{group.id}_home", group.id, S5,
                                        str(pacemaker.HOME_SCORE)) in pcmk.locations
    # ha.cf's ping node: a ping clone and a rule keeping the group where it answers
    [ping] = pcmk.clones
    assert ping.primitive.agent == "ocf:pacemaker:ping"
    assert ("host_list", "172.25.254.250") in ping.primitive.params
    assert pacemaker.LocationRule(f"loc_{group.id}_on_ping", group.id) in pcmk.locations
    # no fence section: said, and stonith off
    assert ("stonith-enabled", "false") in pcmk.properties
    assert any(m.startswith("no 'fence NODE' section in vigil.cf") for m in messages(result))
    assert result.errors == ()


def test_drbd_mysql_promotes_the_volume_before_the_group(tmp_path):
    result = export(seed_dir(tmp_path, "drbd-mysql"), drbd_conf(tmp_path))
    pcmk = result.pacemaker
    [group] = pcmk.groups
    assert [m.agent for m in group.members] == [
        "ocf:heartbeat:IPaddr2", "ocf:heartbeat:Filesystem", "lsb:mysqld"]
    assert group.members[1].params == (("device", "/dev/drbd1"), ("directory", "/var/lib/mysql"),
                                       ("fstype", "ext4"))
    drbd = next(c for c in pcmk.clones if c.primitive.type == "volume")
    assert drbd.primitive.agent == "ocf:vigil:volume"
    assert drbd.primitive.params == (("volume", "mysqldata"),)
    assert ("promotable", "true") in drbd.meta and ("clone-max", "2") in drbd.meta
    assert pcmk.colocations == (pacemaker.Colocation(
        f"col_{group.id}_on_{drbd.id}", group.id, drbd.id, "Promoted"),)
    assert pcmk.orders == (pacemaker.Order(
        f"ord_{drbd.id}_before_{group.id}", drbd.id, group.id, "promote", "start"),)
    # heartbeat started the address before drbddisk; Pacemaker starts the group after it
    [moved] = [p for p in result.problems if "started before it" in p.message]
    assert moved.location.line == 1 and moved.location.path.endswith("haresources")


def test_nodes_with_drbds_kernel_module_get_linbits_agent(tmp_path, capsys):
    d = seed_dir(tmp_path, "drbd-mysql")
    config, _ = read_config(ConfigPaths(str(d), drbd_conf(tmp_path)))
    pcmk = pacemaker.translate(config, volume_agent="linbit").pacemaker
    [drbd] = [c for c in pcmk.clones if c.primitive.type == "drbd"]
    assert drbd.primitive.agent == "ocf:linbit:drbd"
    assert drbd.primitive.params == (("drbd_resource", "mysqldata"),)
    out = tmp_path / "out"
    assert main(["export", "pacemaker", "--dir", str(d), "--drbd-conf", drbd_conf(tmp_path),
                 "--volume-agent", "linbit", "--format", "crmsh", "-o", str(out)]) == 0
    assert "primitive drbd_mysqldata ocf:linbit:drbd" in (out / "crm.txt").read_text()


def test_drbd_clone_stays_on_the_hosts_drbd_names(tmp_path):
    d = seed_dir(tmp_path, "drbd-mysql")
    result = export(d, drbd_conf(tmp_path), nodes=(S5, S6, "server7"))
    drbd = next(c for c in result.pacemaker.clones if c.primitive.type == "volume")
    assert ("clone-max", "2") in drbd.meta
    assert [(x.rsc, x.node, x.score) for x in result.pacemaker.locations
            if isinstance(x, pacemaker.LocationPreference) and x.rsc == drbd.id] == [
        (drbd.id, "server7", "-INFINITY")]


def test_two_groups_on_one_volume_share_its_clone(tmp_path):
    d = seed_dir(tmp_path, "drbd-mysql")
    (d / "haresources").write_text(
        f"{S5} drbddisk::mysqldata Filesystem::/dev/drbd1::/var/lib/mysql::ext4 mysqld\n"
        f"{S5} 172.25.254.101 drbddisk::mysqldata httpd\n")
    pcmk = export(d, drbd_conf(tmp_path)).pacemaker
    [drbd] = [c for c in pcmk.clones if c.primitive.type == "volume"]
    assert sorted(c.rsc for c in pcmk.colocations) == sorted(g.id for g in pcmk.groups)
    assert {c.with_rsc for c in pcmk.colocations} == {drbd.id}


def test_lvs_runs_ldirectord_with_its_config_file(tmp_path):
    d = seed_dir(tmp_path, "lvs")
    [group] = export(d).pacemaker.groups
    assert [m.agent for m in group.members] == [
        "ocf:heartbeat:IPaddr2", "ocf:vigil:director", "lsb:httpd"]
    # where the nodes keep it, whichever copy was exported
    assert group.members[1].params == (("configfile", "/etc/ha.d/ldirectord.cf"),)


def test_auto_failback_off_is_infinite_stickiness(tmp_path):
    hacf = (SEED_DIR / "ha.cf").read_text().replace("auto_failback on", "auto_failback off")
    pcmk = export(seed_dir(tmp_path, "mysqld", hacf=hacf)).pacemaker
    assert ("resource-stickiness", "INFINITY") in pcmk.rsc_defaults


def test_fence_sections_become_stonith_resources(tmp_path):
    result = export(seed_dir(tmp_path, "mysqld", vigil_cf=FENCED))
    pcmk = result.pacemaker
    assert [(p.agent, p.params) for p in pcmk.primitives] == [
        ("stonith:fence_dummy", (("type", "file"), ("pcmk_host_list", S5))),
        ("stonith:fence_dummy", (("type", "file"), ("pcmk_host_list", S6))),
    ]
    assert ("stonith-enabled", "true") in pcmk.properties
    # a node never runs the device that fences itself
    assert {(x.rsc, x.node) for x in pcmk.locations if isinstance(x, pacemaker.LocationPreference)
            and x.score == "-INFINITY"} == {(p.id, p.params[-1][1]) for p in pcmk.primitives}
    assert not any("fence" in m for m in messages(result))


def test_what_does_not_map_is_said_line_by_line(tmp_path):
    hacf = (SEED_DIR / "ha.cf").read_text() + "serial /dev/ttyS0\nstonith_host * null server5\n"
    d = seed_dir(tmp_path, "mysqld", hacf=hacf,
                 vigil_cf="fence_command /usr/local/sbin/fence-peer %n\n")
    (d / "haresources").write_text(f"{S5} 172.25.254.100/24/eth0 SendArp::1.2.3.4/eth0 "
                                   "httpd::extra\n")
    result = export(d)
    found = {(Path(p.location.path).name, p.location.line, p.message.split(":")[0])
             for p in result.problems}
    assert ("ha.cf", 14, "serial /dev/ttyS0") in found
    assert ("ha.cf", 15, "stonith_host null") in found
    assert ("haresources", 1, "SendArp") in found
    assert ("haresources", 1, "httpd") in found
    assert any(p.message.startswith("fence_command is not exported") for p in result.problems)
    [group] = result.pacemaker.groups
    assert [m.agent for m in group.members] == ["ocf:heartbeat:IPaddr2", "lsb:httpd"]


# ---------------------------------------------------------------------------
# corosync.conf


def test_corosync_two_nodes_from_the_seed(tmp_path):
    text = export(seed_dir(tmp_path, "mysqld")).corosync_conf
    assert "transport: knet" in text
    assert "token: 30000" in text  # deadtime 30
    assert "two_node: 1" in text
    assert f"ring0_addr: {S5}" in text and f"ring0_addr: {S6}" in text


def test_corosync_ucast_media_become_links_by_node_address(tmp_path):
    hacf = (SEED_DIR / "ha.cf").read_text().replace(
        "bcast eth0\t\t# Linux",
        "ucast eth1 10.0.0.5\nucast eth1 10.0.0.6\nucast eth2 192.0.2.5\nucast eth2 192.0.2.6\n"
        "ucast eth3 198.51.100.9\n")
    d = seed_dir(tmp_path, "mysqld", hacf=hacf)
    result = export(d, addresses={S5: ["10.0.0.5", "192.0.2.5"], S6: ["10.0.0.6", "192.0.2.6"]})
    text = result.corosync_conf
    assert "ring0_addr: 10.0.0.5" in text and "ring1_addr: 192.0.2.6" in text
    assert "ring2_addr" not in text
    assert any(m.startswith("ucast eth3 198.51.100.9: no cluster node has this address")
               for m in messages(result))


def test_corosync_three_nodes_have_no_two_node_mode(tmp_path):
    result = export(seed_dir(tmp_path, "mysqld"), nodes=(S5, S6, "server7"))
    assert "two_node" not in result.corosync_conf
    assert "nodeid: 3" in result.corosync_conf


@pytest.mark.skipif(shutil.which("corosync") is None, reason="no corosync here")
def test_corosync_accepts_the_exported_file(tmp_path):
    """`corosync -t` checks the file for the node it runs on: export for 127.0.0.1."""
    hacf = (SEED_DIR / "ha.cf").read_text().replace(
        "bcast eth0\t\t# Linux", "ucast lo 127.0.0.1\nucast lo 127.0.0.2\n")
    result = export(seed_dir(tmp_path, "mysqld", hacf=hacf),
                    addresses={S5: ["127.0.0.1"], S6: ["127.0.0.2"]})
    key = tmp_path / "authkey"
    key.write_bytes(bytes(range(256)))
    key.chmod(0o600)
    conf = tmp_path / "corosync.conf"
    conf.write_text(result.corosync_conf.replace(
        "    transport: knet\n", f"    transport: knet\n    keyfile: {key}\n"))
    run = subprocess.run(["corosync", "-t", "-c", str(conf)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


# ---------------------------------------------------------------------------
# Pacemaker's own tools


def with_status(cib: str, nodes: tuple[str, ...], attributes: dict[str, str],
                quorum: bool = True) -> str:
    """The CIB with every node online (and these node attributes), as a running cluster has."""
    root = ET.fromstring(cib)
    root.set("have-quorum", "1" if quorum else "0")
    status = root.find("status")
    assert status is not None
    for number, node in enumerate(nodes, start=1):
        state = ET.SubElement(status, "node_state", {
            "id": str(number), "uname": node, "in_ccm": "true", "crmd": "online",
            "join": "member", "expected": "member"})
        attrs = ET.SubElement(ET.SubElement(state, "transient_attributes", id=str(number)),
                              "instance_attributes", id=f"status-{number}")
        for name, value in attributes.items():
            ET.SubElement(attrs, "nvpair", id=f"status-{number}-{name}", name=name, value=value)
    return ET.tostring(root, encoding="unicode")


def crm_verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["crm_verify", "--xml-file", str(path), "-V"], capture_output=True,
                          text=True, timeout=120, check=False)


def simulate(source: Path, target: Path, *options: str) -> str:
    run = subprocess.run(["crm_simulate", "--xml-file", str(source), "--simulate",
                          "--save-output", str(target), *options],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def placement(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Each resource's (role, node) pairs in a simulated CIB."""
    run = subprocess.run(["crm_simulate", "--xml-file", str(path), "--output-as=xml"],
                         capture_output=True, text=True, timeout=120, check=True)
    out: dict[str, list[tuple[str, str]]] = {}
    for rsc in ET.fromstring(run.stdout).iter("resource"):
        for node in rsc.iter("node"):
            out.setdefault(rsc.get("id", ""), []).append((rsc.get("role", ""),
                                                         node.get("name", "")))
    return out


SETUPS = [("mysqld", False), ("drbd-mysql", True), ("lvs", False)]


@needs_crm_verify
@pytest.mark.parametrize(("variant", "uses_drbd"), SETUPS)
@pytest.mark.parametrize("fenced", [False, True], ids=["no-fencing", "fencing"])
def test_crm_verify_accepts_the_exported_cib(tmp_path, variant, uses_drbd, fenced):
    d = seed_dir(tmp_path, variant, vigil_cf=FENCED if fenced else None)
    result = export(d, drbd_conf(tmp_path) if uses_drbd else NO_DRBD)
    cib = pacemaker.render_cib(result.pacemaker)
    bare = tmp_path / "cib.xml"
    bare.write_text(cib)
    run = crm_verify(bare)
    # an empty status has no quorum: with fencing on, Pacemaker warns of unfenceable nodes
    assert run.returncode == (78 if fenced else 0), run.stdout + run.stderr
    assert "error" not in run.stderr.lower(), run.stderr
    running = tmp_path / "running.xml"
    running.write_text(with_status(cib, (S5, S6), {"pingd": "1000"}))
    run = crm_verify(running)
    assert run.returncode == 0, run.stdout + run.stderr


def started_cluster(tmp_path: Path, variant: str, uses_drbd: bool, vigil_cf: str | None,
                    nodes: tuple[str, ...] = (S5, S6)) -> tuple[Path, pacemaker.Export]:
    d = seed_dir(tmp_path, variant, vigil_cf=vigil_cf)
    result = export(d, drbd_conf(tmp_path) if uses_drbd else NO_DRBD,
                    nodes if nodes != (S5, S6) else ())
    attributes = {"pingd": "1000"}
    if uses_drbd:  # ocf:vigil:volume's promotion score, as it sets it on an UpToDate disk
        attributes["master-drbd_mysqldata"] = "10000"
    fresh = tmp_path / "fresh.xml"
    fresh.write_text(with_status(pacemaker.render_cib(result.pacemaker), nodes, attributes))
    up = tmp_path / "up.xml"
    simulate(fresh, up)
    return up, result


def group_nodes(where: dict[str, list[tuple[str, str]]], group: pacemaker.Group) -> set[str]:
    return {node for m in group.members for _, node in where.get(m.id, [])}


@needs_crm_simulate
@pytest.mark.parametrize(("variant", "uses_drbd"), SETUPS)
def test_node_loss_moves_the_group(tmp_path, variant, uses_drbd):
    up, result = started_cluster(tmp_path, variant, uses_drbd, None)
    [group] = result.pacemaker.groups
    assert group_nodes(placement(up), group) == {S5}  # its home node
    down = tmp_path / "down.xml"
    simulate(up, down, "--node-fail", S5)
    where = placement(down)
    assert group_nodes(where, group) == {S6}
    if uses_drbd:
        assert ("Promoted", S6) in where["drbd_mysqldata"]


@needs_crm_simulate
def test_node_loss_is_fenced_before_the_group_moves(tmp_path):
    up, result = started_cluster(tmp_path, "lvs", False, FENCED)
    [group] = result.pacemaker.groups
    down = tmp_path / "down.xml"
    out = simulate(up, down, "--node-fail", S5)
    assert f"Fence (reboot) {S5}" in out
    steps = out.split("Executing Cluster Transition:")[1]
    assert steps.index(f"Fencing {S5}") < steps.index(f"start on {S6}")
    assert group_nodes(placement(down), group) == {S6}


@needs_crm_simulate
def test_auto_failback_on_brings_the_group_home(tmp_path):
    up, result = started_cluster(tmp_path, "mysqld", False, None)
    [group] = result.pacemaker.groups
    down, back = tmp_path / "down.xml", tmp_path / "back.xml"
    simulate(up, down, "--node-fail", S5)
    simulate(down, back, "--node-up", S5)
    assert group_nodes(placement(back), group) == {S5}


@needs_crm_simulate
def test_lost_ping_node_moves_the_group(tmp_path):
    up, result = started_cluster(tmp_path, "mysqld", False, None)
    [group] = result.pacemaker.groups
    root = ET.parse(up).getroot()
    for nvpair in root.iter("nvpair"):
        if nvpair.get("name") == "pingd" and nvpair.get("id", "").startswith("status-1-"):
            nvpair.set("value", "0")  # server5 reaches no ping node any more
    cut = tmp_path / "cut.xml"
    cut.write_text(ET.tostring(root, encoding="unicode"))
    moved = tmp_path / "moved.xml"
    simulate(cut, moved)
    assert group_nodes(placement(moved), group) == {S6}


@needs_crm_simulate
def test_quorum_loss_stops_everything(tmp_path):
    nodes = (S5, S6, "server7")
    up, result = started_cluster(tmp_path, "mysqld", False, None, nodes)
    [group] = result.pacemaker.groups
    assert group_nodes(placement(up), group) == {S5}
    alone = tmp_path / "alone.xml"
    # server5 keeps running alone: the other two are gone, and with them the quorum
    simulate(up, alone, "--node-down", S6, "--node-down", "server7", "--quorum", "0")
    assert group_nodes(placement(alone), group) == set()


# ---------------------------------------------------------------------------
# The command


def test_command_writes_both_files(tmp_path, capsys):
    d = seed_dir(tmp_path, "drbd-mysql")
    out = tmp_path / "out"
    code = main(["export", "pacemaker", "--dir", str(d), "--drbd-conf", drbd_conf(tmp_path),
                 "--format", "crmsh", "-o", str(out)])
    assert code == 0
    crm = (out / "crm.txt").read_text()
    assert "primitive drbd_mysqldata ocf:vigil:volume" in crm
    assert "two_node: 1" in (out / "corosync.conf").read_text()
    err = capsys.readouterr().err
    assert f"{d}/haresources:1:52: warning: drbddisk::mysqldata:" in err


def test_command_prints_the_cib_and_fails_on_a_broken_haresources(tmp_path, capsys):
    d = seed_dir(tmp_path, "mysqld")
    args = argparse.Namespace(dir=str(d), drbd_conf=NO_DRBD, nodes=None, format="cib",
                              output_dir=None, corosync=False)
    assert cmd_export_pacemaker(args, StaticResolver({})) == 0
    assert capsys.readouterr().out.startswith("<cib ")
    (d / "haresources").write_text(f"{S5} MailTo\n")
    assert cmd_export_pacemaker(args, StaticResolver({})) == 1
    assert f"{d}/haresources:1:" in capsys.readouterr().err


def configuration_shape(cib: str) -> dict[str, object]:
    """What a CIB configures, ids and agents (not the ids of nvpairs and ops)."""
    conf = ET.fromstring(cib).find("configuration")
    assert conf is not None
    return {
        "primitives": sorted((p.get("id"), p.get("class"), p.get("provider"), p.get("type"),
                              tuple(sorted((n.get("name"), n.get("value")) for n in
                                           p.iter("nvpair"))))
                             for p in conf.iter("primitive")),
        "groups": sorted((g.get("id"), tuple(p.get("id") for p in g.findall("primitive")))
                         for g in conf.iter("group")),
        "clones": sorted(c.get("id") for c in conf.iter("clone")),
        "constraints": sorted((c.tag, c.get("id"), c.get("rsc"), c.get("score"))
                              for c in conf.iter() if c.tag.startswith("rsc_")),
        "properties": sorted((n.get("name"), n.get("value"))
                             for n in conf.find("crm_config").iter("nvpair")),
        "defaults": sorted((n.get("name"), n.get("value"))
                           for n in conf.find("rsc_defaults").iter("nvpair")),
        "nodes": sorted(n.get("uname") for n in conf.iter("node")),
    }


@needs_crm_verify
@pytest.mark.skipif(shutil.which("crm") is None, reason="no crmsh here")
@pytest.mark.parametrize(("variant", "uses_drbd"), SETUPS)
def test_crmsh_text_loads_as_the_same_cib(tmp_path, variant, uses_drbd):
    d = seed_dir(tmp_path, variant, vigil_cf=FENCED)
    result = export(d, drbd_conf(tmp_path) if uses_drbd else NO_DRBD)
    crm = tmp_path / "crm.txt"
    crm.write_text(pacemaker.render_crmsh(result.pacemaker))
    target = tmp_path / "loaded.xml"
    target.write_text(f'<cib validate-with="{pacemaker.CIB_SCHEMA}" admin_epoch="0" epoch="0" '
                      'num_updates="0"><configuration><crm_config/><nodes/><resources/>'
                      '<constraints/></configuration><status/></cib>\n')
    # crmsh edits a CIB file (CIB_file) as it would the live one; -F: commit although the
    # init scripts the groups name are not on this machine
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run(["crm", "-F", "-D", "plain", "configure", "load", "update", str(crm)],
                         env={"CIB_file": str(target), "HOME": str(home),
                              "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    loaded = configuration_shape(target.read_text())
    assert loaded["groups"] and loaded["constraints"]
    assert loaded == configuration_shape(pacemaker.render_cib(result.pacemaker))


@needs_crm_verify
@pytest.mark.skipif(shutil.which("pcs") is None, reason="no pcs here (Debian: pcs)")
@pytest.mark.parametrize(("variant", "uses_drbd"), [("drbd-mysql", True), ("lvs", False)])
def test_pcs_script_builds_the_same_cib(tmp_path, variant, uses_drbd):
    """pcs.sh run against a CIB file (CIB=FILE: pcs -f, nothing pushed) gives the exported
    CIB's resources, groups, clones and constraints, which crm_verify accepts."""
    d = seed_dir(tmp_path, variant, vigil_cf=FENCED)
    out = tmp_path / "out"
    assert main(["export", "pacemaker", "--dir", str(d), "--drbd-conf",
                 drbd_conf(tmp_path) if uses_drbd else NO_DRBD, "--format", "pcs",
                 "-o", str(out)]) == 0
    script = out / "pcs.sh"
    assert os.access(script, os.X_OK)
    target = tmp_path / "built.xml"
    empty = subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True)
    target.write_text(empty.stdout)
    home = tmp_path / "home"
    home.mkdir()
    # FORCE: the init scripts and vigil's own agents the groups name are not installed here
    run = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=300,
                         check=False, env={"CIB": str(target), "FORCE": "--force",
                                           "HOME": str(home),
                                           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    verify = subprocess.run(["crm_verify", "-x", str(target)], capture_output=True, text=True,
                            check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    built = configuration_shape(target.read_text())
    wanted = configuration_shape(pacemaker.render_cib(export(
        d, drbd_conf(tmp_path) if uses_drbd else NO_DRBD).pacemaker))
    assert built["groups"] and built["constraints"]
    del built["nodes"], wanted["nodes"]  # a running cluster's nodes come from corosync
    assert built == wanted


def test_command_without_haresources_writes_nothing(tmp_path, capsys):
    d = seed_dir(tmp_path, "mysqld")
    (d / "haresources").unlink()
    out = tmp_path / "out"
    assert main(["export", "pacemaker", "--dir", str(d), "-o", str(out)]) == 1
    assert not out.exists()
    assert f"{d}/haresources: error: cannot read" in capsys.readouterr().err
