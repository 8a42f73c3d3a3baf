"""vigil's IPVS backend against the real thing, in one QEMU guest with Debian's kernel:

1. Debian's ldirectord runs the seed's ldirectord.cf and fills IPVS; then vigil's
   director (IPVS backend) runs the same file: `ipvsadm -Ln` must be identical, and
   `vigil lvs list -n` must print the same table.
2. NAT with real traffic: a client in front, two real servers behind the director,
   vigil's director with the IPVS backend; IPVS's rr order and its counters, as
   `ipvsadm` and `vigil lvs list --stats` show them.

One boot for both (a boot costs about ten seconds of CPU here)."""

from __future__ import annotations

import sys
import textwrap

import pytest

from vigil.lab.seed import lab_file
from vigil.testing.guest import (
    GuestResult,
    early_guest_output,
    run_in_guest,
    section,
)

# the guest run (emulated: ldirectord alone takes a minute) has its own 600 s limit
pytestmark = [pytest.mark.guest, pytest.mark.slow, pytest.mark.timeout(700)]


SERVER = """
import http.server, sys
name = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = name.encode() + b"\\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.HTTPServer((sys.argv[2], 80), H).serve_forever()
"""

CLIENT = """
import socket, sys
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((sys.argv[1], 80), timeout=10)
    s.sendall(b"GET / HTTP/1.0\\r\\nHost: www\\r\\n\\r\\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.close()
    print("answer", data.split(b"\\r\\n\\r\\n", 1)[1].decode().strip())
"""

NAT_CONFIG = """checktimeout=3
checkinterval=1
logfile="/var/log/vigil-nat.log"
quiescent=yes
virtual=203.0.113.100:80
\treal=198.51.100.1:80 masq
\treal=198.51.100.2:80 masq
\tservice=http
\tscheduler=rr
\tprotocol=tcp
\tchecktype=negotiate
"""

SCRIPT = """\
set -e
modprobe ip_vs
cat > server.py <<'PY'
{server}
PY
cat > client.py <<'PY'
{client}
PY
cat > ld.cf <<'CF'
{seed}
CF
cat > nat.cf <<'CF'
{nat}
CF
ip link add br0 type bridge; ip link set br0 up; ip addr add 198.51.100.5/24 dev br0
ip link add br1 type bridge; ip link set br1 up; ip addr add 203.0.113.5/24 dev br1
for n in 1 2; do
  ip netns add rs$n
  ip link add v$n type veth peer name eth0 netns rs$n
  ip link set v$n master br0 up
  ip -n rs$n link set lo up; ip -n rs$n link set eth0 up
  ip -n rs$n addr add 198.51.100.$n/24 dev eth0
  ip -n rs$n route add default via 198.51.100.5
  ip netns exec rs$n {python} server.py rs$n 198.51.100.$n &
done
ip netns add client
ip link add vc type veth peer name eth0 netns client
ip link set vc master br1 up
ip -n client link set lo up; ip -n client link set eth0 up
ip -n client addr add 203.0.113.10/24 dev eth0
sysctl -q -w net.ipv4.ip_forward=1
wait_table() {{  # wait until ipvsadm -Ln shows every pattern given
  for i in $(seq 600); do
    ok=1; for p in "$@"; do ipvsadm -Ln | grep -Eq "$p" || ok=0; done
    [ $ok = 1 ] && return 0; sleep 0.2
  done
  echo "TIMEOUT waiting for $*"; ipvsadm -Ln; return 1
}}
both_up='198.51.100.1:80 +Route +1 '
both_up2='198.51.100.2:80 +Route +1 '

# 1. Debian's ldirectord on the seed's file.
ldirectord /xfer/ld.cf start
wait_table "$both_up" "$both_up2"
sleep 3   # one more check round: the table is settled
echo "=== ldirectord"; ipvsadm -Ln
ldirectord /xfer/ld.cf stop || true
for i in $(seq 100); do [ -z "$(ipvsadm -Ln | sed -n '4,$p')" ] && break; sleep 0.2; done

# 2. vigil's director (IPVS backend) on the same file.
{vigil} director -d -f /xfer/ld.cf --backend ipvs start > vigil.out 2>&1 &
director=$!
wait_table "$both_up" "$both_up2"
sleep 3
echo "=== vigil"; ipvsadm -Ln
echo "=== vigil lvs"; {vigil} lvs list -n
kill $director; wait $director || true
echo "=== after stop"; ipvsadm -Ln

# 3. NAT with traffic through vigil's IPVS table.
ip addr add 203.0.113.100/24 dev br1
{vigil} director -d -f /xfer/nat.cf --backend ipvs start > nat.out 2>&1 &
director=$!
wait_table '198.51.100.1:80 +Masq +1 ' '198.51.100.2:80 +Masq +1 '
echo "=== nat answers"; ip netns exec client {python} client.py 203.0.113.100 6
# The kernel folds its per-CPU counters into these every 2 s (its rate estimator).
for i in $(seq 100); do
  ipvsadm -Ln --stats | grep -Eq '203.0.113.100:80 +6 ' && break; sleep 0.2
done
echo "=== nat ipvsadm stats"; ipvsadm -Ln --stats
echo "=== nat vigil stats"; {vigil} lvs list -n --stats
kill $director; wait $director || true
echo "=== end"
"""


def run_guest() -> GuestResult:
    """The guest's whole run (started early by the suite, beside the unit tests)."""
    vigil = f"{sys.executable} -m vigil"
    script = SCRIPT.format(server=textwrap.dedent(SERVER), client=textwrap.dedent(CLIENT),
                           seed=lab_file("ldirectord.cf").rstrip("\n"), nat=NAT_CONFIG,
                           python="/usr/bin/python3", vigil=vigil)
    return run_in_guest(script, timeout=600, memory_mib=1024, hostname="server5")


@pytest.fixture(scope="module")
def guest_run():
    return early_guest_output(__name__, run_guest)


def test_vigil_builds_the_table_ldirectord_builds(guest_run):
    ldirectord = section(guest_run, "ldirectord")
    vigil = section(guest_run, "vigil")
    assert ldirectord[3] == "TCP  198.51.100.100:80 rr"
    assert ldirectord == vigil  # every line of ipvsadm -Ln, weights and counters included
    assert section(guest_run, "vigil lvs") == vigil  # vigil's own listing says the same
    assert section(guest_run, "after stop")[3:] == []  # cleanstop


def test_nat_through_ipvs_with_real_traffic(guest_run):
    answers = [line.split()[1] for line in section(guest_run, "nat answers")]
    assert answers in (["rs1", "rs2"] * 3, ["rs2", "rs1"] * 3)  # IPVS's round robin
    ipvsadm = section(guest_run, "nat ipvsadm stats")
    vigil = section(guest_run, "nat vigil stats")
    assert ipvsadm[3].split()[:3] == ["TCP", "203.0.113.100:80", "6"]
    rows = {line.split()[1]: line.split()[2] for line in ipvsadm[4:]}
    assert rows == {"198.51.100.1:80": "3", "198.51.100.2:80": "3"}
    assert [line.split()[:3] for line in vigil] == [line.split()[:3] for line in ipvsadm]
