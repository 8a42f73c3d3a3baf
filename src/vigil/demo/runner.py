"""Run the demo's scenes, each in a fresh seed lab, and print the summary table."""

from __future__ import annotations

import time

from vigil.demo import director_scene, heartbeat_scene, replication_scene, topology_scene
from vigil.demo.scene import Scene, SceneResult, summary_table
from vigil.demo.timeline import Timeline
from vigil.lab import Lab, seed_topology

#: The scenes in the order the tutorial builds its setups.
SCENES: list[tuple[str, Scene]] = [
    ("the seed's machines on one host", topology_scene.run),
    (heartbeat_scene.TITLE, heartbeat_scene.run),
    (replication_scene.TITLE, replication_scene.run),
    (director_scene.TITLE, director_scene.run),
]

#: What the demo cannot show yet, said plainly.
NOT_YET: list[str] = []


def play(title: str, scene: Scene, timeline: Timeline, keep: bool) -> tuple[SceneResult, str]:
    """One scene in its own lab: a crash in one scene never leaks into the next."""
    lab = Lab(seed_topology())
    lab.up()
    try:
        try:
            result = scene(lab, timeline)
        except Exception as error:  # the demo reports a broken scene and goes on
            result = SceneResult(title)
            result.problems.append(f"the scene stopped: {type(error).__name__}: {error}")
    finally:
        if keep:
            lab.detached = True
            lab._unregister_cleanup()
            lab.save()
        else:
            lab.down()
    return result, lab.run_id


def run(keep: bool = False, only: list[str] | None = None) -> int:
    timeline = Timeline()
    started = time.monotonic()
    results: list[SceneResult] = []
    kept: list[str] = []
    for title, scene in SCENES:
        if only and not any(word in title for word in only):
            continue
        result, run_id = play(title, scene, timeline, keep)
        results.append(result)
        kept.append(run_id)
    if NOT_YET:
        print("\nnot shown yet:")
        for line in NOT_YET:
            print(f"  - {line}")
    print("\nsummary")
    for line in summary_table(results):
        print(f"  {line}")
    print(f"  demo took {time.monotonic() - started:.1f} s")
    if keep:
        for run_id in kept:
            print(f"\nlab {run_id} left up: vigil lab exec --lab {run_id} HOST -- CMD;"
                  f" vigil lab down --lab {run_id}")
    else:
        print("\nevery lab torn down")
    return 0 if all(result.passed for result in results) else 1
