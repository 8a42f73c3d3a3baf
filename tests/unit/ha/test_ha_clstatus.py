"""cl_status's verbs from vigil's status: heartbeat's lines and exit codes."""

from __future__ import annotations

from vigil.ha.clstatus import answer, holding, parameters

STATUS = {
    "node": "n1",
    "timings": {"keepalive": 0.1, "deadtime": 0.5, "warntime": 0.3, "initdead": 1.0,
                "deadping": 0.5},
    "auto_failback": "on",
    "nodes": [
        {"name": "n1", "type": "normal", "status": "active", "self": True,
         "links": [{"name": "eth0", "status": "up"}, {"name": "eth1", "status": "up"}]},
        {"name": "n2", "type": "normal", "status": "dead",
         "links": [{"name": "eth0", "status": "dead"}, {"name": "eth1", "status": "up"}]},
        {"name": "198.51.100.250", "type": "ping", "status": "ping"},
    ],
    "groups": [{"key": "a", "home": "n1", "state": "held"},
               {"key": "b", "home": "n2", "state": "released"}],
}


def run(*argv, status=STATUS, hacf=""):
    result = answer(list(argv), status, parameters(hacf, status), "vigil 1.0")
    out, err = result.text()
    return out, err, result.code


def test_node_and_link_states_with_heartbeats_exit_codes():
    assert run("nodestatus", "n1") == ("active\n", "", 0)
    assert run("nodestatus", "N2") == ("dead\n", "", 1)
    assert run("nodestatus", "198.51.100.250")[2] == 0  # a ping node that answers
    assert run("nodestatus", "-m", "n2")[0] == "The cluster node n2 is dead\n"
    assert run("nodestatus")[2] == 11 and run("nodestatus", "n9")[2] == 11
    assert run("hblinkstatus", "n2", "eth0") == ("dead\n", "", 1)
    assert run("hblinkstatus", "n2", "eth1") == ("up\n", "", 0)
    assert run("hblinkstatus", "n2", "eth7")[2] == 13
    assert run("nodetype", "198.51.100.250")[0] == "ping\n"
    assert run("listhblinks", "n2")[0] == "\teth0\n\teth1\n"
    assert run("listhblinks", "-v", "n2")[0] == "\teth0\tdead\n\teth1\tup\n"


def test_listnodes_filters_and_hbstatus():
    assert run("listnodes")[0].split() == ["n1", "n2", "198.51.100.250"]
    assert run("listnodes", "-p")[0].split() == ["198.51.100.250"]
    assert run("listnodes", "-n")[0].split() == ["n1", "n2"]
    assert run("hbstatus") == ("Heartbeat is running on this machine.\n", "", 0)
    assert run("hbstatus", status=None) == ("Heartbeat is stopped on this machine.\n", "", 1)
    _, err, code = run("nodestatus", "n1", status=None)
    assert code == 1 and "Cannot signon with heartbeat" in err
    assert run("bogus")[2] == 11 and run("listnodes", "-x")[2] == 11


def test_rscstatus_says_which_groups_this_node_holds():
    assert run("rscstatus") == ("local\n", "", 0)
    both = {**STATUS, "groups": [{"key": "a", "home": "n1", "state": "held"},
                                 {"key": "b", "home": "n2", "state": "held"}]}
    assert holding(both) == "all"
    assert holding({**STATUS, "groups": [{"key": "b", "home": "n2", "state": "held"}]}) \
        == "foreign"
    assert holding({**STATUS, "groups": [{"key": "a", "home": "n1", "state": "starting"}]}) \
        == "transition"
    assert holding({**STATUS, "groups": []}) == "none"


def test_hbparameter_reads_ha_cf_as_written_and_the_daemons_defaults():
    hacf = "keepalive 100ms # fast\ndeadtime 1\nnode n1\nnode n2, n3\nudpport 695\n"
    assert run("hbparameter", "-p", "keepalive", hacf=hacf)[0] == "100ms\n"
    assert run("hbparameter", "-p", "node", hacf=hacf)[0] == "n1 n2 n3\n"
    assert run("hbparameter", "-p", "initdead", hacf=hacf)[0] == "1\n"  # the daemon's
    assert run("hbparameter", "-p", "hbversion")[0] == "vigil 1.0\n"
    assert run("hbparameter", "-p", "watchdog")[2] == 1
    assert run("hbparameter")[2] == 11
