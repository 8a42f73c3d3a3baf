"""Active director or warm standby: what each `vigil director` action does, and what a
standby holds back.

A warm standby runs the director's checks and keeps its table in the backend, as
keepalived's LVS does on both directors; only the VIP moves. heartbeat's
`ldirectord` resource then means "this node's director is the active one": `start`
activates a standby (or starts a cold director when none runs), `stop` turns an
active director back into a standby when it is meant to stay (it was started as
one), and `status` says stopped on a standby, so heartbeat's group logic (and
vigil's) sees the resource where the VIP is.

Pure: the state of the node's director in, the step to take out (`step_for`); the
side effects a standby must not have (alerts, fallback commands) filtered by
`SideEffectGate`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vigil.director.health import Action, RunFallbackCommand, SendAlert
from vigil.lvs.table import ServiceKey


class Role(enum.Enum):
    STOPPED = "stopped"  # no director process
    STANDBY = "standby"  # checks and table kept, forwarding only what is addressed here
    ACTIVE = "active"  # the director that takes the VIP's traffic


class Step(enum.Enum):
    NOTHING = "nothing"
    SPAWN_ACTIVE = "spawn-active"  # a cold start: ldirectord's `start`
    SPAWN_STANDBY = "spawn-standby"
    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"  # back to a warm standby: the process stays
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Current:
    """The node's director as its state file says."""

    role: Role = Role.STOPPED
    #: started as a standby (at boot, by a unit): `stop` leaves it warm, never ends it
    resident: bool = False


ACTIONS = ("start", "stop", "standby", "shutdown")

#: (action, role) -> step; a resident director's `stop` is looked up as "stop-resident".
STEPS: dict[tuple[str, Role], Step] = {
    ("start", Role.STOPPED): Step.SPAWN_ACTIVE,
    ("start", Role.STANDBY): Step.ACTIVATE,
    ("start", Role.ACTIVE): Step.NOTHING,
    ("stop", Role.STOPPED): Step.NOTHING,
    ("stop", Role.STANDBY): Step.NOTHING,
    ("stop", Role.ACTIVE): Step.TERMINATE,
    ("stop-resident", Role.ACTIVE): Step.DEACTIVATE,
    ("standby", Role.STOPPED): Step.SPAWN_STANDBY,
    ("standby", Role.STANDBY): Step.NOTHING,
    ("standby", Role.ACTIVE): Step.DEACTIVATE,
    ("shutdown", Role.STOPPED): Step.NOTHING,
    ("shutdown", Role.STANDBY): Step.TERMINATE,
    ("shutdown", Role.ACTIVE): Step.TERMINATE,
}


def step_for(action: str, current: Current) -> Step:
    """What `vigil director ACTION` does to the node's director."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    key = "stop-resident" if action == "stop" and current.resident else action
    return STEPS.get((key, current.role), STEPS[(action, current.role)])


def lsb_status(current: Current) -> int:
    """`status`'s exit code: 0 only for the active director (a standby is "stopped")."""
    return 0 if current.role is Role.ACTIVE else 3


class SideEffectGate:
    """What a standby holds back: it checks the same servers, but mail and fallback
    commands are the active director's to send and run (one alert per event, not two).

    A fallback command a standby would have run is remembered per service and run when
    it becomes active, so the local fallback service is there once it takes the VIP.
    """

    def __init__(self, active: bool):
        self.active = active
        self._pending: dict[ServiceKey, RunFallbackCommand] = {}
        self._ran: dict[ServiceKey, str] = {}

    def admit(self, action: Action) -> bool:
        """Whether to carry out `action` now."""
        if isinstance(action, SendAlert):
            return self.active
        if isinstance(action, RunFallbackCommand):
            if not self.active:
                self._pending[action.service] = action
                return False
            self._pending.pop(action.service, None)
            self._ran[action.service] = action.verb
            return True
        return True

    def set_active(self, active: bool) -> list[RunFallbackCommand]:
        """Change role; the fallback commands to run now (on activation)."""
        self.active = active
        if not active:
            return []
        due = [c for key, c in self._pending.items() if self._ran.get(key) != c.verb
               and not (c.verb == "stop" and key not in self._ran)]
        self._pending.clear()
        for command in due:
            self._ran[command.service] = command.verb
        return due
