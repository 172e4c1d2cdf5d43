"""Whether the node can serve, for load balancers (``GET /health``).

Healthy means the node has finished starting, is not shutting down, and its database answered
a ping within ``timeout_s``.  The database is asked at most once every ``interval_s``: callers
in between get the last answer, and callers during a ping share it.  A ping that has not come
back (a database that holds the node's thread, a lock held elsewhere) is not asked again until
it does: the node stays unhealthy meanwhile rather than queueing more pings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from broker.clock import Clock
from broker.deferreds import observe

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_INTERVAL_S = 1.0

STARTING = "starting"
STOPPING = "stopping"
DATABASE = "database"  # the database did not answer (an error, or not within the timeout)

Ping = Callable[[], "defer.Deferred[None]"]


class Health:
    def __init__(self, ping: Ping, clock: Clock, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._ping = ping
        self.clock = clock
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self._ready = False
        self._stopping = False
        self._database_ok = False
        self._checked_at: float | None = None
        self._answer: defer.Deferred[bool] | None = None  # the ping in flight, as callers see it
        self._pinging = False  # the ping has not come back (even if its answer timed out)

    def ready(self) -> None:
        """The node has started: it may be healthy from now on."""
        self._ready = True

    def stopping(self) -> None:
        """The node is shutting down: load balancers should send elsewhere."""
        self._stopping = True

    async def problem(self) -> str | None:
        """None when the node can serve, else what stops it (:data:`STARTING`,
        :data:`STOPPING`, :data:`DATABASE`)."""
        if self._stopping:
            return STOPPING
        if not self._ready:
            return STARTING
        return None if await self._database_answers() else DATABASE

    def _database_answers(self) -> defer.Deferred[bool]:
        now = self.clock.time()
        if self._checked_at is not None and now - self._checked_at < self.interval_s:
            return defer.succeed(self._database_ok)
        if self._answer is None:
            if self._pinging:  # the last ping is still out: the database is not answering
                self._record(False)
                return defer.succeed(False)
            self._answer = self._start_ping()
        return observe(self._answer)

    def _start_ping(self) -> defer.Deferred[bool]:
        answer: defer.Deferred[bool] = defer.Deferred()
        self._pinging = True

        def settle(ok: bool) -> None:
            if not answer.called:
                if timer.active():
                    timer.cancel()
                self._record(ok)
                self._answer = None
                answer.callback(ok)

        def came_back(result: Any) -> None:
            self._pinging = False
            if isinstance(result, Failure):
                logger.warning("health: the database did not answer: %s",
                               result.getErrorMessage())
                settle(False)
            else:
                settle(True)

        timer = self.clock.call_later(self.timeout_s, settle, False)
        d = defer.maybeDeferred(self._ping)
        d.addBoth(came_back)
        return answer

    def _record(self, ok: bool) -> None:
        self._database_ok = ok
        self._checked_at = self.clock.time()
