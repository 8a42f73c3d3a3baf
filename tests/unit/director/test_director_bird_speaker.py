"""`--announce bird`: the routes file BIRD includes, and `birdc configure` after each change.

The file is checked by BIRD itself (`bird -p` parses a bird.conf that includes it);
birdc is a stand-in script that records what it was asked and what the file held.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from vigil.director.announce import Cause, Change
from vigil.director.speaker import BirdSpeaker, bird_routes

VIP4, VIP6 = "198.51.100.100/32", "2001:db8:0:1::100/128"


@pytest.mark.skipif(shutil.which("bird") is None, reason="Debian's bird2 is not installed")
def test_the_routes_file_is_a_bird_configuration(tmp_path):
    routes = tmp_path / "vigil-announce.conf"
    routes.write_text(bird_routes([VIP6, VIP4]))
    (tmp_path / "bird.conf").write_text(
        "router id 198.51.100.5;\nprotocol device { }\n"
        f'include "{routes}";\n'
        "protocol bgp uplink {\n  local as 65001; neighbor 198.51.100.250 as 65000;\n"
        '  ipv4 { import none; export where proto = "vigil_announce4"; };\n'
        '  ipv6 { import none; export where proto = "vigil_announce6"; };\n}\n')
    parsed = subprocess.run(["bird", "-p", "-c", str(tmp_path / "bird.conf")],
                            capture_output=True, text=True, timeout=30)
    assert parsed.returncode == 0, parsed.stderr
    text = routes.read_text()
    assert f"route {VIP4} blackhole;" in text and f"route {VIP6} blackhole;" in text
    assert text.index(VIP4) < text.index("vigil_announce6") < text.index(VIP6)
    assert "route" not in bird_routes([]).replace("routes", "")  # nothing announced


def fake_birdc(tmp_path, answer: str, code: int = 0):
    log = tmp_path / "birdc.log"
    script = tmp_path / "birdc"
    script.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\ncat {tmp_path}/routes.conf >> {log}\n"
                      f"echo '{answer}'\nexit {code}\n")
    script.chmod(0o755)
    return script, log


def test_each_change_rewrites_the_file_then_asks_bird_to_reconfigure(tmp_path):
    birdc, log = fake_birdc(tmp_path, "Reading configuration from /etc/bird/bird.conf\n"
                                      "Reconfigured")
    speaker = BirdSpeaker(str(tmp_path / "routes.conf"), "/run/test.ctl", str(birdc))

    async def scenario() -> None:
        await speaker.start()
        speaker.send([Change(VIP4, True, Cause.SERVING)])
        await speaker.close()
        speaker.send([Change(VIP4, False, Cause.DRAINING), Change(VIP6, True, Cause.SERVING)])
        speaker.send([Change(VIP6, False, Cause.DRAINING)])  # the last configure may still run
        await speaker.close()
    asyncio.run(scenario())
    calls = log.read_text().split("-s /run/test.ctl configure\n")[1:]
    assert len(calls) >= 3
    assert VIP4 not in calls[0]  # at start: nothing announced
    assert f"route {VIP4} blackhole;" in calls[1]
    assert VIP4 not in calls[-1] and VIP6 not in calls[-1]  # the last one saw the last file
    assert speaker.errors == 0 and speaker.sent == 4


def test_a_refused_configuration_is_counted_and_logged(tmp_path, caplog):
    birdc, _ = fake_birdc(tmp_path, "bird.conf:3:1 syntax error", code=0)
    speaker = BirdSpeaker(str(tmp_path / "routes.conf"), "/run/test.ctl", str(birdc))

    async def scenario() -> None:
        await speaker.start()
        speaker.send([Change(VIP4, True, Cause.SERVING)])
        await speaker.close()
    asyncio.run(scenario())
    assert speaker.errors == 2
    assert "syntax error" in caplog.text
