"""Who may run a group, decided by a lease in a consensus store (pure, injected clock).

The store (etcd) holds one key per group, attached to the holder's lease: the
holder keeps the lease alive, and the key vanishes with it when the holder can
no longer reach the store's majority. No node ever compares clocks with another:

- a lease granted or refreshed by a request sent at `t` is valid at least until
  `t + ttl` (the store starts counting after it received the request);
- the holder stops the group at `t + ttl - margin` unless a later refresh
  succeeded, so its resources are stopped `margin` seconds before the store can
  let the key go, and before anyone else can create it;
- a node starts the group only after its create-if-absent transaction put the
  key under its own lease.

This module decides; `vigil.cluster.etcd` and the daemon carry the requests
out and report back with the time each request was *sent*.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vigil.config.extension import lease_problem


@dataclass(frozen=True)
class LeaseSettings:
    """vigil.cf's lease_ttl and the safety margin before it (Patroni's loop_wait idea)."""

    ttl: float = 10.0
    #: the group is stopped this long before the lease could expire in the store
    margin: float = 3.0
    #: refresh this often (a third of the TTL by default: two refreshes may fail)
    refresh_every: float | None = None
    #: a follower looks at the key this often, to take a group whose holder is gone
    poll_every: float = 1.0

    def __post_init__(self) -> None:
        problem = lease_problem(self.ttl, self.margin, self.refresh_every)
        if problem is not None:
            raise ValueError(problem)

    @property
    def refresh(self) -> float:
        return self.refresh_every if self.refresh_every is not None else self.ttl / 3


class Phase(enum.Enum):
    IDLE = "idle"  # no lease: ask the store for one
    FOLLOWING = "following"  # a lease of our own; the group is held elsewhere or nowhere
    HOLDING = "holding"  # the key is ours: the group may run here
    STOPPING = "stopping"  # our hold is (or may soon be) gone: the group is being stopped


class Request(enum.Enum):
    """What the daemon asks the store, one at a time."""

    GRANT = "grant a lease"
    ACQUIRE = "create the group's key under our lease, if absent"
    REFRESH = "keep our lease alive"
    LOOK = "read the group's key"
    REVOKE = "end our lease (the key goes with it)"


class Act(enum.Enum):
    START = "start the group here"
    STOP = "stop the group here"


@dataclass(frozen=True)
class Step:
    """What to do now: at most one store request and at most one group action."""

    request: Request | None = None
    act: Act | None = None
    why: str = ""


class LeaseHolder:
    """One node's view of one group's key. Feed it answers; ask it what to do."""

    def __init__(self, settings: LeaseSettings, node: str, now: float):
        self.settings = settings
        self.node = node
        self.phase = Phase.IDLE
        #: our lease is valid at least until then (send time of its last grant/refresh + TTL)
        self.valid_until = now
        self.holder: str | None = None
        self.wants = True
        #: the group runs here, or its start was asked for (from then until its stop ends)
        self.running = False
        self.outstanding: Request | None = None
        self._last_refresh = now
        self._last_look = now - settings.poll_every
        #: after a failed request, the next one waits until then (a store that is down
        #: is not asked in a tight loop)
        self._retry_at = now

    # -- answers from the store -------------------------------------------------------
    def granted(self, sent_at: float, ttl: float) -> None:
        self.outstanding = None
        self.valid_until = sent_at + ttl
        self._last_refresh = sent_at
        self.phase = Phase.FOLLOWING

    def acquired(self, sent_at: float, ours: bool, holder: str | None) -> None:
        """The create-if-absent transaction's answer: ours, or who holds the key."""
        self.outstanding = None
        self._last_look = sent_at
        self.holder = self.node if ours else holder
        if ours and self.phase is Phase.FOLLOWING:
            self.phase = Phase.HOLDING

    def looked(self, sent_at: float, holder: str | None) -> None:
        self.outstanding = None
        self._last_look = sent_at
        self.holder = holder
        if self.phase is Phase.HOLDING and holder != self.node:
            # the key is gone or someone else's: our lease lapsed in the store
            self.phase = Phase.STOPPING

    def refreshed(self, sent_at: float, ttl_left: float) -> None:
        """A keep-alive's answer; `ttl_left` <= 0 says the store has let the lease go."""
        self.outstanding = None
        self._last_refresh = sent_at
        if ttl_left <= 0:
            self._lost()
            return
        self.valid_until = max(self.valid_until, sent_at + ttl_left)

    def failed(self, request: Request, now: float) -> None:
        """A request got no answer (timeout, no majority, connection refused)."""
        self.outstanding = None
        self._retry_at = now + min(self.settings.poll_every, self.settings.refresh)
        if request is Request.GRANT:
            self.phase = Phase.IDLE

    def revoked(self) -> None:
        self.outstanding = None
        self._lost()

    # -- the group --------------------------------------------------------------------
    def started(self) -> None:
        """The start asked for has finished (the group counted as running since it began)."""
        self.running = True

    def stopped(self) -> None:
        self.running = False
        if self.phase is Phase.STOPPING:
            self.phase = Phase.IDLE if self.valid_until <= self._last_refresh else Phase.FOLLOWING
            self.holder = None

    def want(self, wanted: bool) -> None:
        """Whether this node should hold the group (its resources healthy, ping nodes
        reachable); a holder that no longer wants it stops the group, then revokes."""
        self.wants = wanted

    def _lost(self) -> None:
        self.valid_until = min(self.valid_until, self._last_refresh)
        self.phase = Phase.STOPPING if (self.running or self.phase is Phase.HOLDING) \
            else Phase.IDLE

    # -- the decision -----------------------------------------------------------------
    def step(self, now: float) -> Step:
        s = self.settings
        stop_at = self.valid_until - s.margin
        if self.phase in (Phase.HOLDING, Phase.FOLLOWING) and now >= stop_at:
            self._lost()
        if self.phase is Phase.STOPPING:
            if self.running:
                return Step(act=Act.STOP, why="the lease may lapse in the store before "
                            f"the next refresh: stopping {s.margin:g} s ahead of it")
            if self.outstanding is None and self.valid_until > now:
                return self._ask(Request.REVOKE, "stopped: let the others take it now")
            return Step()
        if self.phase is Phase.HOLDING and not self.wants:
            if self.running:
                # the group still runs here until its stop ends: the lease is kept alive
                # meanwhile, so that a slow stop never lets another node start it too
                refresh = self._refresh_due(now)
                return Step(request=refresh.request if refresh is not None else None,
                            act=Act.STOP, why="this node should no longer hold the group")
            self.phase = Phase.STOPPING
            return self._ask(Request.REVOKE, "stopped: let the others take it now")
        if self.phase is Phase.HOLDING and not self.running:
            self.running = True  # from the moment its start begins
            return Step(act=Act.START, why=f"the key is ours until at least "
                        f"{stop_at:.1f} (TTL - margin)")
        if self.outstanding is not None or now < self._retry_at:
            return Step()
        if self.phase is Phase.IDLE:
            return self._ask(Request.GRANT, "no lease yet")
        refresh = self._refresh_due(now)
        if refresh is not None:
            return refresh
        if self.phase is Phase.FOLLOWING and now >= self._last_look + s.poll_every:
            if self.wants and self.holder is None:
                return self._ask(Request.ACQUIRE, "the key is free and this node may hold it")
            return self._ask(Request.LOOK, "who holds the group?")
        return Step()

    def _refresh_due(self, now: float) -> Step | None:
        """The keep-alive, when one is due and nothing else is asked."""
        if self.outstanding is not None or now < self._retry_at \
                or now < self._last_refresh + self.settings.refresh:
            return None
        return self._ask(Request.REFRESH, "keep-alive due")

    def next_deadline(self, now: float) -> float:
        """When `step` may want something next, if nothing is answered before."""
        s = self.settings
        if self.phase is Phase.IDLE or self.phase is Phase.STOPPING:
            return max(now, self._retry_at)
        times = [self.valid_until - s.margin,
                 max(self._retry_at, self._last_refresh + s.refresh)]
        if self.phase is Phase.FOLLOWING:
            times.append(max(self._retry_at, self._last_look + s.poll_every))
        return max(now, min(times))

    def _ask(self, request: Request, why: str) -> Step:
        self.outstanding = request
        return Step(request=request, why=why)
