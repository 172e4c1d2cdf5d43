"""Blocking work run off the reactor thread on a pool of its own, bounded in threads and in
waiting work.

At most ``concurrency`` pieces of work run at once, on threads of the pool; up to
``queue_limit`` more wait their turn; beyond that :meth:`BoundedPool.run` refuses at once with
:class:`LimitExceeded` (``429 M_LIMIT_EXCEEDED``) and a ``retry_after_ms`` estimated from the
work ahead and how long recent work took.  Password hashing and sending email use one each,
so neither can hold the reactor nor pile up without bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from broker.errors import LimitExceeded

T = TypeVar("T")

# Weight of the newest piece of work in the running average of how long work takes.
AVERAGE_WEIGHT = 0.2


class BoundedPool:
    def __init__(self, name: str, concurrency: int, queue_limit: int, reactor: Any = None, *,
                 first_estimate_s: float, busy_message: str) -> None:
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self.busy_message = busy_message
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=concurrency, name=name)
        self._started = False
        self._stop_registered = False
        self._admitted = 0  # running or waiting
        self._average_s = first_estimate_s

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on the pool once a thread is free; LimitExceeded if too many wait."""
        if self._admitted >= self.concurrency + self.queue_limit:
            raise LimitExceeded(self._retry_after_ms(), self.busy_message)
        self._start()
        self._admitted += 1
        try:
            result, elapsed = await threads.deferToThreadPool(
                self._reactor_of(), self._pool, _timed, work, *args)
        finally:
            self._admitted -= 1
        self._average_s += AVERAGE_WEIGHT * (elapsed - self._average_s)
        return result

    def in_progress(self) -> tuple[int, int]:
        """(work running, work waiting for a thread)."""
        running = len(self._pool.working) if self._started else 0
        return running, self._admitted - running

    def stop(self) -> None:
        """Let the running work finish and end the pool's threads."""
        if self._started:
            self._started = False
            self._pool.stop()

    def _retry_after_ms(self) -> int:
        """About when a place in the queue frees up: the work ahead, spread over the pool."""
        rounds = math.ceil(self._admitted / self.concurrency)
        return max(1, int(rounds * self._average_s * 1000))

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._pool.start()
        if not self._stop_registered:
            self._stop_registered = True
            self._reactor_of().addSystemEventTrigger("during", "shutdown", self.stop)

    def _reactor_of(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor


def _timed(work: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``work``'s result and how many seconds it took (on a pool thread)."""
    started = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - started
