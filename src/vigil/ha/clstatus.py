"""heartbeat's `cl_status` verbs, answered from vigil's status (pure: data in, text out).

Monitoring scripts written for heartbeat 3.0.6 call `cl_status VERB ...` and
read its first line and exit code; these are the same, from the same source
text (tools/cl_status.c): 0 OK, 1 a "normal" failure (node or link down,
heartbeat stopped, parameter unset), 11 a bad sub-command or parameter, 13 an
unknown error. `-m` gives the human-readable sentences.
"""

from __future__ import annotations

import getopt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OK, NORMAL_FAIL, PARAMETER_ERROR, UNKNOWN_ERROR = 0, 1, 11, 13
#: sub-command -> its options (getopt style), as heartbeat's table has them
VERBS = {"hbstatus": "mv", "listnodes": "mpnv", "nodestatus": "m", "nodetype": "m",
         "listhblinks": "mv", "hblinkstatus": "m", "rscstatus": "m", "hbparameter": "mp:",
         "nodeweight": "m", "nodesite": "m", "clientstatus": "m"}
USAGE = ("Usage: cl_status <sub-command> [<options>] [<parameters>]\n"
         "Sub-commands: " + ", ".join(sorted(VERBS)) + "\n")


@dataclass
class Answer:
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    code: int = OK

    def text(self) -> tuple[str, str]:
        return ("".join(line + "\n" for line in self.out),
                "".join(line + "\n" for line in self.err))


def answer(argv: list[str], status: Mapping[str, Any] | None,
           parameters: Mapping[str, str], version: str) -> Answer:
    """`argv` without the program name; `status` is None when no daemon answers."""
    result = Answer()
    if not argv or argv[0] in ("-h", "--help"):
        result.out.append(USAGE.rstrip("\n"))
        return result
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        result.err.append(f"{verb}: invalid sub-command.")
        result.code = PARAMETER_ERROR
        return result
    try:
        options, words = getopt.getopt(rest, VERBS[verb])
    except getopt.GetoptError as exc:
        result.err.append(f"Error: {exc}")
        result.code = PARAMETER_ERROR
        return result
    flags = {name for name, _ in options}
    human = "-m" in flags
    if status is None:
        if verb == "hbstatus":
            result.out.append("Heartbeat is stopped on this machine.")
        else:
            result.err.append("Cannot signon with heartbeat")
            result.err.append("REASON: vigil heartbeat is not running")
        result.code = NORMAL_FAIL
        return result
    nodes = {n["name"]: n for n in status["nodes"]}
    if verb == "hbstatus":
        if "-v" not in flags:
            result.out.append("Heartbeat is running on this machine.")
        else:
            result.out.append(f"Heartbeat version {version}" if human else
                              f"version:\t{version}")
            result.out.append('Resources controlled by "haresources"' if human else
                              'managed by:\t"haresources"')
            _listnodes(result, nodes.values(), verbose=True, human=human)
        return result
    if verb == "listnodes":
        only = {"-p": "ping", "-n": "normal"}
        kinds = {only[f] for f in flags if f in only}
        chosen = [n for n in nodes.values() if len(kinds) != 1 or n["type"] in kinds]
        _listnodes(result, chosen, verbose="-v" in flags, human=human)
        return result
    if verb == "hbparameter":
        name = dict(options).get("-p")
        if not name:
            result.err.append("parameter name required")
            result.code = PARAMETER_ERROR
            return result
        value = version if name == "hbversion" else parameters.get(name)
        if value is None:
            result.err.append(f"Cannot get parameter {name}'s value")
            result.code = NORMAL_FAIL
            return result
        result.out.append(f"Heartbeat parameter {name}'s value: {value}" if human else value)
        return result
    if verb == "rscstatus":
        held = holding(status)
        result.out.append(f"This node is holding {held} resources." if human else held)
        return result
    if verb == "clientstatus":
        result.err.append("vigil has no heartbeat API clients")
        result.code = UNKNOWN_ERROR
        return result
    needed = 2 if verb == "hblinkstatus" else 1
    if len(words) < needed:
        result.err.append("Not enough parameters.")
        result.code = PARAMETER_ERROR
        return result
    node = nodes.get(words[0].lower())
    if node is None:
        result.err.append("Error. May be due to incorrect node name")
        result.code = PARAMETER_ERROR
        return result
    name = words[0]
    if verb == "nodestatus":
        state = node["status"]
        result.out.append(f"The cluster node {name} is {state}" if human else state)
        result.code = OK if state in ("active", "up", "ping") else NORMAL_FAIL
    elif verb == "nodetype":
        result.out.append(f"The node {name}'s type: {node['type']}" if human else node["type"])
    elif verb == "nodeweight":
        result.out.append(f"The weight of the cluster node {name} is 100" if human else "100")
    elif verb == "nodesite":
        result.out.append(f"The site of the cluster node {name} is " if human else "")
    elif verb == "listhblinks":
        _listlinks(result, node, verbose="-v" in flags, human=human)
    else:  # hblinkstatus
        links = {link["name"]: link["status"] for link in node.get("links", [])}
        state = links.get(words[1])
        if state is None:
            result.err.append("Cannot get heartbeat link status")
            result.err.append(f"REASON: no link {words[1]} to {name}")
            result.code = UNKNOWN_ERROR
            return result
        result.out.append(f"The node {name}'s heartbeat link {words[1]} is {state}" if human
                          else state)
        result.code = OK if state == "up" else NORMAL_FAIL
    return result


