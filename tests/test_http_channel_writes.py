"""How an answer reaches the connection: the status line and headers go out with the body in
one write (a woken /sync pays for one queued write, not two); a long body goes beside the head
rather than copied into it; an answer without a body still sends its head, and keep-alive
connections carry one answer after another."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from broker.http.channel import LimitedHTTPChannel, make_site


class _Answer(Resource):
    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render(self, request: Any) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Content-Length", str(len(self.body)).encode())
        return self.body


class _CountingTransport(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)

    def writeSequence(self, seq: Any) -> None:  # noqa: N802
        self.writes.append(b"<sequence>")
        for data in seq:
            super().write(data)


def _serve(body: bytes, request: bytes) -> _CountingTransport:
    site = make_site(_Answer(body))
    channel = site.buildProtocol(None)
    assert isinstance(channel, LimitedHTTPChannel)
    transport = _CountingTransport()
    channel.makeConnection(transport)
    channel.dataReceived(request)
    return transport


GET = b"GET /x HTTP/1.1\r\nHost: node\r\n\r\n"


def test_a_json_answer_is_one_write_of_head_and_body() -> None:
    transport = _serve(b'{"ok":true}', GET)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b'{"ok":true}'


def test_a_long_body_goes_beside_the_head_not_copied_into_it() -> None:
    body = b"x" * (LimitedHTTPChannel.JOIN_BODY_BYTES + 1)
    transport = _serve(body, GET)
    assert transport.writes == [b"<sequence>"]
    assert transport.value().endswith(b"\r\n\r\n" + body)


def test_an_answer_without_a_body_still_sends_its_head() -> None:
    transport = _serve(b'{"ok":true}', b"HEAD /x HTTP/1.1\r\nHost: node\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.value().endswith(b"\r\n\r\n")


def test_a_kept_alive_connection_answers_each_request_whole_and_in_order() -> None:
    transport = _serve(b'{"n":1}', GET + GET)
    answers = transport.value().split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(answers) == 2 and all(a.endswith(b'\r\n\r\n{"n":1}') for a in answers)
