"""The HTTP/1.1 connection: limits on what a client may send, each refused with a status.

Twisted's channel closes the connection without a word (a request line over its line limit),
or with a bare ``400`` (headers too big, malformed chunks), or waits for a body it will never
read (a huge ``Content-Length``).  Here every such request gets a Matrix error with the status
HTTP has for it, then the connection is closed:

- request line longer than :data:`MAX_REQUEST_LINE` bytes: 414 ``M_UNKNOWN``;
- a header line longer than :data:`MAX_REQUEST_LINE`, all header lines together longer than
  :data:`MAX_HEADER_BYTES`, or more than :data:`MAX_HEADERS` headers: 431 ``M_UNKNOWN``;
- a declared ``Content-Length`` or chunk size beyond the route's body limit: 413 ``M_TOO_LARGE``
  at once, before any of the body is read;
- anything else Twisted finds malformed: 400 ``M_UNKNOWN``.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from twisted.internet import tcp
from twisted.web import http, http_headers, server
from twisted.web.resource import Resource

from broker.http.server import CORS_HEADERS

MAX_REQUEST_LINE = 16384
MAX_HEADER_BYTES = 65536
MAX_HEADERS = 100
#: How long a refused connection may keep sending before it is cut.
DRAIN_SECONDS = 10.0

access_logger = logging.getLogger("broker.access")

_REASONS = {400: b"Bad Request", 413: b"Payload Too Large", 414: b"URI Too Long",
            431: b"Request Header Fields Too Large"}


def _ignore(*_args: Any) -> None:
    return None


class _ChunkTooLarge(http._MalformedChunkedDataError):
    pass


class _LimitedChunkedDecoder(http._ChunkedTransferDecoder):
    """Refuses a chunk whose declared size alone passes the request's body limit."""

    def __init__(self, channel: LimitedHTTPChannel, *args: Any) -> None:
        super().__init__(*args)
        self._channel = channel

    def _dataReceived_CHUNK_LENGTH(self) -> bool:
        done: bool = super()._dataReceived_CHUNK_LENGTH()
        request = self._channel.requests[-1] if self._channel.requests else None
        limit = getattr(request, "body_limit", None)
        if done and limit is not None and self.length > limit:
            self._channel.refusal = (413, "M_TOO_LARGE", f"Request body exceeds {limit} bytes")
            raise _ChunkTooLarge("chunk too large")
        return done


