"""Sending email: a real SMTP conversation with a server on loopback, off the reactor thread
(on the mailer's own pool), and a clear error when the email cannot be sent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from twisted.internet import defer

from broker.config import SmtpSettings
from broker.errors import LimitExceeded
from broker.mail import MailDisabled, Mailer, MailNotSent
from tests.smtp_server import SmtpServer, deliver_on_this_thread, free_port, smtp_server
from tests.thread_reactor import ThreadCallsReactor

__all__ = ["smtp_server"]

TO = "alice@mha.gov.in"


def _settings(server: SmtpServer | None, **more: Any) -> SmtpSettings:
    port = server.port if server is not None else free_port()  # nobody listens there
    return SmtpSettings(**{"host": "127.0.0.1", "port": port, "tls": "none",
                           "from_address": "gov-broker <noreply@admin.test>",
                           "timeout_seconds": 5, **more})


@pytest.fixture
def reactor() -> ThreadCallsReactor:
    return ThreadCallsReactor()


@pytest.fixture
def mailers() -> Iterator[list[Mailer]]:
    made: list[Mailer] = []
    yield made
    for mailer in made:
        mailer.stop()


def _send(mailer: Mailer, reactor: ThreadCallsReactor, text: str = "Your code is 123456"
          ) -> Any:
    """Send on the mailer's pool; the result (None) or the failure's exception."""
    d = defer.ensureDeferred(mailer.send(TO, "Your code", text))
    if not d.called:
        reactor.run_one()  # the pool thread hands its result back
    failures: list[Any] = []
    d.addErrback(failures.append)
    return failures[0].value if failures else d.result


def test_an_email_reaches_the_smtp_server_with_its_headers_and_text(
        smtp_server: SmtpServer, reactor: ThreadCallsReactor, mailers: list[Mailer]) -> None:
    mailer = Mailer(_settings(smtp_server), reactor)
    mailers.append(mailer)
    assert _send(mailer, reactor) is None
    message = smtp_server.inbox.last_to(TO)
    assert (message["From"], message["To"], message["Subject"]) == (
        "gov-broker <noreply@admin.test>", TO, "Your code")
    assert message["Message-ID"].endswith("@admin.test>")
    assert "Your code is 123456" in message.get_payload(decode=True).decode()


def test_the_smtp_conversation_runs_on_a_pool_thread_not_the_callers(
        smtp_server: SmtpServer, reactor: ThreadCallsReactor, mailers: list[Mailer]) -> None:
    mailer = Mailer(_settings(smtp_server), reactor)
    mailers.append(mailer)
    threads: list[str] = []
    from broker import mail

    def recording(settings: SmtpSettings, message: Any) -> None:
        threads.append(threading.current_thread().name)
        mail.deliver(settings, message)

    async def on_pool(deliver: Any, settings: SmtpSettings, message: Any) -> None:
        await mailer._pool.run(recording, settings, message)

    mailer.run_blocking = on_pool
    assert _send(mailer, reactor) is None
    assert threads and threads[0] != threading.current_thread().name


def test_a_server_that_cannot_be_reached_is_a_clear_error(
        reactor: ThreadCallsReactor, mailers: list[Mailer]) -> None:
    mailer = Mailer(_settings(None), reactor)
    mailers.append(mailer)
    error = _send(mailer, reactor)
    assert isinstance(error, MailNotSent)
    assert error.message == ("The email could not be sent: the mail server cannot be reached;"
                             " try again later")
    assert "127.0.0.1" not in error.message


def test_the_node_logs_in_with_its_credentials() -> None:
    server = SmtpServer(credentials=("broker", "s3cret"))
    mailer = Mailer(_settings(server, username="broker", password="s3cret"))
    mailer.run_blocking = deliver_on_this_thread
    try:
        assert defer.ensureDeferred(mailer.send(TO, "Hello", "text")).result is None
        assert server.inbox.last_to(TO)["Subject"] == "Hello"
    finally:
        server.stop()


def test_refused_credentials_are_a_clear_error() -> None:
    server = SmtpServer(credentials=("broker", "s3cret"))
    mailer = Mailer(_settings(server, username="broker", password="wrong"))
    mailer.run_blocking = deliver_on_this_thread
    try:
        d = defer.ensureDeferred(mailer.send(TO, "Hello", "text"))
        failures: list[Any] = []
        d.addErrback(failures.append)
        assert isinstance(failures[0].value, MailNotSent)
        assert "refused the node's credentials" in failures[0].value.message
        assert server.inbox.to(TO) == []
    finally:
        server.stop()


def test_without_an_smtp_host_nothing_is_sent_and_the_caller_is_told() -> None:
    d = defer.ensureDeferred(Mailer(SmtpSettings()).send(TO, "Hello", "text"))
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert isinstance(failures[0].value, MailDisabled)


def test_beyond_the_queue_limit_a_send_is_refused_at_once(
        reactor: ThreadCallsReactor, mailers: list[Mailer]) -> None:
    mailer = Mailer(_settings(None, concurrency=1, queue_limit=0), reactor)
    mailers.append(mailer)
    release = threading.Event()

    async def held(deliver: Any, settings: SmtpSettings, message: Any) -> None:
        await mailer._pool.run(release.wait, 10)

    mailer.run_blocking = held
    first = defer.ensureDeferred(mailer.send(TO, "One", "text"))
    second = defer.ensureDeferred(mailer.send(TO, "Two", "text"))
    failures: list[Any] = []
    second.addErrback(failures.append)
    assert isinstance(failures[0].value, LimitExceeded)
    release.set()
    reactor.run_one()
    assert first.called



def _failure(mailer: Mailer) -> Any:
    mailer.run_blocking = deliver_on_this_thread
    d = defer.ensureDeferred(mailer.send(TO, "Hello", "text"))
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert failures, "the send should have failed"
    return failures[0].value


def test_starttls_to_a_server_without_it_is_a_clear_error(smtp_server: SmtpServer) -> None:
    error = _failure(Mailer(_settings(smtp_server, tls="starttls")))
    assert isinstance(error, MailNotSent)
    assert "does not support what the node's settings ask" in error.message
    assert smtp_server.inbox.to(TO) == []


def test_tls_to_a_plain_server_is_a_clear_error(smtp_server: SmtpServer) -> None:
    error = _failure(Mailer(_settings(smtp_server, tls="tls")))
    assert isinstance(error, MailNotSent)
    assert "TLS connection to the mail server failed" in error.message


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as silent:  # accepts connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        settings = replace(_settings(None), port=silent.getsockname()[1], timeout_seconds=1)
        error = _failure(Mailer(settings))
    assert isinstance(error, MailNotSent)
    assert "did not answer in time" in error.message
