"""MailTo: tell administrators by e-mail when the group arrives and leaves.

heartbeat's `MailTo::addr[,addr...][::subject]`. Start mails "Takeover in
progress at DATE on NODE", stop "Migrating resource away at DATE from NODE".
A mail that cannot be delivered is logged, never a reason to fail over (as
in heartbeat, whose MailTo ignores the mailer's exit code).
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import time
from email import policy
from email.message import EmailMessage

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.pseudo import PseudoState
from vigil.log import event

log = logging.getLogger("vigil.agents.mailto")


def compose(recipients: list[str], subject: str, what: str, node: str, sender: str,
            when: float) -> EmailMessage:
    stamp = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(when))
    line = f"{subject} {what} at {stamp} {'on' if 'Takeover' in what else 'from'} {node}"
    # Long subjects stay on one line (no fold right after "Subject:").
    message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = line
    message.set_content(f"{line}\n")
    return message


class MailTo(Agent):
    default_interval = 60.0
    default_timeout = 15.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        if not 1 <= len(args) <= 2 or not args[0]:
            raise AgentConfigError("MailTo takes addr[,addr...][::subject]", OcfStatus.ERR_ARGS)
        self.recipients = [a.strip() for a in args[0].split(",") if a.strip()]
        self.subject = args[1] if len(args) > 1 and args[1] else "Resource Group"
        self.state = PseudoState((paths or AgentPaths()).state_dir, self.label)

    def _send(self, message: EmailMessage, timeout: float) -> None:
        with smtplib.SMTP(self.options.smtp_host, self.options.smtp_port,
                          timeout=timeout) as smtp:
            smtp.send_message(message)

    async def _notify(self, what: str, timeout: float) -> str:
        node = os.uname().nodename
        sender = self.options.mail_from or f"root@{node}"
        message = compose(self.recipients, self.subject, what, node, sender, time.time())
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, message, timeout), timeout)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            event(log, "mail.failed", level=logging.WARNING, to=",".join(self.recipients),
                  error=str(exc) or type(exc).__name__)
            return f"mail not sent: {exc or type(exc).__name__}"
        event(log, "mail.sent", to=",".join(self.recipients), subject=message["Subject"])
        return f"mailed {', '.join(self.recipients)}"

    async def start(self, timeout: float) -> AgentResult:
        said = await self._notify("Takeover in progress", timeout)
        self.state.set()
        return AgentResult(OcfStatus.SUCCESS, said)

    async def stop(self, timeout: float) -> AgentResult:
        said = await self._notify("Migrating resource away", timeout)
        self.state.clear()
        return AgentResult(OcfStatus.SUCCESS, said)

    async def status(self, timeout: float) -> AgentResult:
        if self.state.running():
            return AgentResult(OcfStatus.SUCCESS, "running")
        return AgentResult(OcfStatus.NOT_RUNNING, "stopped")
