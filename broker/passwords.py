"""Password hashing (Argon2id) on a pool of its own, bounded in memory.

Each Argon2 hash holds ``memory_cost_kib`` of memory while it runs (64 MiB by default), so the
node runs at most ``concurrency`` of them at once, on threads of their own: hashing memory stays
under ``concurrency x memory_cost_kib`` however many logins arrive.  Up to ``queue_limit`` more
wait their turn; beyond that a login, registration or password change is refused at once with
:class:`LimitExceeded` (``429 M_LIMIT_EXCEEDED``) and a ``retry_after_ms`` estimated from how
long hashes take.  A stored hash carries its own parameters, so hashes made with other
settings stay verifiable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from broker.errors import LimitExceeded

T = TypeVar("T")

# Until a hash has been timed: about what one takes with the default cost on a server core.
FIRST_ESTIMATE_S = 0.1
# Weight of the newest hash in the running average of hash times.
AVERAGE_WEIGHT = 0.2


@dataclass(frozen=True)
class HashingSettings:
    """How many hashes run at once, how many may wait, and the Argon2id cost of new hashes."""

    concurrency: int = 2
    queue_limit: int = 32
    memory_cost_kib: int = 65536
    time_cost: int = 3
    parallelism: int = 4

    @property
    def memory_bound_bytes(self) -> int:
        """The most memory the running hashes hold together."""
        return self.concurrency * self.memory_cost_kib * 1024


class PasswordHashing:
    """Argon2id hashes and checks, run off the reactor thread on a bounded pool."""

    def __init__(self, settings: HashingSettings | None = None, reactor: Any = None) -> None:
        self.settings = settings or HashingSettings()
        self._hasher = PasswordHasher(time_cost=self.settings.time_cost,
                                      memory_cost=self.settings.memory_cost_kib,
                                      parallelism=self.settings.parallelism)
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=self.settings.concurrency,
                                name="password-hashing")
        self._started = False
        self._stop_registered = False
        self._admitted = 0  # running or waiting
        self._average_s = FIRST_ESTIMATE_S

    def hash_sync(self, password: str) -> str:
        """A hash made on the calling thread (scripts and admin tools, not the node)."""
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        if not stored_hash:
            return False

        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    def in_progress(self) -> tuple[int, int]:
        """(hashes running, hashes waiting for a thread)."""
        running = len(self._pool.working) if self._started else 0
        return running, self._admitted - running

    def stop(self) -> None:
        """Let the running hashes finish and end the pool's threads."""
        if self._started:
            self._started = False
            self._pool.stop()

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """``work`` on the pool once a thread is free; LimitExceeded if too many wait."""
        limit = self.settings.concurrency + self.settings.queue_limit
        if self._admitted >= limit:
            raise LimitExceeded(self._retry_after_ms(),
                                "Too many password checks in progress; try again shortly")
        self._start()
        self._admitted += 1
        try:
            result, elapsed = await threads.deferToThreadPool(
                self._reactor_of(), self._pool, _timed, work, *args)
        finally:
            self._admitted -= 1
        self._average_s += AVERAGE_WEIGHT * (elapsed - self._average_s)
        return result

    def _retry_after_ms(self) -> int:
        """About when a place in the queue frees up: the work ahead, spread over the pool."""
        rounds = math.ceil(self._admitted / self.settings.concurrency)
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
