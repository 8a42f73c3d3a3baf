"""Scene 0: the seed's machines exist, have their names and addresses, and reach each other."""

from __future__ import annotations

from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.lab import Lab


def run(lab: Lab, timeline: Timeline) -> SceneResult:
    """Show the topology working."""
    result = SceneResult("topology")
    timeline.scene("the seed's machines on one host")
    for host in lab.hosts.values():
        name = host.run(["uname", "-n"]).stdout.strip()
        ports = ", ".join(
            f"{p.ifname} {p.addresses[0]}" for p in host.spec.ports
        )
        timeline.event(f"{host.name:<8} uname -n = {name:<22} {ports}")
    failures = []
    hosts = list(lab.hosts.values())
    for source in hosts:
        for target in hosts:
            if source is target:
                continue
            done = source.run(
                ["ping", "-c", "1", "-W", "1", target.address()], check=False
            )
            if done.returncode != 0:
                failures.append(f"{source.name}->{target.name}")
    pairs = len(hosts) * (len(hosts) - 1)
    timeline.event(f"ping between every pair of hosts: {pairs - len(failures)}/{pairs} answered")
    if failures:
        timeline.note("unanswered: " + ", ".join(failures))
    server5, server6 = lab.host("server5"), lab.host("server6")
    server5.write_file("/etc/ha.d/demo-marker", "written on server5\n")
    private = not server6.path("/etc/ha.d/demo-marker").exists()
    timeline.event(
        "/etc/ha.d is private to each host: "
        + ("a file written on server5 is absent on server6" if private else "NOT private")
    )
    hb = server5.run(["ping", "-c", "1", "-W", "1", server6.address("hb")], check=False)
    timeline.event(
        "second heartbeat link server5 eth1 -> server6 eth1: "
        + ("up" if hb.returncode == 0 else "DOWN")
    )
    result.expect(not failures, "unanswered pings: " + ", ".join(failures))
    result.expect(private, "/etc/ha.d is shared between server5 and server6")
    result.expect(hb.returncode == 0, "the heartbeat link eth1 does not answer")
    result.notes["reachability"] = f"{pairs - len(failures)}/{pairs} pairs reach each other"
    return result
