"""The three demo scenes, played side by side as `vigil demo` plays them.

Each scene gets its own seed lab, started on the first test that asks for
any of them; every test then waits for its own scene and inspects that lab
(still up) before taking it down. Together they take about as long as the
longest one.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from vigil.demo import director_scene, heartbeat_scene, replication_scene
from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.lab import Lab, seed_topology

#: How long a scene may take, at most, on a loaded machine.
SCENE_DEADLINE = 300.0


@dataclass
class Played:
    """One scene playing in its own lab, in a thread of its own."""

    lab: Lab
    play: Callable[[Timeline], object]
    out: io.StringIO = field(default_factory=io.StringIO)
    outcome: object = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            self.outcome = self.play(Timeline(out=self.out))
        except BaseException as exc:  # reported by the test that waits for it
            self.error = exc
        finally:
            self.done.set()

    def wait(self) -> object:
        assert self.done.wait(SCENE_DEADLINE), f"the scene ran past {SCENE_DEADLINE:g} s\n" \
            + self.out.getvalue()
        print(self.out.getvalue())
        if self.error is not None:
            raise self.error
        return self.outcome

    @property
    def timeline(self) -> str:
        return self.out.getvalue()


def _director(lab: Lab) -> Callable[[Timeline], object]:
    def play(timeline: Timeline) -> director_scene.DirectorScene:
        scene = director_scene.DirectorScene(lab, timeline)
        scene.play()
        return scene  # the test reads its per-fault counts as well as its result
    return play


def _scene(run: Callable[[Lab, Timeline], SceneResult], lab: Lab) \
        -> Callable[[Timeline], object]:
    return lambda timeline: run(lab, timeline)


@pytest.fixture(scope="session")
def demo_scenes() -> Iterator[dict[str, Played]]:
    """heartbeat, replicated, director: each scene started at once in its own lab."""
    labs: list[Lab] = []
    played: dict[str, Played] = {}
    try:
        for name in ("heartbeat", "replicated", "director"):
            lab = Lab(seed_topology())
            labs.append(lab)
            lab.up()
            play = {"heartbeat": _scene(heartbeat_scene.run, lab),
                    "replicated": _scene(replication_scene.run, lab),
                    "director": _director(lab)}[name]
            played[name] = Played(lab, play)
        for scene in played.values():
            scene.start()
        yield played
    finally:
        for scene in played.values():  # a scene still playing is ended with its lab
            scene.done.wait(SCENE_DEADLINE)
        for lab in labs:
            lab.down()
