"""The demo's runner: scenes side by side, timelines printed whole and in order, a verdict."""

from __future__ import annotations

import io
import threading

from vigil.demo import runner, waiting
from vigil.demo.scene import SceneResult, summary_table
from vigil.demo.timeline import Timeline


def fake_play(release: dict[str, threading.Event]):
    """Scenes that write two lines, the second only once the test lets them finish."""

    def play(title, scene, timeline: Timeline, keep):
        timeline.scene(title)
        timeline.event(f"{title} first")
        release[title].wait(5)
        timeline.event(f"{title} second")
        result = SceneResult(title, timings={"takeover": 0.5}, requests_failed=0)
        if title == "broken":
            result.problems.append("the VIP is on both nodes")
        return result, f"lab-{title}"

    return play


def test_scenes_play_side_by_side_and_print_in_order(monkeypatch, capsys):
    titles = ["one", "two", "broken"]
    release = {title: threading.Event() for title in titles}
    monkeypatch.setattr(runner, "SCENES", [(title, None) for title in titles])
    monkeypatch.setattr(runner, "play", fake_play(release))
    # the last scene finishes first: its text still comes last
    release["broken"].set()
    release["two"].set()
    threading.Timer(0.3, release["one"].set).start()
    code = runner.run()
    out = capsys.readouterr().out
    positions = [out.index(f"{title} {part}") for title in titles
                 for part in ("first", "second")]
    assert positions == sorted(positions)  # each timeline whole, in the scenes' order
    assert code == 1  # one scene has a problem
    assert "problem: the VIP is on both nodes" in out and "every lab torn down" in out


def test_only_the_named_scenes_play(monkeypatch, capsys):
    release = {title: threading.Event() for title in ("heartbeat pair", "director")}
    for event in release.values():
        event.set()
    monkeypatch.setattr(runner, "SCENES", [(title, None) for title in release])
    monkeypatch.setattr(runner, "play", fake_play(release))
    assert runner.run(only=["director"], one_by_one=True) == 0
    out = capsys.readouterr().out
    assert "director first" in out and "heartbeat pair" not in out


def test_summary_table_rows():
    ok = SceneResult("replicated MySQL", timings={"detected": 29.5, "takeover": 1.08},
                     requests_failed=0, rows_lost=0)
    lines = summary_table([ok])
    assert lines[2].split() == ["replicated", "MySQL", "0", "0", "ok"]
    assert lines[3].strip() == "detected 29.50 s, takeover 1.08 s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_scene_says_which_scene_runs_and_for_how_long():
    assert waiting.status_line(2, 4, "the heartbeat pair", 23.4, 2) == \
        "scene 2/4, the heartbeat pair: 23 s (2 more scenes running alongside)"
    assert waiting.status_line(4, 4, "director", 61.0, 0) == "scene 4/4, director: 61 s"
    clock = FakeClock()
    # into a log: a plain line only after QUIET_EVERY without output
    log = io.StringIO()
    status = waiting.Waiting(log, is_tty=False, last_printed=clock())
    clock.now += waiting.QUIET_EVERY - 1
    status.quiet("scene 1/1, x: 14 s", clock())
    assert log.getvalue() == ""
    clock.now += 1
    status.quiet("scene 1/1, x: 15 s", clock())
    assert log.getvalue() == "  ... scene 1/1, x: 15 s\n"
    status.printed("timeline line\n", clock())
    clock.now += 5
    status.quiet("scene 1/1, x: 20 s", clock())
    assert log.getvalue().endswith("timeline line\n")
    # on a terminal: redrawn in place, wiped before the timeline goes on
    tty = io.StringIO()
    status = waiting.Waiting(tty, is_tty=True, last_printed=clock())
    status.quiet("a", clock())
    clock.now += 0.5
    status.quiet("b", clock())  # too soon to redraw
    clock.now += 0.5
    status.quiet("c", clock())
    status.printed("event\n", clock())
    status.quiet("d", clock())
    status.done()
    clear = waiting.CLEAR
    assert tty.getvalue() == f"{clear}a{clear}c{clear}event\n{clear}d{clear}"


def test_the_live_printer_shows_the_status_between_timeline_lines(monkeypatch):
    release = threading.Event()
    scene = runner.Playing("slow scene", None, keep=False)
    scene.text.write("first\n")
    clock = FakeClock()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()

    def tick(timeout=None):  # each wait of the printer is a second of the fake clock
        clock.now += 1.0
        if clock.now >= 103:
            scene.text.write("second\n")
            release.set()
        return release.is_set()

    monkeypatch.setattr(scene.done, "wait", tick)
    runner.print_in_order([scene], clock=clock, out=out)
    text = out.getvalue()
    assert "first\n" in text and "second\n" in text
    assert "scene 1/1, slow scene: 1 s" in text and "scene 1/1, slow scene: 2 s" in text
    assert text.endswith(waiting.CLEAR + "second\n")  # the status line wiped first
