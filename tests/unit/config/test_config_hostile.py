"""Hostile values in the DRBD and ldirectord files: errors at their place, never a traceback."""

from __future__ import annotations

import pytest

from vigil.config import drbd, ldirectord
from vigil.config.resolve import COMMON_SERVICES, StaticResolver

HUGE = "9" * 5000  # beyond Python's int() limit for decimal text
NAMES = StaticResolver(services=COMMON_SERVICES)
ON_A = "on a {{ device /dev/drbd0{minor}; disk /d; address {address}; meta-disk internal; }}"


def drbd_errors(text):
    return [(d.location.line, d.message) for d in drbd.analyze(text, "r.res").errors]


@pytest.mark.parametrize(("text", "message"), [
    ("resource r {\n" + ON_A.format(minor=f" minor {HUGE}", address="1.2.3.4:7788") + "\n}",
     "write device [/dev/drbdN] [minor N];"),
    ("resource r {\n" + ON_A.format(minor="", address=f"1.2.3.4:{HUGE}") + "\n}",
     "bad address"),
    ("resource r {\n net { ping-int " + HUGE + "; }\n" + ON_A.format(minor="", address="1.2.3.4:1")
     + "\n}", "ping-int: bad number"),
    ("resource r {\n disk { resync-rate " + HUGE + "; }\n"
     + ON_A.format(minor="", address="1.2.3.4:1") + "\n}", "resync-rate: bad size"),
    ("resource r {\n" + ON_A.format(minor="", address="foo:7788") + "\n}",
     "bad address 'foo': not an IP address"),
])
def test_drbd_values_that_cannot_be_meant(text, message):
    errors = drbd_errors(text)
    assert any(m.startswith(message) for _, m in errors), errors


@pytest.mark.parametrize("text", [
    f"virtual=1.2.3.4:80\n\treal=1.2.3.5:80 gate {HUGE}\n",
    f"checktimeout={HUGE}\n",
    f"virtual={HUGE}\n\treal=1.2.3.5:80 gate\n",
    f"virtual=1.2.3.4:80\n\treal=1.2.3.5:80 gate\n\tchecktype={HUGE}\n",
])
def test_ldirectord_numbers_of_any_length_are_errors(text):
    parsed = ldirectord.analyze(text, "ldirectord.cf", resolver=NAMES)
    assert parsed.errors and all(d.location.line >= 1 for d in parsed.errors)
