"""Where the daemons' records go: heartbeat's logfile/debugfile/logfacility rules, syslog
over a real unix socket, never nowhere."""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest

from vigil.log import LogPlan, plan_logging, setup_logging, stop_logging


@pytest.mark.parametrize("foreground, logfile, debugfile, facility, expected", [
    (False, None, None, None, LogPlan(False, None, None, "daemon")),  # heartbeat's logd
    (True, None, None, None, LogPlan(True, None, None, None)),  # systemd/terminal: stderr
    (False, "/var/log/ha-log", None, None, LogPlan(False, "/var/log/ha-log", None, None)),
    (False, None, None, "local0", LogPlan(False, None, None, "local0")),
    (False, "/l", "/d", "local7", LogPlan(False, "/l", "/d", "local7")),
    (False, None, None, "none", LogPlan(True, None, None, None)),
    (True, "/l", None, "none", LogPlan(True, "/l", None, None)),
])
def test_heartbeats_rules_for_the_targets(foreground, logfile, debugfile, facility, expected):
    assert plan_logging(foreground=foreground, logfile=logfile, debugfile=debugfile,
                        logfacility=facility) == expected


@pytest.fixture
def syslog_socket(tmp_path):
    path = str(tmp_path / "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()
    stop_logging()


def test_records_reach_syslog_with_the_facility_ident_and_level(syslog_socket, tmp_path):
    path, sock = syslog_socket
    logfile, debugfile = tmp_path / "ha-log", tmp_path / "ha-debug"
    problems = setup_logging(logfile, stream=False, debugfile=debugfile, facility="local0",
                             ident="vigil-heartbeat", syslog_address=path)
    assert problems == []
    log = logging.getLogger("vigil.test")
    log.info("peer.dead node=server6")
    log.debug("packet.rejected kind=stale")
    stop_logging()
    datagram = sock.recv(4096).decode()
    # local0 (16) * 8 + info (6) = 134
    assert datagram.startswith(f"<134>vigil-heartbeat[{os.getpid()}]: vigil.test INFO "
                               "peer.dead node=server6")
    with pytest.raises(TimeoutError):  # debug goes to the debugfile only
        sock.settimeout(0.2)
        sock.recv(4096)
    assert "peer.dead" in logfile.read_text() and "packet.rejected" not in logfile.read_text()
    assert "packet.rejected" in debugfile.read_text()


def test_without_syslog_a_detached_daemon_logs_to_its_fallback_file(tmp_path):
    fallback = tmp_path / "vigil" / "heartbeat.log"
    problems = setup_logging(stream=False, facility="daemon",
                             syslog_address=str(tmp_path / "no-such-socket"),
                             fallback_file=fallback)
    logging.getLogger("vigil.test").info("heartbeat.ready pid=1")
    stop_logging()
    assert len(problems) == 1 and str(fallback) in problems[0]
    text = fallback.read_text()
    assert "log.target_unavailable" in text and "heartbeat.ready pid=1" in text


def test_debug_lines_can_be_turned_on_and_off_while_running(capfd):
    setup_logging(stream=True)
    log = logging.getLogger("vigil.test")
    log.debug("hidden.before")
    from vigil.log import set_debug
    set_debug(True)
    log.debug("shown.while.on")
    err = ""
    deadline = time.monotonic() + 5
    while "shown.while.on" not in err and time.monotonic() < deadline:  # the writer thread
        err += capfd.readouterr().err
        time.sleep(0.01)
    assert "shown.while.on" in err
    set_debug(False)
    log.debug("hidden.after")
    stop_logging()
    err += capfd.readouterr().err
    assert "hidden.before" not in err and "hidden.after" not in err


def test_flush_logging_writes_what_is_queued_now_and_logging_goes_on(tmp_path):
    """Before a reboot: the line that says why must be in the file before the command runs."""
    from vigil.log import event, flush_logging, setup_logging, stop_logging

    logfile = tmp_path / "ha-log"
    setup_logging(logfile=logfile, stream=False, facility="none")
    try:
        logger = logging.getLogger("vigil.test_flush")
        event(logger, "node.reboot", logging.CRITICAL, reason="a test")
        flush_logging()
        assert "node.reboot" in logfile.read_text()  # no waiting: it is there now
        event(logger, "after.flush", logging.CRITICAL)
    finally:
        stop_logging()
    assert "after.flush" in logfile.read_text()
