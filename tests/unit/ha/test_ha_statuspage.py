"""The status page: the engine's real status in, escaped HTML and JSON out, no secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vigil.ha.engine import NodeConfig, NodeEngine
from vigil.ha.groups import groups_from_lines
from vigil.ha.statuspage import NO_DIRECTOR, NO_VOLUME, page_data, render_html, render_json
from vigil.ha.timeline import Timeline
from vigil.membership.auth import AuthKeys
from vigil.membership.liveness import Timings
from vigil.testing.browser import PROGRAM, QUIET

HOSTILE = "<script>alert('x')</script>"
GROUPS = groups_from_lines([("n1", [HOSTILE, "IPaddr::198.51.100.100"]),
                            ("n2", ['MailTo::ops@example.com::"><img src=x onerror=alert(1)>'])])
SECRET = "s3cret-authkey"


def engine_status(now: float = 0.25) -> dict:
    config = NodeConfig(me="n1", nodes=("n1", "n2"), links=("eth0", "eth1"),
                        timings=Timings(keepalive=0.1, deadtime=0.5),
                        keys=AuthKeys.from_pairs(1, {1: ("sha1", SECRET)}), groups=GROUPS)
    engine = NodeEngine(config, uuid=b"u" * 16, generation=3, now=0.0)
    engine.start(0.0)
    status = engine.status(now)
    status["daemon"] = {"version": "9.9", "pid": 42, "driver": "test", "realtime": {},
                        "media": [{"medium": "bcast eth0", "sent": 5}],
                        "authkeys": SECRET}  # nothing the page does not name gets through
    status["fence_password"] = SECRET
    return status


def resources() -> dict[str, tuple[str, ...]]:
    return {g.key: (*g.resources, "fence::passwd=" + SECRET) for g in GROUPS}


def data(events=()) -> dict:
    return page_data(engine_status(), resources(), list(events), now=3600.0)


class Collect(HTMLParser):
    """Every element and text of a page as a parser sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Collect:
    parser = Collect()
    parser.feed(page)
    return parser


def test_the_page_shows_nodes_links_groups_resources_and_where_they_run():
    page = render_html(data())
    parsed = parse(page)
    rows = {attrs["data-node"] for tag, attrs in parsed.tags if "data-node" in attrs}
    assert rows == {"n1", "n2"}
    links = [attrs["data-link"] for tag, attrs in parsed.tags if "data-link" in attrs]
    assert links == ["eth0", "eth1", "eth0", "eth1"]
    groups = [attrs["data-group"] for tag, attrs in parsed.tags if "data-group" in attrs]
    assert groups == [HOSTILE, GROUPS[1].key]  # attribute values read back exactly
    text = "".join(parsed.text)
    assert "IPaddr::198.51.100.100" in text and "nobody" in text and "n1 (this node)" in text
    assert NO_DIRECTOR in text and NO_VOLUME in text
    assert 'id="events"' in page and "status.json" in page


def test_every_value_is_escaped_a_hostile_group_name_stays_text():
    page = render_html(data())
    assert "<script>alert" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # only the page's own script element: none came from a name
    assert [tag for tag, _ in parse(page).tags].count("script") == 1
    assert HOSTILE in "".join(parse(page).text)  # shown as the text it is


def test_hostile_event_fields_and_node_names_are_escaped_too():
    timeline = Timeline(clock=lambda: 7200.0)
    timeline.offer("peer.dead", {"node": "</li><script>x()</script>", "silent": "1.0s"})
    page = render_html(data(timeline.events()))
    assert "<script>x()" not in page and "&lt;/li&gt;&lt;script&gt;x()" in page
    item = [a for t, a in parse(page).tags if a.get("data-event") == "peer.dead"]
    assert len(item) == 1


def test_no_secret_reaches_the_page_or_the_json():
    shown = data()
    page, answer = render_html(shown), render_json(shown).decode()
    for text in (page, answer):
        assert SECRET not in text
        assert "authkeys" not in text and "fence_password" not in text and "media" not in text
    assert "fence::passwd=" + "*" * len(SECRET) in answer


def test_the_json_is_the_page_data_with_events_oldest_first():
    timeline = Timeline(clock=iter([100.0, 101.0]).__next__)
    timeline.offer("peer.dead", {"node": "n2", "silent": "1.2s", "deadtime": "1s"})
    timeline.offer("action.done", {"action": "StartGroup", "target": "g", "ok": True,
                                   "seconds": "0.2"})
    answer = json.loads(render_json(data(timeline.events())))
    assert answer["node"] == "n1" and answer["phase"] == "init"
    assert [g["key"] for g in answer["groups"]] == [HOSTILE, GROUPS[1].key]
    assert answer["groups"][0]["holder"] == [] and answer["groups"][0]["home"] == "n1"
    assert answer["groups"][0]["resources"][:2] == [HOSTILE, "IPaddr::198.51.100.100"]
    assert [n["name"] for n in answer["nodes"]] == ["n1", "n2"]
    assert answer["nodes"][1]["links"][0] == {"name": "eth0", "status": "init",
                                              "last_heard_ago": None}
    assert [(e["event"], e["at"]) for e in answer["events"]] == [
        ("peer.dead", 100.0), ("group.started", 101.0)]
    assert answer["events"][0]["fields"] == {"node": "n2", "silent": "1.2s", "deadtime": "1s"}
    assert answer["daemon"] == {"version": "9.9", "pid": 42, "driver": "test"}
    assert answer["lvs"] == [] and answer["volumes"] == []
    assert answer["generated"] == 3600.0
    # the page lists them newest first
    page = render_html(answer)
    assert page.index('<li data-event="group.started"') < page.index('<li data-event="peer.dead"')
    assert "00:01:41" in page  # 101 s past the epoch, UTC


