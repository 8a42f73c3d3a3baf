"""What the kernel data-path lab tests share: the seed's LVS-DR set-up on the lab,
HTTP clients (one request per connection, or long-lived), counters read from
nftables inside a host, and the slot the kernel will pick for a connection."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "director"))
from director_lab_support import control, nginx

from vigil.dataplane.plan import Environment, Route, build_plan, owner_of
from vigil.director.codec import table_from_json
from vigil.lab import Lab
from vigil.lab.host import Host
from vigil.lab.seed import lab_file
from vigil.testing import vigil_command, wait_until
from vigil.testing.http import HttpConnection

VIP = "198.51.100.100"
VIP6 = "2001:db8:0:1::100"
RS1, RS2 = "198.51.100.1", "198.51.100.2"
CLIENT = "198.51.100.10"
NAMES = {RS1: "rs1", RS2: "rs2", "2001:db8:0:1::1": "rs1", "2001:db8:0:1::2": "rs2"}
#: the seed's ldirectord.cf with an IPv6 virtual service beside its IPv4 one
CONFIG_WITH_IPV6 = lab_file("ldirectord.cf") + f"""virtual6=[{VIP6}]:80
\treal6=[2001:db8:0:1::1]:80 gate
\treal6=[2001:db8:0:1::2]:80 gate
\tservice=http
\tscheduler=rr
\tprotocol=tcp
\tchecktype=negotiate
"""
#: nginx keeps idle keep-alive connections this long: "long-lived" for these tests.
KEEPALIVE = "keepalive_timeout 600s; keepalive_requests 100000;"


def vigil(host: Host, *args: str, check: bool = True, timeout: float = 60.0):
    return host.run(vigil_command(*args), check=check, timeout=timeout)


def real_servers(lab: Lab, vips: tuple[str, ...] = (VIP,)) -> dict[str, Any]:
    """nginx on rs1 and rs2 answering their own name, set up as the seed's real servers."""
    servers = {}
    for name in ("rs1", "rs2"):
        host = lab.host(name)
        extra = KEEPALIVE + ("" if len(vips) == 1 else " listen [::]:80;")
        servers[name] = nginx(host, name, listen="80", extra=extra)
        for vip in vips:
            vigil(host, "realserver", "start", "--vip", vip)
    return servers


def start_director(lab: Lab, host: str = "server5", config: str | None = None,
                   vips: tuple[str, ...] = (VIP,)) -> Host:
    """The seed's ldirectord.cf (or `config`) run by `vigil director` on a director."""
    director = lab.host(host)
    for vip in vips:
        prefix = 64 if ":" in vip else 24
        lab.add_address(host, "eth0", f"{vip}/{prefix}")
    director.write_file("/etc/ha.d/ldirectord.cf", config or lab_file("ldirectord.cf"))
    vigil(director, "director", "start")
    status = control(director, {"command": "status"})
    assert status["backend"] == "nftables"
    return director


def table(director: Host):
    return table_from_json(control(director, {"command": "status"})["table"])


def weights(director: Host, vip: str = VIP, port: int = 80) -> dict[str, int]:
    for service in table(director):
        if service.key.address == vip and service.key.port == port:
            return {r.address: r.weight for r in service.reals}
    return {}


def wait_weights(director: Host, expected: dict[str, int], timeout: float = 20.0,
                 vip: str = VIP) -> None:
    wait_until(lambda: weights(director, vip) == expected, timeout,
               f"director table {expected}")


def settled(director: Host) -> bool:
    """The director's data path left its learning (or holding) period."""
    return "nftables.settled" in director.read_file("/var/log/ldirectord.log")


def predicted(director: Host, client: str, port: int, vip: str = VIP) -> str:
    """Which real server (rs1/rs2) the kernel sends a new connection from client:port to,
    computed from the director's table the way the kernel hashes (vigil.dataplane)."""
    current = table(director)
    routes = {r.address: Route("eth0") for s in current for r in s.reals}
    plan = build_plan(current, Environment.of(["eth0"], routes))
    service = next(s for s in plan.services if s.key.address == vip)
    key = owner_of(service, client, port)
    return NAMES[key.address] if key is not None else "none"


def changes(director: Host) -> int:
    """How many times the director has changed its table, or the kernel's data path for any
    reason (a transition window's end, the host's interfaces), so far (its log says)."""
    log = director.read_file("/var/log/ldirectord.log")
    return log.count("table.applied") + log.count("nftables.commit")


def answers_and_predictions(lab: Lab, director: Host, ports, vip: str = VIP,
                            client: str = CLIENT, attempts: int = 3):
    """New connections from `ports`: what answered, and what the slots predict. A check
    flapping under load changes the table meanwhile: then the round is run again, from
    other source ports (a connection the data path recorded keeps its server)."""
    ports = list(ports)
    for attempt in range(attempts):
        shifted = [p + 500 * attempt for p in ports]
        before = changes(director)
        answers = [fetch(lab, vip, source_port=p) for p in shifted]
        predictions = [predicted(director, client, p, vip) for p in shifted]
        if changes(director) == before:
            if answers != predictions:  # say what the director did, for the reader
                print(director.read_file("/var/log/ldirectord.log")[-3000:])
            return answers, predictions
    log = director.read_file("/var/log/ldirectord.log")[-2000:]
    raise AssertionError(f"the director's table kept changing:\n{log}")


def fetch(lab: Lab, address: str = VIP, source_port: int = 0, timeout: float = 5.0) -> str:
    """One request on a new connection from the client."""
    connection = HttpConnection(lab.host("client"), address, source_port=source_port,
                                timeout=timeout)
    try:
        return connection.get(close=True)
    finally:
        connection.close()


def nft(host: Host, *args: str, check: bool = True):
    return host.run(["nft", *args], check=check)


def nft_json(host: Host, *args: str) -> list[dict[str, Any]]:
    out = nft(host, "-j", *args).stdout
    return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]


def ruleset_without_counts(host: Host) -> str:
    """`nft -a -j list ruleset` (objects, elements, handles) with counter values left out."""
    objects = json.loads(nft(host, "-a", "-j", "list", "ruleset").stdout)["nftables"]

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("packets", "bytes")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(objects), sort_keys=True)


def install_probe(host: Host, name: str, matches: list[str], device: str = "eth0") -> None:
    """A netdev ingress counter per match expression (text is fine for a test probe)."""
    rules = "\n".join(f"    {m} counter" for m in matches)
    host.write_file(f"/run/{name}.nft", f"""
table netdev {name} {{
  chain probe {{
    type filter hook ingress device "{device}" priority -500; policy accept;
{rules}
  }}
}}
""")
    nft(host, "-f", f"/run/{name}.nft")


def probe_counts(host: Host, name: str) -> list[int]:
    return [next(e["counter"]["packets"] for e in o["rule"]["expr"] if "counter" in e)
            for o in nft_json(host, "list", "table", "netdev", name) if "rule" in o]


def mac_of(host: Host, device: str = "eth0") -> str:
    link = json.loads(host.run(["ip", "-j", "link", "show", device]).stdout)[0]
    return link["address"]
