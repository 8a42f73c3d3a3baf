"""E-mail alerts reach a real SMTP server (aiosmtpd on loopback)."""

import asyncio

from aiosmtpd.controller import Controller

from vigil.director import alerts
from vigil.testing.loopback import free_port


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def test_alert_is_delivered_over_smtp():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(alerts.send(f"127.0.0.1:{port}", "director@example.com",
                                ("ops@example.com", "oncall@example.com"),
                                "vigil director: real server 198.51.100.1:80 down",
                                "State: down\n.leading dot line\n", timeout=10))
    finally:
        controller.stop()
    (envelope,) = inbox.messages
    assert envelope.mail_from == "director@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    text = envelope.content.decode()
    assert "Subject: vigil director: real server 198.51.100.1:80 down" in text
    assert "\n.leading dot line" in text.replace("\r\n", "\n")  # dot-stuffing undone
