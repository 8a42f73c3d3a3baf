"""vigil units: systemd units naming this installation, verified by systemd itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.cli.units import render


def test_the_units_name_this_interpreter_and_order_volumes_before_heartbeat():
    units = render()
    command = f"{Path(sys.executable).absolute()} -m vigil"
    volumes = units["vigil-volumes.service"]
    # DRBD's init script: up all, wait for the peers, become-primary-on; a wait that runs
    # out does not fail the unit ("-"), and the startup section bounds it, not systemd
    starts = [line for line in volumes.splitlines() if line.startswith("ExecStart=")]
    assert starts == [f"ExecStart={command} volume up all",
                      f"ExecStart=-{command} volume wait-connect all",
                      f"ExecStart=-{command} volume become-primary all"]
    assert "TimeoutStartSec=infinity" in volumes
    assert "Before=vigil-heartbeat.service" in units["vigil-volumes.service"]
    assert "After=network-online.target vigil-volumes.service" in \
        units["vigil-heartbeat.service"]
    assert f"ExecStart={command} heartbeat --foreground" in units["vigil-heartbeat.service"]
    assert "/usr/bin/vigil" not in "".join(units.values())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    units = render()
    for name, text in units.items():
        # a template is verified through an instance of it
        (tmp_path / name.replace("@.", "@web.cf.")).write_text(text)
    files = [str(p) for p in sorted(tmp_path.iterdir())]
    done = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True,
                          text=True, timeout=120)
    ours = [line for line in done.stderr.splitlines() if "vigil" in line]
    assert done.returncode == 0 and not ours, done.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(units["vigil-heartbeat.service"].replace(sys.executable, "/nonexistent"))
    failed = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                            text=True, timeout=120)
    assert failed.returncode != 0  # the check can fail
