"""How an answer reaches the connection: the status line and headers go out with the body in
one write (a woken /sync pays for one queued write, not two); a long body goes beside the head
rather than copied into it; an answer without a body still sends its head, and keep-alive
connections carry one answer after another; on a plain TCP connection with nothing queued the
answer goes to the socket at once, and what it does not take follows in order."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactor, StringTransport
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


# -- on a real socket: an answer goes to the socket at once when nothing waits before it --------
class _NoPort:
    """What a connection asks of the port that accepted it (only for its own address)."""

    _realPortNumber = 0

    def _buildAddr(self, address: tuple[str, int]) -> IPv4Address:  # noqa: N802
        return IPv4Address("TCP", *address)


def _serve_on_socket(body: bytes, send_buffer: int | None = None
                     ) -> tuple[tcp.Server, socket.socket, MemoryReactor]:
    listener = socket.create_server(("127.0.0.1", 0))
    theirs = socket.create_connection(listener.getsockname())
    ours, address = listener.accept()
    listener.close()
    if send_buffer is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    reactor = MemoryReactor()
    channel = make_site(_Answer(body)).buildProtocol(None)
    assert channel is not None
    transport = tcp.Server(ours, channel, address, _NoPort(), 1, reactor)  # type: ignore[arg-type]
    channel.makeConnection(transport)
    channel.dataReceived(GET)
    return transport, theirs, reactor


def _read_all(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(5)
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_an_answer_on_an_idle_connection_is_on_the_socket_without_waiting_for_the_reactor(
        ) -> None:
    transport, theirs, reactor = _serve_on_socket(b'{"ok":true}')
    theirs.setblocking(False)
    assert theirs.recv(65536).endswith(b'\r\n\r\n{"ok":true}')
    assert transport not in reactor.writers
    transport.socket.close()


def test_what_the_socket_does_not_take_at_once_is_queued_and_follows_in_order() -> None:
    body = b"y" * 60_000
    transport, theirs, reactor = _serve_on_socket(body, send_buffer=4096)
    assert transport in reactor.writers  # the rest waits for the socket to have room
    received = b""
    theirs.settimeout(5)
    while not received.endswith(body):
        transport.doWrite()
        received += theirs.recv(1 << 20)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and rest == body
    transport.socket.close()
