"""The QEMU guest harness: Debian's kernel with the IPVS this machine's kernel lacks."""

import pytest

from vigil.testing.early import GUEST_RUNS
from vigil.testing.guest import GuestResult, guest_unavailable_reason, run_in_guest

pytestmark = [pytest.mark.guest, pytest.mark.slow]

reason = guest_unavailable_reason()


def run_guest() -> GuestResult:
    """The guest's run (started early by the suite, beside the unit tests)."""
    return run_in_guest(
        "modprobe ip_vs && ipvsadm -A -t 198.51.100.100:80 -s rr && "
        "ipvsadm -a -t 198.51.100.100:80 -r 198.51.100.1:80 -g && ipvsadm -Ln && "
        "uname -n && exit 3",
        timeout=180,
        hostname="director",
    )


@pytest.mark.skipif(reason is not None, reason=f"no QEMU guest here: {reason}")
def test_guest_runs_real_ipvs_and_reports_exit_codes():
    result = GUEST_RUNS.result(__name__, run_guest)
    assert result.returncode == 3, result.console[-2000:]
    assert "TCP  198.51.100.100:80 rr" in result.output
    assert "-> 198.51.100.1:80" in result.output and "Route" in result.output
    assert "director" in result.output
