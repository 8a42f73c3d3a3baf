"""IPVS's connection sync daemon driven by vigil, in a QEMU guest with Debian's kernel:
two directors (network namespaces of one guest) with the same ldirectord.cf (direct
routing) and `--lvs-sync-daemon "eth0 id 9"`: the active one runs the master, the
warm standby the backup. A long-lived TCP connection through the VIP must go on
after the failover (standby started, active stopped, VIP moved): the new active
director's kernel holds the connection (synced), so it forwards the flow's next
packets to the same real server instead of answering them with a reset. The same
boot checks ipvsadm's daemon verbs, -Z and --set through `vigil lvs`."""

from __future__ import annotations

import sys

import pytest

from vigil.testing.guest import (
    GuestResult,
    early_guest_output,
    run_in_guest,
    section,
)

pytestmark = [pytest.mark.guest, pytest.mark.slow, pytest.mark.timeout(700)]


ECHO = """
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(16)
def serve(c):
    try:
        while data := c.recv(4096):
            c.sendall(data)
    except OSError:
        pass  # the director's connect checks close with a reset
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

CLIENT = """
import os, socket, time
s = socket.create_connection(("198.51.100.100", 7000), timeout=10)
def say(word):
    s.sendall(word.encode() + b"\\n")
    got = b""
    while not got.endswith(b"\\n"):
        chunk = s.recv(100)
        if not chunk:
            raise ConnectionResetError("closed")
        got += chunk
    print("echo", got.decode().strip(), flush=True)
for i in range(8):
    say(f"before{i}")
open("/xfer/client.ready", "w").close()
for _ in range(3000):
    if os.path.exists("/xfer/moved"):
        break
    time.sleep(0.05)
try:
    for i in range(3):
        say(f"after{i}")
except OSError as exc:
    print("broken", type(exc).__name__, flush=True)
"""

SCRIPT = """\
set -e
modprobe ip_vs
cat > echo.py <<'PY'
{echo}
PY
cat > client.py <<'PY'
{client}
PY
cat > lvs.cf <<'CF'
checktimeout=2
checkinterval=1
virtual=198.51.100.100:7000
	real=198.51.100.1:7000 gate
	scheduler=rr
	checktype=connect
CF
wait_for() {{  # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt $deadline ] || {{ echo "TIMEOUT: $*"; return 1; }}
    sleep 0.1
  done
}}
ip link add br0 type bridge
echo 0 > /sys/class/net/br0/bridge/multicast_snooping
ip link set br0 up
for n in a b rs client; do
  ip netns add $n
  ip link add v$n type veth peer name eth0 netns $n
  ip link set v$n master br0 up
  ip -n $n link set lo up; ip -n $n link set eth0 up
done
ip -n a addr add 198.51.100.11/24 dev eth0
ip -n b addr add 198.51.100.12/24 dev eth0
ip -n rs addr add 198.51.100.1/24 dev eth0
ip -n client addr add 198.51.100.50/24 dev eth0
ip netns exec rs sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
ip -n rs addr add 198.51.100.100/32 dev lo
ip netns exec rs /usr/bin/python3 echo.py > echo.out 2>&1 &
on() {{  # on NODE vigil ARGS...: in that director's namespace and run directory
  local n=$1; shift
  VIGIL_RUN_DIR=/run/vigil-$n VIGIL_STATE_DIR=/run/vigil-$n/state ip netns exec $n "$@"
}}
lvs() {{ local n=$1; shift; on $n {vigil} lvs "$@"; }}
director() {{ local n=$1; shift; on $n {vigil} director -f /xfer/lvs.cf "$@"; }}
daemons() {{ lvs $1 -L --daemon | grep -q "^$2 sync daemon"; }}
# both directors warm standbys with lvs_sync_daemon's words; Python in the emulated
# guest starts slowly, so they run in the foreground here and are waited for
for n in a b; do
  mkdir -p /run/vigil-$n/state
  director $n -d --backend ipvs --lvs-sync-daemon "eth0 id 9" standby > director-$n.out 2>&1 &
