"""Stream a file into an HTTP response without holding it in memory or blocking the reactor.

Chunks are read on a thread and written to the request as a push producer: when the client reads
slowly, Twisted pauses us and we stop reading until it resumes, so memory stays at one chunk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from pathlib import Path

from twisted.internet import defer, threads
from twisted.internet.interfaces import IPushProducer
from twisted.web.http import Request
from zope.interface import implementer


@implementer(IPushProducer)
class _Pacer:
    """Tracks the consumer's pause/resume/stop signals for the writing loop."""

    def __init__(self) -> None:
        self._resumed: defer.Deferred[None] | None = None
        self.stopped = False

    def pauseProducing(self) -> None:
        if self._resumed is None:
            self._resumed = defer.Deferred()

    def resumeProducing(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()

    async def wait_until_writable(self) -> None:
        if self._resumed is not None:
            await self._resumed


class ShortFile(Exception):
    """The file ended before the promised Content-Length."""


def file_streamer(path: Path, read: Callable[[Path], Generator[bytes, None, None]], length: int
                  ) -> Callable[[Request], Awaitable[None]]:
    """A ``RawResponse.stream`` writing exactly ``length`` bytes of ``path``'s content, whose
    chunks ``read`` yields (blocking reads, each run on a thread: the file's clear content)."""

    async def stream(request: Request) -> None:
        chunks = read(path)
        pacer = _Pacer()
        request.registerProducer(pacer, True)
        try:
            remaining = length
            while remaining > 0 and not pacer.stopped and not request._disconnected:
                chunk = (await threads.deferToThread(next, chunks, b""))[:remaining]
                if not chunk:
                    raise ShortFile(f"{path} ended {remaining} bytes early")
                remaining -= len(chunk)
                request.write(chunk)
                await pacer.wait_until_writable()
        finally:
            request.unregisterProducer()
            chunks.close()

    return stream
