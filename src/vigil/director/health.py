"""The health policy: check results in, the desired table and side effects out.

Pure: observations and `now` in; a `Decision` (actions plus a one-line reason)
out, and `desired()` gives the table the backend should hold. ldirectord's
rules, state by state (TRANSITIONS below is the whole table):

* a real server starts UNCHECKED and gets no traffic until a check passes
  (present at weight 0 when quiescent, absent otherwise);
* UP -> DOWN after `failurecount` consecutive failures ("soft failures" before);
  UNCHECKED/DOWN -> UP after `rise` consecutive passes (ldirectord: 1);
* DOWN: weight 0 when quiescent (existing connections go on), else removed;
* a file in `maintenancedir` forces DOWN at once and check results are ignored
  until it goes; the server then needs a passing check to come back;
* checktype=on: every real server UP, no checks; off: no real server, no fallback;
* the fallback server (weight 1) is in the table while no real server is UP,
  once every real server has been checked (no sorry page during the first round);
* `fallbackcommand start|stop` runs once per change of "no real server up";
* a real server removed by hand (`vigil lvs -d`) stays out until its next
  transition; a quiescent DOWN one comes back at weight 0 when `readdquiescent`;
* e-mail alerts on every transition, repeated every `emailalertfreq` while down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vigil.director.settings import DirectorConfig, ServiceConfig
from vigil.lvs.table import (
    RealKey,
    RealServer,
    ServiceKey,
    Table,
    VirtualService,
    format_endpoint,
)


class State(StrEnum):
    UNCHECKED = "unchecked"
    UP = "up"
    DOWN = "down"


class Event(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    MAINTENANCE = "maintenance"
    FORCE_UP = "force-up"  # checktype=on


#: Which state an event may lead to; (state, event) pairs not listed are illegal.
TRANSITIONS: dict[State, dict[Event, frozenset[State]]] = {
    State.UNCHECKED: {
        Event.PASS: frozenset({State.UNCHECKED, State.UP}),
        Event.FAIL: frozenset({State.DOWN}),
        Event.MAINTENANCE: frozenset({State.DOWN}),
        Event.FORCE_UP: frozenset({State.UP}),
    },
    State.UP: {
        Event.PASS: frozenset({State.UP}),
        Event.FAIL: frozenset({State.UP, State.DOWN}),
        Event.MAINTENANCE: frozenset({State.DOWN}),
        Event.FORCE_UP: frozenset({State.UP}),
    },
    State.DOWN: {
        Event.PASS: frozenset({State.DOWN, State.UP}),
        Event.FAIL: frozenset({State.DOWN}),
        Event.MAINTENANCE: frozenset({State.DOWN}),
        Event.FORCE_UP: frozenset({State.UP}),
    },
}


class IllegalTransition(AssertionError):
    """The policy tried a move its state table forbids (a bug, never input)."""


# -- actions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    service: ServiceKey
    real: RealKey
    old: State
    new: State
    why: str


@dataclass(frozen=True)
class SoftFailure:
    service: ServiceKey
    real: RealKey
    count: int
    limit: int
    why: str


@dataclass(frozen=True)
class RunFallbackCommand:
    """`command start|stop vip:port protocol`, as ldirectord calls it."""

    command: str
    verb: str
    service: ServiceKey

    @property
    def argv(self) -> list[str]:
        key = self.service
        where = str(key.fwmark) if key.fwmark else format_endpoint(key.address, key.port)
        return [self.command, self.verb, where, key.protocol.value]


@dataclass(frozen=True)
class SendAlert:
    recipients: tuple[str, ...]
    subject: str
    body: str
    smtp: str | None


Action = Transition | SoftFailure | RunFallbackCommand | SendAlert


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...] = ()
    reason: str = ""
    #: a fallback server went in or out, or a fallbackcommand runs: the table changes
    #: without a real server's transition saying so
    fallback_changed: bool = False

    def __bool__(self) -> bool:
        return bool(self.actions)

    def __add__(self, other: Decision) -> Decision:
        reason = "; ".join(r for r in (self.reason, other.reason) if r)
        return Decision(self.actions + other.actions, reason,
                        self.fallback_changed or other.fallback_changed)


NO_DECISION = Decision()


@dataclass
class RealHealth:
    state: State = State.UNCHECKED
    failures: int = 0
    passes: int = 0
    maintenance: bool = False
    removed_by_hand: bool = False
    message: str = ""
    since: float = 0.0
    last_alert: float | None = None


@dataclass
class ServiceHealth:
    config: ServiceConfig
    reals: dict[RealKey, RealHealth] = field(default_factory=dict)
    fallback_active: bool = False
    fallback_command_state: str | None = None


class HealthPolicy:
    """Every service's health; feed it results, read back `desired()`."""

    def __init__(self, config: DirectorConfig, now: float):
        self.config = config
        self.phase = "starting"
        self.services: dict[ServiceKey, ServiceHealth] = {}
        self.configure(config, now)

    # -- configuration -------------------------------------------------------------------
    def configure(self, config: DirectorConfig, now: float) -> Decision:
        """Take a new configuration; unchanged services and reals keep their state."""
        self.config = config
        old = self.services
        self.services = {}
        decision = Decision()
        for service in config.services:
            previous = old.get(service.key)
            health = ServiceHealth(service)
            if previous is not None:
                health.fallback_active = previous.fallback_active
                health.fallback_command_state = previous.fallback_command_state
            for spec in service.reals:
                carried = previous.reals.get(spec.key) if previous else None
                health.reals[spec.key] = carried or RealHealth(since=now)
            self.services[service.key] = health
            if service.check.checktype == "on":
                for key in health.reals:
                    decision += self._move(health, key, Event.FORCE_UP, "checktype=on", now)
            decision += self._settle_fallback(health)
        return decision

    # -- observations --------------------------------------------------------------------
    def observe(
        self, service: ServiceKey, real: RealKey, ok: bool, now: float, message: str = ""
    ) -> Decision:
        """One check result for one real server of one service."""
        health = self.services.get(service)
        if health is None or real not in health.reals:
            return Decision(reason=f"ignored result for unknown {service} -> {real}")
        current = health.reals[real]
        current.message = message
        # The common case at scale: a result that confirms the state changes nothing.
        if ok and current.state is State.UP and not current.maintenance:
            current.failures = 0
            current.passes += 1
            return NO_DECISION
        if not ok and current.state is State.DOWN and not current.maintenance:
            current.passes = 0
            return NO_DECISION
        if current.maintenance:
            return Decision(reason=f"{real} in maintenance: result ignored")
        event = Event.PASS if ok else Event.FAIL
        decision = self._move(health, real, event, message or event.value, now)
        if not any(isinstance(a, Transition) for a in decision.actions):
            return decision  # no state changed: the fallback cannot have either
        return decision + self._settle_fallback(health)

    def set_maintenance(self, service: ServiceKey, real: RealKey, on: bool, now: float) -> Decision:
        health = self.services.get(service)
        if health is None or real not in health.reals:
            return Decision()
        current = health.reals[real]
        if current.maintenance == on:
            return Decision()
        current.maintenance = on
        if not on:
            return Decision(reason=f"{real} ({service}) left maintenance: waiting for a check")
        decision = self._move(health, real, Event.MAINTENANCE, "Server in maintenance", now)
        return decision + self._settle_fallback(health)

    def removed_by_hand(self, service: ServiceKey, real: RealKey) -> Decision:
        """Someone deleted this real server from the table by hand."""
        health = self.services.get(service)
        if health is None or real not in health.reals:
            return Decision()
        current = health.reals[real]
        if self.config.readdquiescent and health.config.quiescent and current.state != State.UP:
            return Decision(reason=f"{real} ({service}) removed by hand: re-added quiescent")
        current.removed_by_hand = True
        return Decision(reason=f"{real} ({service}) removed by hand: left out until it changes")

    def tick(self, now: float) -> Decision:
        """Time passes: repeat e-mail alerts for servers still down."""
        decision = Decision()
        for health in self.services.values():
            freq = health.config.emailalertfreq
            if not health.config.emailalert or freq <= 0:
                continue
            for key, real in health.reals.items():
                if real.state == State.DOWN and real.last_alert is not None \
                        and now - real.last_alert >= freq:
                    real.last_alert = now
                    decision += self._alert(health, key, real, "still down", now)
        return decision

    def next_deadline(self) -> float | None:
        """When `tick` next has something to do (None: nothing scheduled)."""
        times = [
            real.last_alert + health.config.emailalertfreq
            for health in self.services.values()
            if health.config.emailalert and health.config.emailalertfreq > 0
            for real in health.reals.values()
            if real.state == State.DOWN and real.last_alert is not None
        ]
        return min(times) if times else None

    # -- the table -----------------------------------------------------------------------
    def desired(self) -> Table:
        return Table.of(self.desired_service(h) for h in self.services.values())

    def desired_service(self, health: ServiceHealth) -> VirtualService:
        config = health.config
        base = config.service.without_reals()
        if config.check.checktype == "off":
            return base
        reals: list[RealServer] = []
        for spec in config.reals:
            real = health.reals[spec.key]
            if real.state == State.UP and not real.maintenance:
                if not real.removed_by_hand:
                    reals.append(spec.real)
            elif config.quiescent and not real.removed_by_hand:
                reals.append(spec.real.with_weight(0))
        fallback = config.fallback
        if (health.fallback_active and fallback is not None
                and all(r.key != fallback.key for r in reals)):
            reals.append(fallback.with_weight(1))
        return base.with_reals(reals)

    def stop_table(self) -> Table:
        """What stays in the table after a clean stop: services with cleanstop=no."""
        return Table.of(
            self.desired_service(h) for h in self.services.values() if not h.config.cleanstop
        )

    # -- internals -----------------------------------------------------------------------
    def _move(
        self, health: ServiceHealth, key: RealKey, event: Event, why: str, now: float
    ) -> Decision:
        real = health.reals[key]
        config = health.config
        old = real.state
        actions: list[Action] = []
        if event is Event.PASS:
            real.failures = 0
            real.passes += 1
            new = State.UP if old == State.UP or real.passes >= config.rise else old
        elif event is Event.FAIL:
            real.passes = 0
            if old == State.UP:
                real.failures += 1
                if real.failures < config.failurecount:
                    actions.append(SoftFailure(config.key, key, real.failures,
                                               config.failurecount, why))
                    new = State.UP
                else:
                    new = State.DOWN
            else:
                new = State.DOWN
        elif event is Event.MAINTENANCE:
            real.passes = 0
            new = State.DOWN
        else:
            new = State.UP
        if new not in TRANSITIONS[old][event]:
            raise IllegalTransition(f"{old} --{event}--> {new}")
        if new == old:
            if actions:
                soft = actions[0]
                assert isinstance(soft, SoftFailure)
                return Decision(tuple(actions), f"soft failure {key} ({config.key}) "
                                f"{soft.count}/{soft.limit}: {why}")
            return Decision()
        real.state = new
        real.since = now
        real.failures = 0
        readd = new == State.DOWN and config.quiescent and self.config.readdquiescent
        if new == State.UP or readd:
            real.removed_by_hand = False
        actions.append(Transition(config.key, key, old, new, why))
        reason = f"real server {key} ({config.key}) {old} -> {new}: {why}"
        decision = Decision(tuple(actions), reason)
        if old != State.UNCHECKED or new == State.DOWN:
            real.last_alert = now if new == State.DOWN else None
            decision += self._alert(health, key, real, str(new), now)
        return decision

    def _alert(
        self, health: ServiceHealth, key: RealKey, real: RealHealth, what: str, now: float
    ) -> Decision:
        config = health.config
        if not config.emailalert or self.phase not in config.emailalertstatus:
            return Decision()
        name = config.servicename or str(config.key)
        subject = f"vigil director: real server {key} {what} ({name})"
        lines = [
            f"Virtual service: {config.key}",
            f"Real server: {key}",
            f"State: {real.state}",
            f"Last check: {real.message or '-'}",
        ]
        if config.comment:
            lines.append(f"Comment: {config.comment}")
        alert = SendAlert(config.emailalert, subject, "\n".join(lines) + "\n", config.smtp)
        return Decision((alert,))

    def _settle_fallback(self, health: ServiceHealth) -> Decision:
        config = health.config
        if config.check.checktype == "off":
            return Decision()
        states = [r.state for r in health.reals.values()]
        any_up = any(
            r.state == State.UP and not r.maintenance for r in health.reals.values()
        )
        all_checked = State.UNCHECKED not in states
        actions: list[Action] = []
        reasons: list[str] = []
        if any_up and health.fallback_active:
            health.fallback_active = False
            reasons.append(f"fallback off for {config.key}")
        elif not any_up and not health.fallback_active and all_checked:
            health.fallback_active = True
            if config.fallback is not None:
                reasons.append(f"fallback on for {config.key}: no real server is up")
        wanted = None
        if any_up and health.fallback_command_state == "start":
            wanted = "stop"
        elif not any_up and all_checked and health.fallback_command_state != "start":
            wanted = "start"
        if wanted is not None:
            health.fallback_command_state = wanted
            if config.fallbackcommand:
                actions.append(RunFallbackCommand(config.fallbackcommand, wanted, config.key))
                reasons.append(f"fallbackcommand {wanted} for {config.key}")
        return Decision(tuple(actions), "; ".join(reasons), fallback_changed=bool(reasons))

    # -- inspection ----------------------------------------------------------------------
    def state_of(self, service: ServiceKey, real: RealKey) -> State:
        return self.services[service].reals[real].state

    def snapshot(self) -> list[dict[str, object]]:
        """Per real server state, for `vigil director status`."""
        rows = []
        for key, health in self.services.items():
            for real_key, real in health.reals.items():
                rows.append({
                    "service": str(key),
                    "real": str(real_key),
                    "state": str(real.state),
                    "maintenance": real.maintenance,
                    "failures": real.failures,
                    "message": real.message,
                    "fallback_active": health.fallback_active,
                })
        return rows
