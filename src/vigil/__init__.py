"""vigil: high availability for Linux in the spirit of Heartbeat, DRBD and LVS/ldirectord."""

__version__ = "0.1.0"

#: Versions of the classic tools whose files and wire format vigil speaks.
COMPATIBILITY = {
    "heartbeat": "3.0.6 (ha.cf, authkeys, haresources; wire format)",
    "ldirectord": "4.12 (ldirectord.cf)",
    "drbd": "8.4/9 (resource files)",
}