class LimitedHTTPChannel(http.HTTPChannel):
    """An HTTP channel that answers every request it refuses (see the module docstring)."""

    MAX_LENGTH = MAX_REQUEST_LINE
    totalHeadersSize = MAX_HEADER_BYTES
    maxHeaders = MAX_HEADERS
    #: What the next refusal answers: (status, errcode, message).
    refusal: tuple[int, str, str] | None = None

    def _on_first_line(self) -> bool:
        return bool(getattr(self, "_HTTPChannel__first_line", 1))

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._on_first_line():
            self.refuse(414, "M_UNKNOWN", f"Request line longer than {MAX_REQUEST_LINE} bytes")
        else:
            self.refuse(431, "M_UNKNOWN", f"Header line longer than {MAX_REQUEST_LINE} bytes")

    def lineReceived(self, line: bytes) -> None:
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self.refuse(431, "M_UNKNOWN", f"Headers longer than {MAX_HEADER_BYTES} bytes")
            return
        super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        if self._receivedHeaderCount >= self.maxHeaders:
            self.refuse(431, "M_UNKNOWN", f"More than {MAX_HEADERS} headers")
            return False
        ok: bool = super().headerReceived(line)
        if ok and isinstance(self._transferDecoder, http._ChunkedTransferDecoder) and \
                not isinstance(self._transferDecoder, _LimitedChunkedDecoder):
            request = self.requests[-1]
            self._transferDecoder = _LimitedChunkedDecoder(
                self, request.handleContentChunk, self._finishRequestBody)
        return ok

    #: The status line and headers of the response being written, until its first body write.
    _pending_head: bytes | None = None
    #: A body at most this long goes out in one piece with the head (a copy); a longer one
    #: (media) beside it.
    JOIN_BODY_BYTES = 65536

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes,  # noqa: N802
                     headers: Any) -> None:
        """The status line and headers, kept to go out with the body's first write (Twisted
        hands the transport some forty pieces, then the body: each write is checked and
        queued separately, a noticeable part of answering a woken /sync).  Header values are
        sanitised where they are set (``Headers.setRawHeaders``)."""
        if not isinstance(headers, http_headers.Headers):
            super().writeHeaders(version, code, reason, headers)
            return
        lines = [b"%s %s %s\r\n" % (version, code, reason)]
        for name, values in headers.getAllRawHeaders():
            lines.extend(b"%s: %s\r\n" % (name, value) for value in values)
        lines.append(b"\r\n")
        self._flush_head()
        self._pending_head = b"".join(lines)

    def _flush_head(self) -> None:
        head = self._pending_head
        if head is not None:
            self._pending_head = None
            transport: Any = self.transport
            transport.write(head)

    def write(self, data: bytes) -> None:
        head = self._pending_head
        if head is None:
            super().write(data)
            return
        self._pending_head = None
        if len(data) <= self.JOIN_BODY_BYTES:
            self._write_now(head + data)
        else:
            transport: Any = self.transport
            transport.writeSequence((head, data))

    def _write_now(self, data: bytes) -> None:
        """Hand ``data`` to the socket at once when nothing waits before it: a queued write
        costs the reactor two more system calls (watching the socket for room, then no
        longer) and a later pass, for each of the thousands of long-polls one message
        wakes.  What the socket does not take now is queued as usual (in order: nothing was
        queued before it); a plain TCP connection only (TLS writes go through its layer)."""
        transport: Any = self.transport
        if type(transport) is tcp.Server and not transport.TLS and transport.connected \
                and not transport.disconnecting and not transport._writeDisconnected \
                and not transport.dataBuffer and not transport._tempDataBuffer:
            try:
                sent = transport.socket.send(data)
            except OSError:  # full, or gone: the queued write finds out as it always does
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def writeSequence(self, iovec: Any) -> None:  # noqa: N802
        head = self._pending_head
        if head is not None:
            self._pending_head = None
            iovec = [head, *iovec]
        super().writeSequence(iovec)

    def requestDone(self, request: Any) -> None:  # noqa: N802
        self._flush_head()  # a response without a body (HEAD, 204, 304)
        super().requestDone(request)

    def loseConnection(self) -> None:  # noqa: N802
        self._flush_head()
        super().loseConnection()

    def _respondToBadRequestAndDisconnect(self) -> None:
        status, errcode, message = self.refusal or (400, "M_UNKNOWN", "Malformed HTTP request")
        self.refuse(status, errcode, message)

    def refuse(self, status: int, errcode: str, message: str) -> None:
        """Answer ``status`` with a Matrix error, then read no more of this connection.

        Our side is closed for writing at once; what the client still sends is discarded (so
        it reads the answer rather than a reset) for at most :data:`DRAIN_SECONDS`."""
        transport: Any = self.transport
        if transport is None or getattr(self, "_refused", False):
            return
        self._refused = True
        for name in ("dataReceived", "lineReceived", "rawDataReceived", "allContentReceived",
                     "_send100Continue"):
            setattr(self, name, _ignore)
        body = json.dumps({"errcode": errcode, "error": message}).encode("utf-8")
        head = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Error")),
                b"Content-Type: application/json", b"Content-Length: %d" % len(body),
                b"Connection: close"]
        head += [name + b": " + value for name, value in CORS_HEADERS.items()]
        transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.setTimeout(None)
        self.callLater(DRAIN_SECONDS, transport.abortConnection)
        lose_write = getattr(transport, "loseWriteConnection", None)
        if lose_write is not None:
            lose_write()
        else:
            transport.loseConnection()


class BodyLimitedRequest(server.Request):
    """A request that stops buffering its body once it passes the route's size limit.

    A declared ``Content-Length`` over the limit is refused (413) before the body is read; a
    chunked body that grows past it is dropped as it arrives and the router answers 413.
    """

    body_too_large = False
    body_limit: int | None = None
    _body_received = 0

    def gotLength(self, length: int | None) -> None:
        channel = self.channel
        router = getattr(getattr(channel, "site", None), "resource", None)
        method = getattr(channel, "_command", b"").decode("ascii", "replace")
        path = getattr(channel, "_path", b"").split(b"?", 1)[0].decode("utf-8", "replace")
        limit_for = getattr(router, "body_limit_for", None)
        self.body_limit = limit_for(method, path) if limit_for is not None else 1_048_576
        if length is not None and length > self.body_limit:
            self.body_too_large = True
            self.content = io.BytesIO()
            refuse = getattr(channel, "refuse", None)
            if refuse is not None:
                refuse(413, "M_TOO_LARGE", f"Request body exceeds {self.body_limit} bytes")
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        self._body_received += len(data)
        if self.body_limit is not None and self._body_received > self.body_limit:
            self.body_too_large = True
            if self.content is not None:
                self.content.close()
            self.content = io.BytesIO()
            return
        super().handleContentChunk(data)


class QuietSite(server.Site):
    """A Site whose access log goes to the ``broker.access`` logger at DEBUG, formatted only
    when that level is on (Twisted formats a line for every request and hands it to its own
    log, at INFO, whatever the level)."""

    def log(self, request: Any) -> None:
        if access_logger.isEnabledFor(logging.DEBUG):
            formatter: Any = self._logFormatter
            access_logger.debug("%s", formatter(self._logDateTime, request))


def make_site(resource: Resource) -> server.Site:
    """The Site a listener serves ``resource`` with, under the limits above."""
    site = QuietSite(resource, requestFactory=BodyLimitedRequest)
    site.protocol = LimitedHTTPChannel  # type: ignore[assignment]
    site.displayTracebacks = False
    site.noisy = False
    return site
