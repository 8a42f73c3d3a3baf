"""Checks leave from the director's own address, never from a virtual one."""

from vigil.director.source import (
    IFA_F_DEPRECATED,
    IFA_F_TENTATIVE,
    LocalAddress,
    SourceChooser,
    pick_source,
)
from vigil.testing.clock import FakeClock

OWN6 = LocalAddress("2001:db8:0:1::5", 64)
VIP6 = LocalAddress("2001:db8:0:1::100", 64)
VIRTUALS = frozenset({"2001:db8:0:1::100", "198.51.100.100"})


def test_the_kernels_choice_stands_unless_it_is_virtual():
    assert pick_source("2001:db8:0:1::5", "2001:db8:0:1::1", [OWN6, VIP6], VIRTUALS) is None
    assert pick_source(None, "2001:db8:0:1::1", [OWN6, VIP6], VIRTUALS) is None


def test_a_virtual_choice_is_replaced_by_the_interfaces_own_address():
    # written in another spelling: still the virtual address
    assert pick_source("2001:db8:0:1:0:0:0:100", "2001:db8:0:1::1", [VIP6, OWN6],
                       VIRTUALS) == "2001:db8:0:1::5"


def test_tentative_deprecated_link_scope_and_other_family_are_never_picked():
    candidates = [
        VIP6,
        LocalAddress("2001:db8:0:1::6", 64, flags=IFA_F_TENTATIVE),
        LocalAddress("2001:db8:0:1::7", 64, flags=IFA_F_DEPRECATED),
        LocalAddress("fe80::1", 64, scope=253),
        LocalAddress("198.51.100.5", 24),
    ]
    assert pick_source("2001:db8:0:1::100", "2001:db8:0:1::1", candidates, VIRTUALS) is None
    candidates.append(LocalAddress("2001:db8:9::5", 64))
    assert pick_source("2001:db8:0:1::100", "2001:db8:0:1::1", candidates,
                       VIRTUALS) == "2001:db8:9::5"


def test_an_address_on_the_real_servers_subnet_wins():
    candidates = [VIP6, LocalAddress("2001:db8:9::5", 64), OWN6]
    assert pick_source("2001:db8:0:1::100", "2001:db8:0:1::1", candidates,
                       VIRTUALS) == "2001:db8:0:1::5"


def test_choices_are_cached_briefly_then_asked_again():
    clock = FakeClock()
    asked = []

    def kernel(destination):
        asked.append(destination)
        return ("2001:db8:0:1::100", 10)

    chooser = SourceChooser(clock, kernel=kernel, addresses=lambda d: [VIP6, OWN6])
    assert chooser.source_for("2001:db8:0:1::1") is None  # no virtual address known yet
    chooser.set_virtuals(["2001:db8:0:1::100", ""])
    assert chooser.source_for("2001:db8:0:1::1") == "2001:db8:0:1::5"
    assert chooser.source_for("2001:db8:0:1::1") == "2001:db8:0:1::5"
    assert asked == ["2001:db8:0:1::1"]
    clock.advance(3)
    chooser.source_for("2001:db8:0:1::1")
    assert asked == ["2001:db8:0:1::1"] * 2
