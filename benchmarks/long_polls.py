"""Long-polling members that cost the benchmark machine little: one kept-alive connection each,
raw HTTP/1.1 over asyncio, the arrival time taken when an answer's last byte is read.

A member in an aiohttp session costs the client process some 100-200 µs of Python per answer;
with thousands of members woken at once on a 2-core machine, the client then measures how fast
it reads rather than how fast the node delivers.  Here an answer costs a buffer append and a
``Content-Length`` parse; ``next_batch`` is read only from answers without the marker and from
the one with it, after its arrival time is taken.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote


class LongPoll(asyncio.Protocol):
    """One member's connection: :meth:`wait` sends long-polls from a token until an answer
    holds ``marker``."""

    def __init__(self, host: str, token: str, query: str) -> None:
        self.host = host
        self.token = token
        self.query = query  # the rest of the /sync query (timeout, filter), encoded
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._marker = b""
        self._done: asyncio.Future[tuple[float, str]] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def wait(self, since: str, marker: bytes) -> asyncio.Future[tuple[float, str]]:
        """(arrival time, next token) of the first answer from ``since`` on holding
        ``marker``."""
        self._marker = marker
        self._done = asyncio.get_running_loop().create_future()
        self._request(since)
        return self._done

    def _request(self, since: str) -> None:
        assert self.transport is not None
        self.transport.write(
            f"GET /_matrix/client/v3/sync?since={quote(since)}&{self.query} HTTP/1.1\r\n"
            f"Host: {self.host}\r\nAuthorization: Bearer {self.token}\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        length = next(int(line[15:]) for line in head.split(b"\r\n")
                      if line.startswith(b"content-length:"))
        if len(self._buffer) < end + 4 + length:
            return
        arrived = time.monotonic()
        body = bytes(self._buffer[end + 4:end + 4 + length])
        del self._buffer[:end + 4 + length]
        status = head[9:12]
        done = self._done
        if done is None or done.done():
            return
        if status != b"200":
            done.set_exception(RuntimeError(f"/sync answered {status!r}: {body[:200]!r}"))
            return
        since = json.loads(body)["next_batch"]
        if self._marker in body:
            done.set_result((arrived, since))
        else:
            self._request(since)


async def open_long_polls(host: str, port: int, tokens: list[str], query: str,
                          at_once: int = 200) -> list[LongPoll]:
    """One connection per token, ``at_once`` opened at a time."""
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(at_once)

    async def one(token: str) -> LongPoll:
        async with limit:
            _transport, protocol = await loop.create_connection(
                lambda: LongPoll(f"{host}:{port}", token, query), host, port)
            return protocol

    return list(await asyncio.gather(*(one(t) for t in tokens)))


def sync_query(timeout_ms: int, sync_filter: str) -> str:
    return f"timeout={timeout_ms}&filter={quote(sync_filter)}"
