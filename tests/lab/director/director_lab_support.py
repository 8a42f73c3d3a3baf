"""Helpers the director's lab tests share: nginx in a host, HTTP from the client,
the director started in server5 and its status read over its control socket."""

from __future__ import annotations

import sys
import time

from vigil.control.client import exchange
from vigil.lab import Lab
from vigil.lab.host import Host, LabProcess
from vigil.testing import director_pair, wait_until

VIP = director_pair.VIP
PYTHON = sys.executable


def nginx(host: Host, body: str, listen: str = "80", extra: str = "",
          name: str = "nginx", status: int = 200) -> LabProcess:
    """nginx in a host answering every request with `body`."""
    base = f"/run/{name}"
    host.run(["mkdir", "-p", f"{base}/tmp"])
    conf = f"""
worker_processes 1;
pid {base}/nginx.pid;
error_log stderr;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {base}/tmp; proxy_temp_path {base}/tmp;
    fastcgi_temp_path {base}/tmp; uwsgi_temp_path {base}/tmp; scgi_temp_path {base}/tmp;
    server {{
        listen {listen};
        {extra}
        location / {{ default_type text/plain; return {status} "{body}\\n"; }}
    }}
}}
"""
    host.write_file(f"/etc/{name}.conf", conf)
    process = host.spawn(["nginx", "-c", f"/etc/{name}.conf", "-g", "daemon off;"], name=name)
    port = int(listen.split()[0].rsplit(":", 1)[-1])
    address = listen.split()[0].rsplit(":", 1)[0] if ":" in listen.split()[0] else None
    target = address or host.address()
    wait_until(lambda: port_open(host, target, port), 10, f"nginx {name} on {host.name}")
    return process


def port_open(host: Host, address: str, port: int) -> bool:
    try:
        host.connect(address, port, timeout=1.0).close()
        return True
    except OSError:
        return False


def http_get(lab: Lab, address: str = VIP, port: int = 80, timeout: float = 5.0) -> str:
    """The body of GET / through `address` from the client (raises OSError)."""
    return director_pair.http_get(lab.host("client"), timeout, address, port)


def vigil(host: Host, *args: str, check: bool = True, timeout: float = 60.0):
    return host.run([PYTHON, "-m", "vigil", *args], check=check, timeout=timeout)


def control(host: Host, request: dict, instance: str = "ldirectord.cf") -> dict:
    """Ask the director in `host` over its control socket."""
    return exchange(host.path(f"/run/vigil/director.{instance}.sock"), request, timeout=10)


def weights(host: Host, port: int = 80, instance: str = "ldirectord.cf") -> dict[str, int]:
    """{real address: weight} of VIP:port as the running director's backend holds it."""
    table = control(host, {"command": "status"}, instance)["table"]
    for service in table:
        if service["key"]["address"] == VIP and service["key"]["port"] == port:
            return {r["address"]: r["weight"] for r in service["reals"]}
    return {}


def states(host: Host, instance: str = "ldirectord.cf") -> dict[tuple[str, str], str]:
    health = control(host, {"command": "status"}, instance)["health"]
    return {(row["service"], row["real"]): row["state"] for row in health}


def timed_wait(condition, timeout: float, message: str) -> float:
    """Wait for `condition`; return how long it took."""
    start = time.monotonic()
    wait_until(condition, timeout, message, interval=0.02)
    return time.monotonic() - start


# -- the `ecmp` topology's active-active directors -------------------------------------------
#: the router's address on the directors' segment, and each director's
ECMP_ROUTER = "198.51.100.250"
ECMP_DIRECTORS = {"dir1": "198.51.100.5", "dir2": "198.51.100.6", "dir3": "198.51.100.7"}


def ecmp_nexthops(lab: Lab, vip: str = VIP) -> list[str]:
    """The directors the router's kernel route to the VIP goes through, sorted."""
    from vigil.lab.router import nexthops

    return nexthops(lab.host("router"), f"{vip}/32")
