"""vigil heartbeat's status page in a real browser: a failover seen live, without a reload.

Chromium runs headless inside the lab's client host (it reaches only the lab)
and loads server6's page from server6's lan address; server5 crashes and the
page, polling status.json, shows the group on server6 and server5's death in
its timeline. The screenshot is kept in artifacts/ beside this file (and one of
the page as it was when the test failed, if it does).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.testing import wait_until
from vigil.testing.browser import Chromium, available

pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(not available(), reason="Debian's chromium is not installed")]

PORT = 9694
GROUP = "IPaddr::198.51.100.100/24/eth0"
S5, S6 = "server5.example.com", "server6.example.com"
ARTIFACTS = Path(__file__).parent / "artifacts"
#: what the page shows, read from its live DOM
SHOWN = """((GROUP) => {
  const row = document.querySelector(`#groups tr[data-group="${CSS.escape(GROUP)}"]`);
  return {
    holder: row ? row.querySelector("td.holder").textContent : null,
    state: row ? row.querySelector("td.state").textContent : null,
    nodes: Object.fromEntries([...document.querySelectorAll("#nodes tr")].map(
      (tr) => [tr.dataset.node, tr.querySelector("td.status").textContent])),
    events: [...document.querySelectorAll("#events li")].map(
      (li) => [li.dataset.event, li.querySelector(".fields").textContent]),
    updated: document.getElementById("updated").textContent,
    stale: document.getElementById("updated").className === "stale",
    marker: window.vigilFirstLoad || null,
  };
})(GROUP_JSON)""".replace("GROUP_JSON", json.dumps(GROUP))


def test_the_page_follows_a_failover_live(hb):
    hb.extra = ""
    for name in ("server5", "server6"):
        hb.configure(name)
        host = hb.lab.host(name)
        host.write_file("/etc/ha.d/vigil.cf",
                        f"duplicate_probe off\nmetrics_address {host.address('lan')}:{PORT}\n"
                        "agent IPaddr\n    monitor_interval 500ms\n")
    for name in ("server5", "server6"):
        hb.responder(name)
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    url = f"http://{hb.lab.host('server6').address('lan')}:{PORT}/"

    with Chromium(hb.lab.host("client")) as browser:
        tab = browser.open(url)
        with tab.screenshot_on_failure(ARTIFACTS / "status-page-failed.png"):
            # set once: a reload of the page would forget it
            tab.evaluate("window.vigilFirstLoad = 'kept'")

            def shown() -> dict:
                return tab.evaluate(SHOWN)

            wait_until(lambda: shown()["holder"] == S5 and shown()["nodes"].get(S5) == "active", 15,
                       lambda: f"the page showing {GROUP} on server5\n{json.dumps(shown())}")
            assert shown()["nodes"][S6] == "active"
            assert tab.evaluate("document.title") == f"vigil: {S6}"

            hb.lab.crash("server5")
            wait_until(lambda: shown()["holder"] == S6, 20,
                       lambda: f"the page showing {GROUP} on server6\n{json.dumps(shown())}\n"
                       + hb.logs())
            wait_until(lambda: any(name == "peer.dead" and f"node={S5}" in fields
                                   for name, fields in shown()["events"]), 10,
                       lambda: f"a peer.dead event for server5 on the page\n{json.dumps(shown())}")
            # the holder column names a node from the start of the takeover on
            page = wait_until(
                lambda: ((s := shown())["nodes"].get(S5) == "dead"
                         and s["state"].startswith("here held")
                         and any(name == "group.started" for name, _ in s["events"]) and s),
                10, lambda: f"server5 dead, the group held and started on the page\n"
                f"{json.dumps(shown())}")
            assert page["marker"] == "kept", "the page was reloaded"
            assert not page["stale"] and page["updated"].startswith("live"), page["updated"]
            names = [name for name, _ in page["events"]]
            assert names.index("group.started") < names.index("peer.dead")  # newest first
            secret = hb.lab.host("server6").path("/etc/ha.d/authkeys").read_text().split()[-1]
            assert secret not in tab.evaluate("document.documentElement.outerHTML")
        png = tab.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "status-page.png").write_bytes(png)
    (ARTIFACTS / "status-page-failed.png").unlink(missing_ok=True)  # an earlier run's
    hb.wait_client("server6")
