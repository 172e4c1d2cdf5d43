"""HTTP-level limits: a request the node will not read is answered with its status and a
Matrix error (never a dropped connection), before the node reads what it refuses."""

from __future__ import annotations

import json
import socket
from typing import Any

from broker.http.channel import MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE
from tests.node_harness import NodeProcess

VERSIONS = b"/_matrix/client/versions"


def _exchange(node: NodeProcess, head: bytes, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send raw bytes; the status and JSON body of the answer (the node closes after it)."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(head + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    _headers, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def _request(path: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: localhost", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_request_line_over_the_limit_is_414(any_node: NodeProcess) -> None:
    status, body = _exchange(any_node, _request(VERSIONS + b"?x=" + b"a" * MAX_REQUEST_LINE))
    assert status == 414 and body["errcode"] == "M_UNKNOWN"


def test_request_line_just_under_the_limit_is_served(any_node: NodeProcess) -> None:
    padding = MAX_REQUEST_LINE - len(b"GET  HTTP/1.1" + VERSIONS + b"?x=")
    status, body = _exchange(any_node, _request(VERSIONS + b"?x=" + b"a" * padding,
                                                b"Connection: close"))
    assert status == 200 and "versions" in body


def test_header_line_over_the_limit_is_431(any_node: NodeProcess) -> None:
    status, body = _exchange(any_node,
                             _request(VERSIONS, b"X-Big: " + b"a" * (MAX_REQUEST_LINE + 1)))
    assert status == 431 and body["errcode"] == "M_UNKNOWN"


def test_headers_over_the_total_limit_are_431(any_node: NodeProcess) -> None:
    header_count = MAX_HEADER_BYTES // 10_000 + 1
    headers = [b"X-H%d: " % i + b"a" * 10_000 for i in range(header_count)]
    status, body = _exchange(any_node, _request(VERSIONS, *headers))
    assert status == 431 and body["errcode"] == "M_UNKNOWN"


def test_too_many_headers_are_431(any_node: NodeProcess) -> None:
    headers = [b"X-H%d: 1" % i for i in range(MAX_HEADERS + 1)]
    status, body = _exchange(any_node, _request(VERSIONS, *headers))
    assert status == 431 and body["errcode"] == "M_UNKNOWN"


def test_huge_content_length_is_413_before_the_body_is_sent(any_node: NodeProcess) -> None:
    head = _request(b"/_matrix/client/v3/login", b"Content-Type: application/json",
                    b"Content-Length: 100000000000000000000", method=b"POST")
    status, body = _exchange(any_node, head)
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"


def test_huge_chunk_size_is_413_before_the_chunk_is_sent(any_node: NodeProcess) -> None:
    head = _request(b"/_matrix/client/v3/login", b"Content-Type: application/json",
                    b"Transfer-Encoding: chunked", method=b"POST")
    status, body = _exchange(any_node, head, b"fffffffffffffff\r\n{")
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"


def test_malformed_header_is_400_with_a_matrix_error(any_node: NodeProcess) -> None:
    status, body = _exchange(any_node, _request(VERSIONS, b"no colon here"))
    assert status == 400 and body["errcode"] == "M_UNKNOWN"
