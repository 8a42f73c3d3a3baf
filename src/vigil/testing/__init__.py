"""Test support: a fake clock, an in-memory lossy network, and waiting with deadlines."""

from vigil.testing.clock import FakeClock
from vigil.testing.network import Delivery, LossyNetwork, Simulator
from vigil.testing.wait import WaitTimeout, wait_until

__all__ = [
    "Delivery",
    "FakeClock",
    "LossyNetwork",
    "Simulator",
    "WaitTimeout",
    "vigil_command",
    "wait_until",
]


def vigil_command(*args: str) -> list[str]:
    """argv that runs this checkout's `vigil` (inside lab hosts too: same interpreter)."""
    import sys

    return [sys.executable, "-m", "vigil", *args]
