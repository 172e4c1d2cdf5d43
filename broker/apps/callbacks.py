"""Status callbacks to applications: at least once, retried with back-off, never in the way.

Each status change of a message whose application has a callback URL owes one callback, written
in the change's own transaction (``app_callbacks``, :mod:`broker.apps.tracking`), so a restart
resumes what was owed.  :class:`Callbacks` reads the due ones (at start, every
``POLL_SECONDS``, and at once when new ones are written) and POSTs each to the application's
URL, the body ``{"message_id","status","recipient","ts"}`` as stored, with
``X-Broker-Signature: sha256=<hex HMAC-SHA256 of the raw body with the callback secret>``.

- A 2xx answer ends it (the row is deleted).  Anything else — another status, a refused
  connection, no answer within ``timeout_s`` — is retried after ``BASE_DELAY_S * 2**attempts``
  (at most ``MAX_DELAY_S``) times a random factor in [0.5, 1.5) (injected), up to
  ``MAX_ATTEMPTS``; then it is dropped, logged and counted.
- The URL is checked again before each attempt (:func:`broker.apps.callback_urls.callback_address`:
  what a name resolves to may have changed since registration) and the connection goes to
  the address that was checked.
- Callbacks run beside each other, never awaited by the sending or sync paths: at most
  ``PER_APP`` of one application at a time, so an application whose endpoint hangs holds up
  only its own callbacks, each for at most ``timeout_s``; one at a time per message, so an
  application hears a message's changes in their order (unless one is being retried).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import treq
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from broker.apps.callback_urls import Resolve, callback_address
from broker.apps.tracking import CallbackTarget
from broker.clock import Clock
from broker.errors import InvalidInput
from broker.periodic import Periodic
from storage.app_messages import AppMessageStore, CallbackRow

logger = logging.getLogger(__name__)

POLL_SECONDS = 5.0
BASE_DELAY_S = 5.0
MAX_DELAY_S = 3600.0
MAX_ATTEMPTS = 20  # about a day of retries
PER_APP = 4
BATCH = 200
TIMEOUT_S = 10.0
SIGNATURE_HEADER = "X-Broker-Signature"
USER_AGENT = b"gov-broker callbacks"
STATUS_ORDER = {"delivered": 0, "read": 1, "expired": 2, "failed": 2}

#: (url, address to dial, body, headers, timeout) -> the answer's status
Post = Callable[[str, str, bytes, dict[str, str]], Awaitable[int]]


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay_s(attempts: int, factor: float) -> float:
    """The wait after the ``attempts``-th failure (``factor`` in [0.5, 1.5))."""
    return min(BASE_DELAY_S * 2 ** max(attempts - 1, 0), MAX_DELAY_S) * factor


@implementer(IAgentEndpointFactory)
class _PinnedEndpoints:
    """Connects to the address that was checked, whatever the URL's host resolves to now
    (TLS still verifies the certificate against the URL's host)."""

    def __init__(self, reactor: Any, address: str, timeout_s: float) -> None:
        self.reactor, self.address, self.timeout_s = reactor, address, timeout_s

    def endpointForURI(self, uri: Any) -> Any:  # noqa: N802
        kind = TCP6ClientEndpoint if ":" in self.address else TCP4ClientEndpoint
        endpoint: Any = kind(self.reactor, self.address, uri.port, timeout=self.timeout_s)
        if uri.scheme == b"https":
            return wrapClientTLS(optionsForClientTLS(uri.host.decode("ascii")), endpoint)
        return endpoint


class HttpPoster:
    """POSTs over Twisted's Agent (no connection kept: each callback dials the address just
    checked), on ``reactor``; the timeout runs on ``timer`` (the node's clock's reactor)."""

    def __init__(self, reactor: Any, timer: Any, timeout_s: float = TIMEOUT_S) -> None:
        self.reactor, self.timer, self.timeout_s = reactor, timer, timeout_s
        self._pool = HTTPConnectionPool(reactor, persistent=False)

    async def __call__(self, url: str, address: str, body: bytes,
                       headers: dict[str, str]) -> int:
        client = HTTPClient(Agent.usingEndpointFactory(
            self.reactor, _PinnedEndpoints(self.reactor, address, self.timeout_s),
            pool=self._pool))
        sent = Headers({k.encode(): [v.encode()] for k, v in headers.items()})
        sent.setRawHeaders(b"User-Agent", [USER_AGENT])

        async def post() -> int:
            response = await client.post(url, data=body, headers=sent)
            await treq.content(response)  # read whole, then the connection closes
            return int(response.code)

        d = defer.ensureDeferred(post())
        d.addTimeout(self.timeout_s, self.timer)
        return await d


@dataclass(frozen=True)
class CallbackDeps:
    store: AppMessageStore
    callback_of: Callable[[str], CallbackTarget | None]
    clock: Clock
    post: Post
    random: Callable[[], float]  # in [0, 1)
    allow_private: bool
    resolve: Resolve | None = None


class Callbacks:
    def __init__(self, deps: CallbackDeps) -> None:
        self.deps = deps
        self.store = deps.store
        self.clock = deps.clock
        self.in_flight: dict[tuple[str, str], defer.Deferred[None]] = {}
        self._per_app: Counter[str] = Counter()
        self._held_back = False  # a due callback waited for one under way
        self.counts: Counter[str] = Counter()  # delivered, retried, dropped
        self._job = Periodic(self.run_due, "delivering application callbacks")

    def start(self, reactor: Any) -> None:
        self._job.start(reactor, POLL_SECONDS)

    def stop(self) -> None:
        self._job.stop()

    def poke(self) -> None:
        """New callbacks were written: look for due ones now."""
        self._job.run_soon()

    async def run_due(self) -> None:
        """Start every due callback not under way (within each app's share, one at a time
        per message, its changes in their order); returns without waiting for answers."""
        rows = await self.store.due_callbacks(self.clock.time_ms(), BATCH)
        busy = {message_id for message_id, _ in self.in_flight}
        for row in sorted(rows, key=lambda r: (r.next_ts, STATUS_ORDER.get(r.status, 9))):
            if row.message_id in busy or self._per_app[row.app_id] >= PER_APP:
                self._held_back = True  # started when one under way ends
                continue
            busy.add(row.message_id)
            key = (row.message_id, row.status)
            self._per_app[row.app_id] += 1
            d = defer.ensureDeferred(self._deliver(row))
            self.in_flight[key] = d
            d.addBoth(self._done, key, row.app_id)

    def _done(self, result: Any, key: tuple[str, str], app_id: str) -> None:
        self.in_flight.pop(key, None)
        self._per_app[app_id] -= 1
        if self._per_app[app_id] <= 0:
            del self._per_app[app_id]
        if isinstance(result, Failure):
            logger.error("an application callback failed: %s", result.getTraceback())
        if self._held_back:
            self._held_back = False
            self.poke()

    async def _deliver(self, row: CallbackRow) -> None:
        target = self.deps.callback_of(row.app_id)
        if target is None:  # the app has no callback (any more)
            self.counts["dropped"] += 1
            await self.store.callback_done(row.message_id, row.status)
            return
        body = row.body.encode()
        try:
            address, _port = await callback_address(target.url, self.deps.allow_private,
                                                    self.deps.resolve)
            status = await self.deps.post(target.url, address, body, {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(target.secret, body)})
        except InvalidInput as e:
            status, why = 0, e.message
        except Exception as e:  # refused, reset, timed out
            status, why = 0, f"{type(e).__name__}: {e}"
        else:
            why = f"HTTP {status}"
        if 200 <= status < 300:
            self.counts["delivered"] += 1
            await self.store.callback_done(row.message_id, row.status)
            return
        await self._retry_later(row, why, urlsplit(target.url).hostname or "")

    async def _retry_later(self, row: CallbackRow, why: str, host: str) -> None:
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            self.counts["dropped"] += 1
            logger.warning("callback %s/%s to %s dropped after %d attempts (%s)",
                           row.message_id, row.status, host, attempts, why)
            await self.store.callback_done(row.message_id, row.status)
            return
        self.counts["retried"] += 1
        delay_ms = int(retry_delay_s(attempts, 0.5 + self.deps.random()) * 1000)
        logger.info("callback %s/%s to %s failed (%s); attempt %d in %d ms", row.message_id,
                    row.status, host, why, attempts + 1, delay_ms)
        await self.store.callback_retry(row.message_id, row.status, attempts,
                                        self.clock.time_ms() + delay_ms)
