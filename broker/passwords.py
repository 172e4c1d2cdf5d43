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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from broker.bounded_pool import BoundedPool

T = TypeVar("T")

# Until a hash has been timed: about what one takes with the default cost on a server core.
FIRST_ESTIMATE_S = 0.1


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
        self._pool = BoundedPool(
            "password-hashing", self.settings.concurrency, self.settings.queue_limit, reactor,
            first_estimate_s=FIRST_ESTIMATE_S,
            busy_message="Too many password checks in progress; try again shortly")

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
        return self._pool.in_progress()

    def stop(self) -> None:
        """Let the running hashes finish and end the pool's threads."""
        self._pool.stop()

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """``work`` on the pool once a thread is free; LimitExceeded if too many wait."""
        return await self._pool.run(work, *args)