def holding(status: Mapping[str, Any]) -> str:
    """heartbeat's answer: none, local, foreign, all (home groups held here or not), or
    transition while a group is starting or stopping here."""
    me = status["node"]
    groups = status["groups"]
    if any(g["state"] in ("starting", "stopping", "cleaning") for g in groups):
        return "transition"
    mine = [g for g in groups if g["state"] in ("held", "stuck")]
    local = any(g["home"] == me for g in mine)
    foreign = any(g["home"] != me for g in mine)
    return "all" if local and foreign else "local" if local else \
        "foreign" if foreign else "none"


#: what `hbparameter -p` can read back (heartbeat's parameter table)
PARAMETERS = ("apiauth", "auto_failback", "baud", "debug", "debugfile", "deadping", "deadtime",
              "hopfudge", "initdead", "keepalive", "logfacility", "logfile", "msgfmt",
              "nice_failback", "node", "normalpoll", "stonith", "udpport", "warntime",
              "watchdog")


def parameters(hacf_text: str, status: Mapping[str, Any] | None) -> dict[str, str]:
    """ha.cf's values as written (the last line of a directive wins; `node` lists all),
    and the running daemon's timings for those ha.cf leaves to their defaults."""
    values: dict[str, str] = {}
    nodes: list[str] = []
    for raw in hacf_text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2 or words[0] not in PARAMETERS:
            continue
        if words[0] == "node":
            nodes.extend(w for word in words[1:] for w in word.split(",") if w)
        else:
            values[words[0]] = " ".join(words[1:])
    if nodes:
        values["node"] = " ".join(nodes)
    if status is not None:
        for name, seconds in status["timings"].items():
            values.setdefault(name, f"{seconds:g}")
        values.setdefault("auto_failback", str(status["auto_failback"]))
    values.setdefault("udpport", "694")
    return values


def _listnodes(result: Answer, nodes: Any, *, verbose: bool, human: bool) -> None:
    if human:
        result.out.append("The nodes are as follow:")
    for node in nodes:
        if verbose:
            result.out.append("")
            result.out.append(f"{node['name']}\t{node['status']}\t(nodetype: {node['type']})")
            _listlinks(result, node, verbose=True, human=human)
        else:
            result.out.append(node["name"])


def _listlinks(result: Answer, node: Mapping[str, Any], *, verbose: bool,
               human: bool) -> None:
    if human:
        result.out.append("\tthis node has the following heartbeat links:")
    for link in node.get("links", []):
        result.out.append(f"\t{link['name']}\t{link['status']}" if verbose
                          else f"\t{link['name']}")