done
for n in a b; do wait_for 180 daemons $n backup; done
director a start > /dev/null
wait_for 60 daemons a master
echo "=== daemons a"; lvs a -L --daemon
echo "=== daemons b"; lvs b -L --daemon
ip -n a addr add 198.51.100.100/32 dev eth0
ip netns exec client /usr/bin/python3 client.py > client.out 2>&1 &
client=$!
wait_for 120 test -e /xfer/client.ready
synced() {{ ip netns exec b ipvsadm -Lnc | grep -q '198.51.100.50:.*198.51.100.1:7000'; }}
wait_for 60 synced
echo "=== b before the move"; ip netns exec b ipvsadm -Lnc
echo "=== vigil lvs -L -c on b"; lvs b -L -c -n
# the failover as heartbeat runs it: b's director started, a's stopped, the VIP moved
director b start > /dev/null
director a stop > /dev/null
ip -n a addr del 198.51.100.100/32 dev eth0
ip -n b addr add 198.51.100.100/32 dev eth0
ip -n client neigh flush 198.51.100.100
touch /xfer/moved
wait $client || true
echo "=== client"; cat client.out
echo "=== daemons after the failover"; lvs a -L --daemon; lvs b -L --daemon
# the kernel folds its per-CPU counters every 2 s: wait until b's show the flow's packets
in_packets() {{ ip netns exec b ipvsadm -Ln --stats | awk '$1 == "TCP" {{ print $4 }}'; }}
counted() {{ [ "$(in_packets)" != 0 ]; }}
wait_for 30 counted
echo "=== stats before -Z"; ip netns exec b ipvsadm -Ln --stats
lvs b -Z
echo "=== stats after -Z"; ip netns exec b ipvsadm -Ln --stats
echo "=== timeouts"; lvs b -L --timeout
lvs b --set 1000 0 200
ip netns exec b ipvsadm -L --timeout
lvs b -L --timeout
echo "=== by hand"; lvs b --stop-daemon master; lvs b -L --daemon; echo "(none left)"
lvs b --start-daemon backup --mcast-interface eth0 --syncid 3 --mcast-ttl 2
lvs b -L --daemon
echo "=== refused"; lvs b --start-daemon master --mcast-interface 'eth0;x' 2>&1 || echo "exit $?"
echo "=== shutdown"
director a shutdown > /dev/null; director b shutdown > /dev/null
ip netns exec a ipvsadm -L --daemon; ip netns exec b ipvsadm -L --daemon; echo "(none left)"
echo "=== end"
"""


def run_guest() -> GuestResult:
    """The guest's whole run (started early by the suite, beside the unit tests)."""
    script = SCRIPT.format(echo=ECHO.strip(), client=CLIENT.strip(),
                           vigil=f"{sys.executable} -m vigil")
    return run_in_guest(script, timeout=600, memory_mib=1024, hostname="director")


@pytest.fixture(scope="module")
def guest_run():
    return early_guest_output(__name__, run_guest)


def test_the_active_director_runs_the_master_and_the_standby_the_backup(guest_run):
    [master] = section(guest_run, "daemons a")
    [backup] = section(guest_run, "daemons b")
    assert master.startswith("master sync daemon (mcast=eth0, syncid=9, ")
    assert backup.startswith("backup sync daemon (mcast=eth0, syncid=9, ")
    assert "group=224.0.0.81" in master and "port=8848" in master


def test_an_established_connection_survives_the_director_failover(guest_run):
    synced = section(guest_run, "b before the move")
    assert any("ESTABLISHED" in line and "198.51.100.1:7000" in line for line in synced)

    # vigil's own listing of the kernel's table says the same, in ipvsadm's columns
    # (but the expiry, which ticks between the two listings)
    def without_expiry(lines: list[str]) -> list[list[str]]:
        return [line.split()[:1] + line.split()[2:] for line in lines]

    assert without_expiry(section(guest_run, "vigil lvs -L -c on b")) == without_expiry(synced)
    echoes = section(guest_run, "client")
    assert echoes == [f"echo before{i}" for i in range(8)] + [f"echo after{i}" for i in range(3)]


def test_the_roles_swap_the_daemons(guest_run):
    after = section(guest_run, "daemons after the failover")
    assert [line.split()[0] for line in after] == ["backup", "master"]  # a, then b


def test_zero_and_timeouts_act_on_the_kernels_table(guest_run):
    def in_packets(lines: list[str]) -> str:
        """The service's InPkts (its Conns stay 0: the backup made no connection, it
        was given one by the sync)."""
        [row] = [line for line in lines if line.startswith("TCP ")]
        return row.split()[3]

    assert int(in_packets(section(guest_run, "stats before -Z"))) >= 3  # the flow after the move
    assert in_packets(section(guest_run, "stats after -Z")) == "0"
    default, kernel, vigil = section(guest_run, "timeouts")
    assert default == "Timeout (tcp tcpfin udp): 900 120 300"  # IPVS's defaults
    assert kernel == vigil == "Timeout (tcp tcpfin udp): 1000 120 200"  # 0 keeps tcpfin


def test_by_hand_as_ipvsadm_and_a_bad_interface_refused_before_the_kernel(guest_run):
    none, started = section(guest_run, "by hand")
    assert none == "(none left)"
    assert started.startswith("backup sync daemon (mcast=eth0, syncid=3, ")
    assert started.endswith("ttl=2)")
    refused = section(guest_run, "refused")
    assert "bad multicast interface" in " ".join(refused) and refused[-1].startswith("exit ")


def test_a_director_shutting_down_stops_its_daemons(guest_run):
    assert section(guest_run, "shutdown") == ["(none left)"]