def test_the_page_is_self_contained_and_polls_status_json():
    page = render_html(data())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    assert 'fetch("status.json"' in page and "setTimeout(poll, 1000)" in page
    assert "innerHTML" not in page  # the script sets text only


def test_the_timeline_keeps_the_last_events_of_interest_with_safe_fields_only():
    timeline = Timeline(size=3, clock=lambda: 1.0)
    assert not timeline.offer("packet.rejected", {"node": "n2"})
    assert not timeline.offer("action.done", {"action": "Announce", "ok": True})
    assert timeline.offer("fence.result", {"node": "n2", "command": "ipmitool -P " + SECRET,
                                           "output": SECRET, "returncode": 0, "fenced": True})
    assert timeline.offer("action.done", {"action": "StopGroup", "target": "g", "ok": False,
                                          "seconds": "1.0"})
    assert timeline.offer("config.changed", {"section": "vigil.cf", "what": "fence_command "
                                             "changed", "change": "old " + SECRET})
    assert timeline.offer("link.dead", {"node": "n2", "link": "eth1", "silent": "1s"})
    events = timeline.events()
    assert [e["event"] for e in events] == ["group.stop_failed", "config.changed", "link.dead"]
    assert [e["id"] for e in events] == [2, 3, 4]
    assert SECRET not in json.dumps(events)
    assert events[1]["fields"] == {"section": "vigil.cf", "what": "fence_command changed"}
    events[0]["fields"]["target"] = "changed by a reader"
    assert timeline.events()[0]["fields"]["target"] == "g"


@pytest.mark.skipif(shutil.which(PROGRAM) is None or os.geteuid() != 0 or not shutil.which(
    "unshare"), reason="needs Debian's chromium and root (an empty network namespace)")
def test_the_script_runs_in_chromium_and_hostile_names_stay_text():
    """The page as a browser makes it, in a network namespace with nothing in it: the
    script runs (its first poll, with no daemon to answer, marks the page stale) and
    draws no element out of a name."""
    # Chromium's sockets live in its profile and TMPDIR: a path short enough for a Unix
    # socket's name, whatever pytest's own temporary directory is called
    with tempfile.TemporaryDirectory(prefix="vsp", dir="/tmp") as short:
        page = Path(short) / "status.html"
        page.write_text(render_html(data()))
        done = subprocess.run(
            ["unshare", "--net", PROGRAM, "--headless=new", "--no-sandbox",
             f"--user-data-dir={short}/profile", *QUIET, "--virtual-time-budget=3000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=60,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": short,
                 "TMPDIR": short})
    dom = done.stdout
    assert '<p id="updated" class="stale">the daemon does not answer' in dom, done.stderr[-2000:]
    assert dom.count("<script") == 1 and "<img" not in dom
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in dom


ANNOUNCE = {"speaker": "bird", "draining": False, "prefixes": [
    {"prefix": "198.51.100.100/32", "announced": True, "cause": "serving"},
    {"prefix": HOSTILE, "announced": False, "cause": HOSTILE}]}
LVS = [{"instance": "ldirectord", "role": "active", "backend": "nftables",
        "announce": ANNOUNCE, "services": [
    {"service": "TCP 198.51.100.100:80", "scheduler": "wlc", "reals": [
        {"real": "198.51.100.21:80", "weight": 1, "forward": "gate", "state": "up",
         "message": "OK"},
        {"real": "198.51.100.22:80", "weight": 0, "forward": "gate", "state": "down",
         "message": HOSTILE}]}]},
    {"instance": HOSTILE, "error": "does not answer: " + HOSTILE}]
VOLUMES = [{"name": "r0", "role": "Primary", "peer_role": "Secondary", "connection": "Connected",
            "replication": "SyncSource", "disk": "UpToDate", "peer_disk": "Inconsistent",
            "io_suspended": "", "sync_paused": "", "out_of_sync": 1048576.0,
            "split_brain": False, "sync": {"percent": 50.0, "rate": 2097152.0, "eta": 0.5,
                                           "left_bytes": 1048576.0}},
           {"name": HOSTILE, "error": HOSTILE}]


def test_the_page_shows_the_directors_table_and_the_volumes_sync():
    shown = page_data(engine_status(), resources(), [], now=3600.0, lvs=LVS, volumes=VOLUMES)
    page = render_html(shown)
    parser = Collect()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "director ldirectord (active, nftables backend)" in text
    rows = {a.get("data-real"): a.get("class") for tag, a in parser.tags if tag == "tr"
            and "data-real" in a}
    assert rows == {"198.51.100.21:80": "c-up", "198.51.100.22:80": "c-down"}
    assert "announced to the routers through bird" in text
    prefixes = {a.get("data-prefix"): a.get("class") for tag, a in parser.tags if tag == "li"
                and "data-prefix" in a}
    assert prefixes == {"198.51.100.100/32": "up", HOSTILE: "down"}
    assert "198.51.100.100/32: announced (serving)" in text
    assert "Primary/Secondary" in text and "UpToDate/Inconsistent" in text
    assert "Connected SyncSource" in text and "50.0% at 2.0 MiB/s, 0s left" in text
    assert f'<p class="note">{NO_DIRECTOR}</p>' not in page
    assert '<p class="note" id="no-volume"></p>' in page
    assert HOSTILE not in page
    assert json.loads(render_json(shown))["lvs"] == LVS
