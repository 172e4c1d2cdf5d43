"""The access log: a line per request under the ``broker.access`` logger at DEBUG, and no
line formatted at any other level."""

from __future__ import annotations

import logging

import pytest
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from broker.http.channel import make_site


def answered_request() -> DummyRequest:
    request = DummyRequest([b"versions"])
    request.method = b"GET"
    request.uri = b"/_matrix/client/versions"
    request.clientproto = b"HTTP/1.1"
    request.code = 200
    request.sentLength = 17
    return request


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    site = make_site(Resource())
    site._logDateTime = "[03/Dec/2026:12:00:00 +0000]"
    with caplog.at_level(level, logger="broker.access"):
        site.log(answered_request())
    return [r.getMessage() for r in caplog.records if r.name == "broker.access"]


def test_a_request_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    (line,) = logged(caplog, logging.DEBUG)
    assert '"GET /_matrix/client/versions HTTP/1.1" 200 17' in line


def test_no_access_line_at_info(caplog: pytest.LogCaptureFixture) -> None:
    assert logged(caplog, logging.INFO) == []
