"""Token-bucket rate limits per (action, key); exceeding one raises LimitExceeded (429
M_LIMIT_EXCEEDED with retry_after_ms to a client).

Buckets are kept for the ``max_keys`` keys used last.  A key beyond that starts again with a
full bucket, which is what it would have by then unless it was used within the time the other
``max_keys`` keys were; the limits of keys in use are never reset by others' traffic.
"""

from __future__ import annotations

from cachetools import LRUCache

from broker.config import RateLimit
from broker.errors import LimitExceeded

MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, limits: dict[str, RateLimit], enabled: bool, clock: object, *,
                 max_keys: int = MAX_KEYS) -> None:
        self.limits = limits
        self.enabled = enabled
        self.clock = clock
        self._buckets: LRUCache[tuple[str, str], tuple[float, float]] = LRUCache(max_keys)

    def check(self, action: str, key: str, *, exempt: bool = False) -> None:
        """Take one token for ``key`` under ``action`` or raise 429 with retry_after_ms."""
        if not self.enabled or exempt:
            return
        limit = self.limits[action]
        now = self.clock.time()  # type: ignore[attr-defined]
        tokens, last = self._buckets.get((action, key), (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - last) * limit.per_second)
        if tokens < 1.0:
            wait = (1.0 - tokens) / limit.per_second if limit.per_second > 0 else 60.0
            self._buckets[(action, key)] = (tokens, now)
            raise LimitExceeded(int(wait * 1000) + 1)
        self._buckets[(action, key)] = (tokens - 1.0, now)
