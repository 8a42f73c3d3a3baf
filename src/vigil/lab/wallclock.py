"""A wall clock of its own for a lab host's processes: what `date -s` does to one machine.

The kernel keeps one wall clock (time namespaces offset only the monotonic and boot
clocks), so a host's clock is stepped in its processes instead: a small preloaded
library adds the offset written in a file to what CLOCK_REALTIME, gettimeofday() and
time() return, and leaves CLOCK_MONOTONIC and every sleep alone, as a real step does.
(libfaketime does more: with its monotonic clock left alone, its clock_nanosleep
fails with EINVAL, which breaks Python's time.sleep.) The library reads the file
again at most once a second of monotonic time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from vigil.errors import EnvironmentProblem

#: the environment variable naming the offset file (a signed number of seconds)
OFFSET_VARIABLE = "VIGIL_LAB_CLOCK_OFFSET_FILE"

SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static volatile long offset_seconds;
static volatile time_t offset_read_at = -1;

static long offset(void) {
    struct timespec now;
    if (!real_clock_gettime)
        real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    real_clock_gettime(CLOCK_MONOTONIC, &now);
    if (offset_read_at >= 0 && now.tv_sec == offset_read_at)
        return offset_seconds;
    offset_read_at = now.tv_sec;
    const char *path = getenv("VIGIL_LAB_CLOCK_OFFSET_FILE");
    if (!path)
        return offset_seconds = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return offset_seconds;
    char text[32] = {0};
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got > 0)
        offset_seconds = strtol(text, NULL, 10);
    return offset_seconds;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (!real_clock_gettime)
        real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    int done = real_clock_gettime(clock, ts);
    if (done == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        ts->tv_sec += offset();
    return done;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec now;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return -1;
    if (tv) {
        tv->tv_sec = now.tv_sec;
        tv->tv_usec = now.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out)
        *out = now.tv_sec;
    return now.tv_sec;
}
"""


def library(directory: Path) -> Path:
    """The compiled library in `directory` (built once per source, with the machine's cc)."""
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:12]
    built = directory / f"wallclock-{digest}.so"
    if built.exists():
        return built
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"wallclock-{digest}.c"
    source.write_text(SOURCE)
    partial = built.with_name(built.name + f".{os.getpid()}")
    try:
        done = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(partial), str(source),
                               "-ldl"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise EnvironmentProblem("a host's own wall clock needs a C compiler "
                                 "(Debian package gcc)") from None
    if done.returncode != 0:
        raise EnvironmentProblem(f"could not build the wall clock library: {done.stderr.strip()}")
    partial.replace(built)
    return built


def write_offset(path: Path, seconds: float) -> None:
    """Set the offset atomically (a reader never sees half a number)."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(f"{int(seconds):+d}\n")
    temporary.replace(path)
