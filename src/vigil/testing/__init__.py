"""Test support: a fake clock, an in-memory lossy network, and waiting with deadlines."""

from vigil.testing.clock import FakeClock
from vigil.testing.network import Delivery, LossyNetwork, Simulator
from vigil.testing.wait import WaitTimeout, wait_until

__all__ = ["Delivery", "FakeClock", "LossyNetwork", "Simulator", "WaitTimeout", "wait_until"]
