"""``/metrics``: the node's Prometheus metrics, on a listener of its own (``metrics`` in the
config).  Any other path of that listener is 404."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from twisted.internet import defer
from twisted.web import server
from twisted.web.http import Request
from twisted.web.resource import Resource

from broker.config import MetricsListener
from broker.http.channel import make_site

logger = logging.getLogger(__name__)

Scrape = Callable[[], Awaitable[bytes]]


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, scrape: Scrape) -> None:
        super().__init__()
        self._scrape = scrape

    def render(self, request: Request) -> Any:  # type: ignore[override]
        if request.path != b"/metrics":
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain")
            return b"Not found: the metrics are at /metrics\n"
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"GET, HEAD")
            return b""
        defer.ensureDeferred(self._answer(request))
        return server.NOT_DONE_YET

    async def _answer(self, request: Request) -> None:
        try:
            body = await self._scrape()
            status, content_type = 200, CONTENT_TYPE_LATEST.encode("ascii")
        except Exception:
            logger.exception("metrics: the scrape failed")
            body, status, content_type = b"scrape failed\n", 500, b"text/plain"
        if request._disconnected:
            return
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


def listen_metrics(reactor: Any, listener: MetricsListener, scrape: Scrape) -> Any:
    """Open the metrics listener; its port."""
    port = reactor.listenTCP(listener.port, make_site(MetricsResource(scrape)),
                             interface=listener.bind_address)
    logger.info("metrics on %s:%d/metrics", listener.bind_address, port.getHost().port)
    return port
