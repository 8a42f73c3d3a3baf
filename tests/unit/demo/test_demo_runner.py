"""The demo's runner: scenes side by side, timelines printed whole and in order, a verdict."""

from __future__ import annotations

import threading

from vigil.demo import runner
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
