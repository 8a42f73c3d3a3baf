"""Explicit state tables of the failover core: a group's hold state and the node's phase.

`TRANSITIONS[state][event] -> next state`; anything not in the table is a
bug in the caller and raises `IllegalTransition` instead of drifting into
an impossible state.
"""

from __future__ import annotations

import enum

from vigil.errors import VigilError


class IllegalTransition(VigilError):
    """An event arrived in a state where it cannot happen."""


class Hold(enum.Enum):
    """One group on one node."""

    RELEASED = "R"  # not running here
    STARTING = "S"  # start in progress
    HELD = "H"  # running here
    STOPPING = "T"  # stop in progress
    CLEANING = "C"  # a start failed or was abandoned; stopping what was started
    FAILED = "F"  # a start failed and was cleaned up: not running, not retried at once
    STUCK = "X"  # a stop failed: it may still run here; never taken by the peer silently
    #: not running, and not startable here yet (its replicated disk is still syncing):
    #: the peer keeps it rather than hand it back for a start that would fail
    UNREADY = "U"

    @property
    def may_run(self) -> bool:
        """Whether the group may be (partly) active on the node in this state."""
        return self not in (Hold.RELEASED, Hold.FAILED, Hold.UNREADY)

    @property
    def needs_clearing(self) -> bool:
        """Left by a failed stop or start: an operator's `vigil cleanup` lets it go on."""
        return self in (Hold.STUCK, Hold.FAILED)

    @property
    def busy(self) -> bool:
        """An action is in flight."""
        return self in (Hold.STARTING, Hold.STOPPING, Hold.CLEANING)


HOLD_TRANSITIONS: dict[Hold, dict[str, Hold]] = {
    Hold.RELEASED: {"start": Hold.STARTING, "adopt": Hold.HELD, "unready": Hold.UNREADY},
    Hold.UNREADY: {"ready": Hold.RELEASED, "start": Hold.STARTING, "adopt": Hold.HELD},
    Hold.STARTING: {"started": Hold.HELD, "start_failed": Hold.CLEANING},
    Hold.HELD: {"stop": Hold.STOPPING},
    Hold.STOPPING: {"stopped": Hold.RELEASED, "stopped_after_failure": Hold.FAILED,
                    "stop_failed": Hold.STUCK},
    Hold.CLEANING: {"stopped": Hold.FAILED, "abandoned": Hold.RELEASED,
                    "stop_failed": Hold.STUCK},
    Hold.FAILED: {"start": Hold.STARTING, "clear": Hold.RELEASED},
    Hold.STUCK: {"stop": Hold.STOPPING, "clear": Hold.RELEASED},
}


def next_hold(state: Hold, event: str) -> Hold:
    try:
        return HOLD_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(f"group event {event!r} in state {state.name}") from None


class Phase(enum.Enum):
    """The node as a whole."""

    INIT = "init"  # waiting to hear the peer (or initdead): nothing is started
    READY = "ready"  # negotiating and holding groups
    LEAVING = "leaving"  # graceful shutdown: releasing every group to the peer
    DONE = "done"  # everything released, shutdone sent: the daemon exits


PHASE_TRANSITIONS: dict[Phase, dict[str, Phase]] = {
    Phase.INIT: {"comm_up": Phase.READY, "shutdown": Phase.LEAVING},
    Phase.READY: {"shutdown": Phase.LEAVING},
    Phase.LEAVING: {"released": Phase.DONE, "shutdown": Phase.LEAVING},
    Phase.DONE: {"shutdown": Phase.DONE},
}


def next_phase(state: Phase, event: str) -> Phase:
    try:
        return PHASE_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(f"node event {event!r} in phase {state.name}") from None


class Fencing(enum.Enum):
    """Fencing of the peer for the current death episode."""

    IDLE = "idle"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FENCE_TRANSITIONS: dict[Fencing, dict[str, Fencing]] = {
    Fencing.IDLE: {"fence": Fencing.RUNNING, "reset": Fencing.IDLE},
    Fencing.RUNNING: {"ok": Fencing.DONE, "failed": Fencing.FAILED, "reset": Fencing.RUNNING},
    Fencing.DONE: {"reset": Fencing.IDLE},
    Fencing.FAILED: {"fence": Fencing.RUNNING, "reset": Fencing.IDLE},
}


def next_fencing(state: Fencing, event: str) -> Fencing:
    try:
        return FENCE_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(f"fencing event {event!r} in state {state.name}") from None
