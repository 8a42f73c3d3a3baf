"""Pseudo resources: Delay and MailTo (mail through a real SMTP listener on loopback)."""

import asyncio
import os
import socket
import time
from email import message_from_bytes, policy

import pytest

from vigil.agents.base import OcfStatus
from vigil.agents.factory import build_agent
from vigil.agents.options import AgentOptions, AgentPaths


def test_delay_waits_and_tracks_its_state(tmp_path):
    paths = AgentPaths(state_dir=tmp_path)
    agent = build_agent("Delay", ("0.2", "0.1"), paths=paths)
    assert asyncio.run(agent.status(1)).status is OcfStatus.NOT_RUNNING
    started = time.monotonic()
    assert asyncio.run(agent.start(5)).ok
    assert time.monotonic() - started >= 0.2
    assert asyncio.run(agent.status(1)).ok
    assert asyncio.run(agent.stop(5)).ok
    assert asyncio.run(agent.status(1)).status is OcfStatus.NOT_RUNNING
    assert not asyncio.run(build_agent("Delay", ("3",), paths=paths).start(0.1)).ok


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_mailto_sends_takeover_and_release_mail(tmp_path, smtp_server):
    controller, inbox = smtp_server
    options = AgentOptions(smtp_host="127.0.0.1", smtp_port=controller.port,
                           mail_from="vigil@example.com")
    agent = build_agent("MailTo", ("ops@example.com,dba@example.com", "mysql group"),
                        options=options, paths=AgentPaths(state_dir=tmp_path))
    assert asyncio.run(agent.start(5)).ok
    assert asyncio.run(agent.status(5)).ok
    assert asyncio.run(agent.stop(5)).ok
    assert [m.rcpt_tos for m in inbox.messages] == [["ops@example.com", "dba@example.com"]] * 2
    first, second = (message_from_bytes(m.content, policy=policy.default) for m in inbox.messages)
    node = os.uname().nodename
    assert first["Subject"].startswith("mysql group Takeover in progress at")
    assert first["Subject"].endswith(f"on {node}")
    assert second["Subject"].startswith("mysql group Migrating resource away at")
    assert second["Subject"].endswith(f"from {node}")
    assert inbox.messages[0].mail_from == "vigil@example.com"


def test_mailto_never_fails_the_group_when_mail_cannot_go(tmp_path):
    options = AgentOptions(smtp_host="127.0.0.1", smtp_port=_free_port())
    agent = build_agent("MailTo", ("ops@example.com",), options=options,
                        paths=AgentPaths(state_dir=tmp_path))
    result = asyncio.run(agent.start(2))
    assert result.ok and "not sent" in result.message
