"""Sending email over SMTP (``email`` in the config), never on the reactor thread.

The SMTP conversation is the standard library's :mod:`smtplib` (plain, STARTTLS or TLS from
the first byte; AUTH when a username is configured; every socket operation bounded by
``timeout_seconds``), run on a :class:`broker.bounded_pool.BoundedPool` of its own: at most
``concurrency`` sends at once, ``queue_limit`` more waiting, and beyond that an immediate
``429 M_LIMIT_EXCEEDED``.  A send the server refuses, or a server that cannot be reached,
is :class:`MailNotSent` to the caller (a 502 naming what failed, without the server's
address) and is logged with the details; nothing is dropped silently.

smtplib on a bounded pool rather than Twisted's ``ESMTPSenderFactory``: the standard
library's client covers the three TLS modes, AUTH and timeouts with no code of ours in the
protocol, the pool bounds what a burst of requests can pile up, and the tests can run the
same conversation against a real server on loopback on the calling thread (the in-process
node's reactor is a fake one, without threads or sockets).
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from broker.bounded_pool import BoundedPool
from broker.config import SmtpSettings
from broker.errors import Unavailable

logger = logging.getLogger(__name__)

# Until a send has been timed: about what one takes to a server nearby.
FIRST_ESTIMATE_S = 0.5

Deliver = Callable[[SmtpSettings, EmailMessage], None]
RunBlocking = Callable[[Deliver, SmtpSettings, EmailMessage], Awaitable[None]]


class MailNotSent(Unavailable):
    """The email could not be sent (the server is down, refused it, or took too long)."""


class MailDisabled(Unavailable):
    """The node has no SMTP server configured."""


def deliver(settings: SmtpSettings, message: EmailMessage) -> None:
    """One SMTP conversation sending ``message`` (blocking: run it on a pool thread)."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.tls == "tls":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port,
                                timeout=settings.timeout_seconds, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    with smtp:
        if settings.tls == "starttls":
            smtp.starttls(context=context)
        if settings.username:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)


def _reason(error: Exception) -> str:
    """What went wrong, in words fit for the caller (no address, no credentials)."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "the mail server refused the node's credentials"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "the mail server refused the recipient address"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the mail server refused the message ({error.smtp_code})"
    if isinstance(error, socket.timeout | TimeoutError) or (
            # smtplib reports a greeting that never came as a closed connection
            isinstance(error, smtplib.SMTPServerDisconnected) and "timed out" in str(error)):
        return "the mail server did not answer in time"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "the mail server closed the connection"
    if isinstance(error, ssl.SSLError):
        return "the TLS connection to the mail server failed"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return "the mail server does not support what the node's settings ask (STARTTLS, AUTH)"
    return "the mail server cannot be reached"


class Mailer:
    def __init__(self, settings: SmtpSettings, reactor: Any = None) -> None:
        self.settings = settings
        self._pool = BoundedPool("email", settings.concurrency, settings.queue_limit, reactor,
                                 first_estimate_s=FIRST_ESTIMATE_S,
                                 busy_message="Too many emails being sent; try again shortly")
        self.run_blocking: RunBlocking = self._pool.run

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def message(self, to: str, subject: str, text: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.from_address
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.settings.from_address.rsplit(
            "@", 1)[-1].strip(" >"))
        message.set_content(text)
        return message

    async def send(self, to: str, subject: str, text: str) -> None:
        """Send one plain-text email; :class:`MailNotSent` if it could not be."""
        if not self.enabled:
            raise MailDisabled("This node sends no email (no SMTP server is configured)")
        message = self.message(to, subject, text)
        try:
            await self.run_blocking(deliver, self.settings, message)
        except (smtplib.SMTPException, OSError) as e:
            logger.warning("sending email to %s through %s:%d failed: %r", to,
                           self.settings.host, self.settings.port, e)
            raise MailNotSent(f"The email could not be sent: {_reason(e)}; try again later"
                              ) from e
        logger.info("sent email %s to %s", message["Message-ID"], to)

    def stop(self) -> None:
        self._pool.stop()
