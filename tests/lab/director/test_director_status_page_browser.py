"""The director pair's status page in a real browser: the group and the director move.

The tutorial's director pair (`IPaddr ldirectord` under vigil heartbeat, a warm
standby director on both nodes) with `metrics_address` set; headless Chromium in
the lab's client loads server6's page. Before the crash it shows server6's
director as a warm standby with both real servers checked up; server5 crashes
and, without a reload, the page shows the group on server6 and its director
active with the same real servers. The screenshot is kept in artifacts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.testing import wait_until
from vigil.testing.browser import Chromium, available
from vigil.testing.director_pair import DIRECTORS, VIP, start_pair

pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(not available(), reason="Debian's chromium is not installed")]

PORT = 9696
S5, S6 = "server5.example.com", "server6.example.com"
ARTIFACTS = Path(__file__).parent / "artifacts"
#: what the page shows, read from its live DOM
SHOWN = """(() => {
  const group = document.querySelector("#groups tr");
  const heads = [...document.querySelectorAll("#lvs h3")].map((h) => h.textContent);
  const reals = Object.fromEntries([...document.querySelectorAll("#lvs tr[data-real]")].map(
    (tr) => [tr.dataset.real, [tr.querySelector("td.weight").textContent,
                               tr.querySelector("td.check").textContent]]));
  return {holder: group ? group.querySelector("td.holder").textContent : null,
          directors: heads, reals: reals, marker: window.vigilFirstLoad || null};
})()"""


def test_the_page_shows_the_director_taking_over_with_the_group(seed_lab):
    for name in DIRECTORS:
        host = seed_lab.host(name)
        host.write_file("/etc/ha.d/vigil.cf", f"metrics_address {host.address('lan')}:{PORT}\n")
    start_pair(seed_lab, warm=True)
    rs = {f"{seed_lab.host(n).address('lan')}:80" for n in ("rs1", "rs2")}
    url = f"http://{seed_lab.host('server6').address('lan')}:{PORT}/"
    with Chromium(seed_lab.host("client")) as browser:
        tab = browser.open(url)
        with tab.screenshot_on_failure(ARTIFACTS / "director-status-page-failed.png"):
            tab.evaluate("window.vigilFirstLoad = 'kept'")

            def shown() -> dict:
                return tab.evaluate(SHOWN)

            def both_up(page: dict) -> bool:
                return all(page["reals"].get(r, ["", ""])[1] == "up" for r in rs)

            wait_until(lambda: (p := shown())["holder"] == S5 and both_up(p)
                       and any("(standby," in d for d in p["directors"]), 30,
                       lambda: f"server6's page: a warm standby, both up\n{json.dumps(shown())}")
            seed_lab.crash("server5")
            page = wait_until(lambda: (p := shown())["holder"] == S6 and both_up(p)
                              and any("(active," in d for d in p["directors"]) and p, 30,
                              lambda: f"server6's page: the group and an active director\n"
                              f"{json.dumps(shown())}")
            assert page["marker"] == "kept", "the page was reloaded"
            assert {r: page["reals"][r][0] for r in rs} == {r: "1" for r in rs}
            assert VIP in tab.evaluate("document.getElementById('lvs').textContent")
        png = tab.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "director-status-page.png").write_bytes(png)
    (ARTIFACTS / "director-status-page-failed.png").unlink(missing_ok=True)
