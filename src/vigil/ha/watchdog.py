"""ha.cf's `watchdog DEVICE`: a hung daemon reboots the node.

The heartbeat thread writes to the device at every tick (at least every
keepalive); if the daemon stops (hung, stopped, killed), the kernel's watchdog
(softdog or a hardware one) resets the machine once its timeout passes. The
timeout is set to deadtime + 1 s (rounded up), so a hung node resets shortly
after its peer has taken over. A clean stop writes the magic "V" before closing,
which disarms the watchdog where the driver allows it (softdog `nowayout=0`).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import struct

from vigil.errors import EnvironmentProblem

#: _IOWR('W', 6, int): set the timeout in seconds
WDIOC_SETTIMEOUT = 0xC0045706


def watchdog_timeout(deadtime: float) -> int:
    return max(1, math.ceil(deadtime) + 1)


class Watchdog:
    def __init__(self, path: str, deadtime: float, timeout: int | None = None):
        self.path = path
        self.timeout = timeout if timeout is not None else watchdog_timeout(deadtime)
        self.fd: int | None = None
        self.timeout_set = False

    def open(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise EnvironmentProblem(f"watchdog {self.path}: {exc.strerror} (load softdog: "
                                     "modprobe softdog)") from None
        try:
            fcntl.ioctl(self.fd, WDIOC_SETTIMEOUT, struct.pack("i", self.timeout))
            self.timeout_set = True
        except OSError:
            pass  # the driver's own timeout stays (softdog: soft_margin, 60 s by default)
        self.tickle()

    def tickle(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                os.write(self.fd, b"\0")

    def close(self) -> None:
        """A clean stop: the magic close disarms the watchdog."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, b"V")
        os.close(self.fd)
        self.fd = None
