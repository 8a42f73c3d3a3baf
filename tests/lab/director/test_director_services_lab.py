"""Each negotiate service against a real server of that protocol in the lab, with a
good and a bad answer: nginx (http, https with a self-signed certificate made here),
MariaDB, a small DNS server, an SMTP server (aiosmtpd)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from director_lab_support import PYTHON, VIP, control, nginx, port_open, states, vigil

from vigil.testing import wait_until
from vigil.testing.mariadb import install_database

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def userspace_data_path(monkeypatch):
    """These tests are about the director and its userspace proxy; the kernel data
    paths have their own (tests/lab/dataplane)."""
    monkeypatch.setenv("VIGIL_DIRECTOR_BACKEND", "userspace")

RS1, RS2 = "198.51.100.1", "198.51.100.2"

DNS_SERVER = r"""
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.2", 53))
while True:
    query, client = s.recvfrom(512)
    labels, i = [], 12
    while query[i]:
        labels.append(query[i + 1:i + 1 + query[i]].decode()); i += 1 + query[i]
    question = query[12:i + 5]
    name = ".".join(labels)
    if name == "www.example.com":
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([198, 51, 100, 7])
        header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    else:
        answer = b""
        header = query[:2] + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0)
    s.sendto(header + question + answer, client)
"""

CONFIG = f"""\
checkinterval=1
negotiatetimeout=5
quiescent=yes
virtual={VIP}:80
\treal={RS1}:80 gate
\tservice=http
\treceive="rs1 ok"
\tscheduler=rr
virtual={VIP}:8080
\treal={RS1}:80 masq
\tservice=http
\treceive="nope"
virtual={VIP}:443
\treal={RS1}:443 gate
\tservice=https
\tvirtualhost=www.example.com
\treceive="rs1 tls"
virtual={VIP}:8443
\treal={RS1}:8443 masq
\tservice=https
\tvirtualhost=www.example.com
virtual={VIP}:25
\treal={RS1}:25 gate
\tservice=smtp
virtual={VIP}:2525
\treal={RS1}:80 masq
\tservice=smtp
virtual={VIP}:3306
\treal={RS2}:3306 gate
\tservice=mysql
\tlogin="checker"
\tpasswd="s3cret"
\tdatabase="checks"
\trequest="SELECT 1"
virtual={VIP}:3307
\treal={RS2}:3306 masq
\tservice=mysql
\tlogin="checker"
\tpasswd="wrong"
\tdatabase="checks"
\trequest="SELECT 1"
virtual={VIP}:53
\treal={RS2}:53 gate
\tservice=dns
\tprotocol=udp
\trequest="www.example.com"
\treceive="198.51.100.7"
virtual={VIP}:5353
\treal={RS2}:53 masq
\tservice=dns
\tprotocol=udp
\trequest="www.example.com"
\treceive="203.0.113"
"""


def mariadb(host) -> None:
    install_database(host, datadir="/var/lib/mysql-vd", user="root", timeout=120)
    host.spawn(["mariadbd", "--user=root", "--datadir=/var/lib/mysql-vd",
                "--socket=/run/mysqld-vd.sock", "--pid-file=/run/mysqld-vd.pid",
                f"--bind-address={RS2}", "--port=3306", "--skip-log-bin"], name="mariadb")
    wait_until(lambda: port_open(host, RS2, 3306), 60, "MariaDB listening")
    sql = ("CREATE DATABASE checks; CREATE USER 'checker'@'%' IDENTIFIED BY 's3cret'; "
           "GRANT SELECT ON checks.* TO 'checker'@'%';")
    host.run(["mariadb", "--socket=/run/mysqld-vd.sock", "-uroot", "-e", sql])


def test_negotiate_services_good_and_bad(seed_lab):
    rs1, rs2, server5 = (seed_lab.host(n) for n in ("rs1", "rs2", "server5"))
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    nginx(rs1, "rs1 ok")
    rs1.run(["mkdir", "-p", "/etc/tls-vd"])
    rs1.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=www.example.com", "-keyout", "/etc/tls-vd/key.pem",
             "-out", "/etc/tls-vd/cert.pem"])
    tls = ("ssl_certificate /etc/tls-vd/cert.pem; ssl_certificate_key /etc/tls-vd/key.pem; "
           "server_name www.example.com;")
    nginx(rs1, "rs1 tls", listen="443 ssl", extra=tls, name="tls")
    # A TLS server that answers with an error status: the https check must fail.
    nginx(rs1, "busy", listen="8443 ssl", extra=tls, name="tls-bad", status=503)
    rs1.spawn([PYTHON, "-m", "aiosmtpd", "-n", "-l", f"{RS1}:25"], name="smtp")
    wait_until(lambda: port_open(rs1, RS1, 25), 15, "SMTP server")
    rs2.spawn([PYTHON, "-c", DNS_SERVER], name="dns")
    mariadb(rs2)

    server5.write_file("/etc/ha.d/ldirectord.cf", CONFIG)
    vigil(server5, "director", "start")
    try:
        def checked():
            health = control(server5, {"command": "status"})["health"]
            if any(row["state"] == "unchecked" for row in health):
                return None
            return {row["service"].split(":")[-1]: (row["state"], row["message"])
                    for row in health}

        result = wait_until(checked, 30, "every service checked once")
        for port, row in sorted(result.items()):
            print(port, row)
        expected = {"80": "up", "8080": "down", "443": "up", "8443": "down", "25": "up",
                    "2525": "down", "3306": "up", "3307": "down", "53": "up", "5353": "down"}
        assert {port: state for port, (state, _) in result.items()} == expected
        assert "Access denied" in result["3307"][1]
        assert "mismatch" in result["5353"][1]
        assert "does not match" in result["8080"][1]
    finally:
        vigil(server5, "director", "stop", check=False)


def test_execute_starts_and_stops_the_other_instances_with_the_first(seed_lab):
    server5 = seed_lab.host("server5")
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    nginx(seed_lab.host("rs1"), "rs1 ok")
    nginx(seed_lab.host("rs1"), "rs1 alt", listen="8080", name="alt")  # DR keeps the port
    server5.write_file("/etc/ha.d/main.cf", f"checkinterval=1\nexecute=second.cf\n"
                       f"virtual={VIP}:80\n\treal={RS1}:80 gate\n\tchecktype=connect\n")
    server5.write_file("/etc/ha.d/second.cf", f"checkinterval=1\nexecute=main.cf\n"
                       f"virtual={VIP}:8080\n\treal={RS1}:8080 gate\n\tchecktype=connect\n")
    try:
        vigil(server5, "director", "main.cf", "start")
        assert vigil(server5, "director", "second.cf", "status", check=False).returncode == 0
        wait_until(lambda: states(server5, "second.cf") and
                   set(states(server5, "second.cf").values()) == {"up"}, 30,
                   lambda: "the executed instance checking its service: "
                   f"{states(server5, 'second.cf')}")
        vigil(server5, "director", "main.cf", "stop")
        for name in ("main.cf", "second.cf"):
            assert vigil(server5, "director", name, "status", check=False).returncode == 3
    finally:
        for name in ("main.cf", "second.cf"):
            vigil(server5, "director", name, "stop", check=False)
