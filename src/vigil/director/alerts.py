"""E-mail alerts: a short SMTP exchange, or the local sendmail when no `smtp=` is set."""

from __future__ import annotations

import asyncio
import email.utils
import os
import socket
from email.message import EmailMessage

from vigil.director.checkers.smtp import read_reply
from vigil.subprocesses import run_program

SENDMAIL = "/usr/sbin/sendmail"


def compose(sender: str, recipients: tuple[str, ...], subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message.set_content(body)
    return message


async def send(
    smtp: str | None, sender: str | None, recipients: tuple[str, ...], subject: str, body: str,
    timeout: float = 30.0,
) -> None:
    """Send one alert; raises OSError/ValueError/TimeoutError when it cannot."""
    sender = sender or f"vigil@{socket.getfqdn()}"
    message = compose(sender, recipients, subject, body)
    async with asyncio.timeout(timeout):
        if smtp:
            await _smtp(smtp, sender, recipients, message)
        elif os.access(SENDMAIL, os.X_OK):
            result = await run_program([SENDMAIL, "-t", "-oi"], timeout,
                                       input=message.as_bytes())
            if not result.ok:
                raise OSError(f"sendmail failed: {result.output.strip()[:200]}")
        else:
            raise OSError("no smtp= server configured and no local sendmail")


async def _smtp(server: str, sender: str, recipients: tuple[str, ...],
                message: EmailMessage) -> None:
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
    reader, writer = await asyncio.open_connection(host or server, int(port or 25))
    try:
        async def say(line: str | None, expect: tuple[int, ...]) -> None:
            if line is not None:
                writer.write(line.encode() + b"\r\n")
                await writer.drain()
            code, text = await read_reply(reader)
            if code not in expect:
                raise OSError(f"SMTP: {text}")

        await say(None, (220,))
        await say(f"HELO {socket.gethostname()}", (250,))
        await say(f"MAIL FROM:<{email.utils.parseaddr(sender)[1]}>", (250,))
        for recipient in recipients:
            await say(f"RCPT TO:<{recipient}>", (250, 251))
        await say("DATA", (354,))
        data = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        data = b"\r\n".join(b"." + line if line.startswith(b".") else line
                            for line in data.split(b"\r\n"))
        writer.write(data + b"\r\n.\r\n")
        await say(None, (250,))
        await say("QUIT", (221,))
    finally:
        writer.close()
