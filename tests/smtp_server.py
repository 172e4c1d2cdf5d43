"""A real SMTP server on loopback (aiosmtpd) for the tests that send email.

``smtp_server`` runs aiosmtpd's ``Controller`` on a free port of 127.0.0.1 and keeps every
message it accepts; a test reads the real message (``last_to(address)``) to get what the node
sent, such as a one-time code.  ``credentials`` turns on AUTH (over the plain connection).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    """The aiosmtpd handler: every accepted message, in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.arrived:
            self.messages.append((list(envelope.rcpt_tos),
                                  message_from_bytes(envelope.original_content)))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def last_to(self, address: str) -> Message:
        """The newest message to ``address`` (waiting for it a little: the server's loop runs
        on a thread of its own)."""
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: any(address in to for to, _ in self.messages), WAIT_S)
            assert found, f"no email to {address} arrived"
            return next(m for to, m in reversed(self.messages) if address in to)

    def to(self, address: str) -> list[Message]:
        with self.arrived:
            return [m for to, m in self.messages if address in to]


def code_in(message: Message, digits: int = 6) -> str:
    """The one-time code an email carries."""
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.search(rf"\b(\d{{{digits}}})\b", body.decode())
    assert found, body
    return found.group(1)


class SmtpServer:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.credentials = credentials
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     **kwargs)
        self.controller.start()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        good = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(), data.password.decode())
        return AuthResult(success=good, handled=False)

    def settings(self) -> dict[str, Any]:
        """The ``email`` config section that sends through this server."""
        smtp: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "tls": "none",
                                "timeout_seconds": 5}
        if self.credentials is not None:
            smtp.update(username=self.credentials[0], password=self.credentials[1])
        return {"from": "gov-broker <noreply@admin.test>", "smtp": smtp}

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


async def deliver_on_this_thread(deliver: Any, settings: Any, message: Any) -> None:
    """A mailer's ``run_blocking`` for a node on a fake reactor (which runs no pool threads):
    the same SMTP conversation, on the calling thread."""
    deliver(settings, message)
