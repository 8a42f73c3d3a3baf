"""Run the demo's scenes, each in a fresh seed lab, and print the summary table.

The scenes play side by side, each in its own lab, as they would on three
pairs of machines: most of a scene is waiting (the tutorial's deadtime is
30 s), so together they take little more than the longest one. Their
timelines are printed one after the other, the first one live.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from vigil.demo import director_scene, heartbeat_scene, replication_scene, topology_scene
from vigil.demo.scene import Scene, SceneResult, summary_table
from vigil.demo.timeline import Timeline
from vigil.demo.waiting import Waiting, status_line
from vigil.lab import Lab, seed_topology

#: The scenes in the order the tutorial builds its setups.
SCENES: list[tuple[str, Scene]] = [
    ("the seed's machines on one host", topology_scene.run),
    (heartbeat_scene.TITLE, heartbeat_scene.run),
    (replication_scene.TITLE, replication_scene.run),
    (director_scene.TITLE, director_scene.run),
]

#: How often the live printer looks for new timeline lines.
PRINT_INTERVAL = 0.1


class SceneText(io.TextIOBase):
    """A scene's timeline text, written by its thread and read by the printer."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._chunks.append(text)
        return len(text)

    def take(self) -> str:
        with self._lock:
            text, self._chunks = "".join(self._chunks), []
        return text


@dataclass
class Playing:
    """One scene on its way: its lab, its text, its result once done."""

    title: str
    scene: Scene
    keep: bool
    text: SceneText = field(default_factory=SceneText)
    result: SceneResult | None = None
    run_id: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def play(self) -> None:
        try:
            self.result, self.run_id = play(self.title, self.scene, Timeline(out=self.text),
                                            self.keep)
        except Exception as error:  # a lab that would not come up: reported, not raised
            self.result = SceneResult(self.title)
            self.result.problems.append(f"the scene's lab failed: {error}")
        finally:
            self.done.set()


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


def print_in_order(playing: list[Playing], clock: Callable[[], float] = time.monotonic,
                   out: TextIO | None = None) -> None:
    """Each scene's timeline in turn: the current one as it happens, later ones caught up;
    while the current one is quiet, which scene runs and for how long (`waiting`)."""
    out = out if out is not None else sys.stdout
    started = clock()
    status = Waiting(out, is_tty=out.isatty(), last_printed=started)
    for index, scene in enumerate(playing, 1):
        while True:
            finished = scene.done.wait(PRINT_INTERVAL)
            now = clock()
            status.printed(scene.text.take(), now)
            if finished:
                status.printed(scene.text.take(), now)
                break
            alongside = sum(1 for other in playing[index:] if not other.done.is_set())
            status.quiet(status_line(index, len(playing), scene.title, now - started,
                                     alongside), now)
            out.flush()
    status.done()
    out.flush()


def run(keep: bool = False, only: list[str] | None = None, one_by_one: bool = False) -> int:
    started = time.monotonic()
    playing = [Playing(title, scene, keep) for title, scene in SCENES
               if not only or any(word in title for word in only)]
    if one_by_one:
        for scene in playing:
            scene.play()
            sys.stdout.write(scene.text.take())
    else:
        threads = [threading.Thread(target=scene.play, name=scene.title[:15], daemon=True)
                   for scene in playing]
        for thread in threads:
            thread.start()
        print_in_order(playing)
        for thread in threads:
            thread.join()
    results = [scene.result for scene in playing if scene.result is not None]
    print("\nsummary")
    for line in summary_table(results):
        print(f"  {line}")
    print(f"  demo took {time.monotonic() - started:.1f} s"
          + (" (scenes one by one)" if one_by_one else " (scenes side by side, one lab each)"))
    if keep:
        for scene in playing:
            if scene.run_id:
                print(f"\nlab {scene.run_id} left up ({scene.title}):\n"
                      f"  vigil lab exec --lab {scene.run_id} HOST -- CMD;"
                      f" vigil lab down --lab {scene.run_id}")
    else:
        print("\nevery lab torn down")
    return 0 if all(result.passed for result in results) else 1
