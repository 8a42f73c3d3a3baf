"""`vigil torture`: build the lab, run a setup, inject the seed's faults, judge, report.

The loop is the shell around the pure schedule and checker: it injects one fault
at a time, waits (with a deadline) until the checker calls the setup settled,
keeps the planned calm, then has the checker judge the fault's whole window.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from vigil.lab import Lab, seed_topology
from vigil.torture import report
from vigil.torture.checks import SETTLE_BOUND, STABLE, Outcome, judge, settled_at
from vigil.torture.director_setup import DirectorSetup
from vigil.torture.heartbeat_setup import NODES, HeartbeatSetup, SetupFailed
from vigil.torture.mixed_setup import Heartbeat306Setup, MixedSetup
from vigil.torture.replicated_setup import ReplicatedSetup
from vigil.torture.schedule import Fault, FaultKind, faults

#: Setups the campaign can run, by name.
SETUPS: dict[str, Callable[[Lab], HeartbeatSetup]] = {"heartbeat": HeartbeatSetup,
                                                      "replicated": ReplicatedSetup,
                                                      "director": DirectorSetup,
                                                      "mixed": MixedSetup,
                                                      "heartbeat306": Heartbeat306Setup}
#: How long the first start may take (two MariaDB datadirs prepared, daemons, initdead).
START_DEADLINE = 120.0
#: A fault is not begun unless this much of the budget is left (it may take this long).
FAULT_RESERVE = 10.0


@dataclass
class Campaign:
    """One campaign's record: the outcomes judged and the checks at the end."""

    setup: str
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    final: list[str] = field(default_factory=list)
    rows_lost: int | None = None
    seconds: float = 0.0

    @property
    def violations(self) -> int:
        return sum(len(o.violations) for o in self.outcomes) + len(self.final)


def wait_settled(setup: HeartbeatSetup, since: float, deadline: float,
                 home: str | None = None) -> tuple[float, str] | None:
    """Poll the checker's own settle rule until it holds or `deadline` (monotonic) passes."""
    while True:
        now = time.monotonic()
        settled = settled_at(setup.samples, setup.queries(), since, now, home)
        if settled is not None or now > deadline:
            return settled
        time.sleep(0.2)


def run(setup_name: str, seed: int, seconds: float, max_faults: int | None = None,
        out: TextIO = sys.stdout, json_path: Path | None = None,
        only: tuple[FaultKind, ...] | None = None, first_fault: int = 0) -> Campaign:
    """Run one campaign of `seconds` of faults (or up to fault `max_faults`), print it,
    return its record. `first_fault` skips the seed's faults before it: a fault's kind, role
    and times come from the seed alone, so one found late in a long run is replayed on a
    fresh setup in a minute."""
    make = SETUPS[setup_name]
    campaign = Campaign(setup_name, seed)
    began = time.monotonic()
    lab = Lab(seed_topology())
    setup = make(lab)
    timing = setup.timing

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    kinds = f" --kinds {','.join(only)}" if only else ""
    if first_fault:
        kinds += f" --from-fault {first_fault}"
    say(f"== vigil torture --setup {setup_name} --seed {seed}{kinds}: lab {lab.run_id}, "
        f"keepalive {timing.keepalive:g} s, deadtime {timing.deadtime:g} s")
    try:
        lab.up()
        if only is not None and FaultKind.CLOCK_JUMP in only:
            for node in NODES:  # before their daemons start: they inherit it
                lab.host(node).allow_clock_steps()
        setup.start()
        origin = time.monotonic()
        if wait_settled(setup, origin, origin + START_DEADLINE, setup.home) is None:
            raise SetupFailed(f"{setup.home} did not take its group and serve the client "
                              f"within {START_DEADLINE:g} s of the start")
        say(f"[{time.monotonic() - origin:8.2f}s] {setup.home} holds the VIP and serves the "
            "client; faults begin")
        stop_at = time.monotonic() + seconds
        for fault in faults(seed, setup_name, timing, only):
            if max_faults is not None and fault.index >= max_faults:
                break
            if fault.index < first_fault:
                continue
            if time.monotonic() + FAULT_RESERVE > stop_at:
                break
            outcome = _one_fault(setup, fault)
            campaign.outcomes.append(outcome)
            now = time.monotonic()
            for line in report.fault_lines(outcome, setup.samples, origin, now):
                say(line)
            if setup.arp is not None:
                for line in report.arp_lines(outcome, list(setup.arp.samples),
                                             list(setup.arp.cache), now):
                    say(line)
            if outcome.settled is not None:
                for line in setup.after_fault(outcome):
                    say(f"{'':12}{line}")
            if outcome.settled is None:
                say(f"{'':12}the campaign stops: the setup did not settle after this fault")
                break
        end = time.monotonic()
        if campaign.outcomes and campaign.outcomes[-1].settled is not None:
            calm = wait_settled(setup, end, end + timing.deadtime + SETTLE_BOUND)
            if calm is None:
                campaign.final.append("no node held the VIP alone and served the client "
                                      "once the faults stopped")
        setup.finish()
        campaign.final += setup.final_checks([o.injected for o in campaign.outcomes])
        campaign.rows_lost = setup.rows_lost()
    finally:
        # a violation's evidence is in the hosts' logs: keep the lab's files then
        kept = lab.keep_files or campaign.violations > 0
        lab.keep_files = kept
        try:
            setup.stop()
        finally:
            lab.down()
    # kept files (VIGIL_LAB_KEEP=1, or a violation) are there on purpose: not a leftover
    left = [x for x in lab.leftovers() if not (kept and x.startswith("directory "))]
    if left:
        campaign.final.append(f"the lab left {', '.join(left)}")
    campaign.seconds = time.monotonic() - began
    say("")
    if kept:
        say(f"the lab's files (each host's /var/log and the daemons' output) are kept in "
            f"{lab.directory}; remove them with rm -r when done")
    for line in setup.end_notes():
        say(line)
    for line in report.bounds(timing):
        say(line)
    for line in report.table(setup_name, campaign.outcomes, campaign.rows_lost, campaign.final):
        say(line)
    say(f"{len(campaign.outcomes)} faults in {campaign.seconds:.0f} s; "
        f"{campaign.violations} invariant violations")
    if json_path is not None:
        json_path.write_text(json.dumps(report.document(
            setup_name, seed, timing, campaign.outcomes, campaign.rows_lost, campaign.final,
            campaign.seconds, setup.end_notes()), indent=1) + "\n")
    return campaign


def _one_fault(setup: HeartbeatSetup, fault: Fault) -> Outcome:
    """Inject, heal, wait for the settle (bounded), keep the calm, then judge the window.

    A settle undone during the calm (heartbeat 3.0.6 restarts itself a few seconds
    after a split, giving its groups up) is waited for again while the deadline
    allows: the verdict is on the state the setup came to rest in, not on a moment.
    """
    injected = setup.inject(fault)
    deadline = injected.healed + setup.timing.deadtime + SETTLE_BOUND + STABLE + 5.0
    while True:
        wait_settled(setup, injected.healed, deadline)
        time.sleep(fault.calm)
        outcome = judge(injected, setup.samples, setup.queries(), time.monotonic(),
                        setup.timing)
        if outcome.settled is not None or time.monotonic() > deadline:
            return outcome
