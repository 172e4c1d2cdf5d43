"""Limits and failure policy of the outbound federation queue.

What a failed ``PUT /_matrix/federation/v1/send/{txnId}`` means for the destination:

- ``429`` with ``retry_after_ms`` (body) or a ``retry_after_ms`` attribute on the exception:
  wait that long, then retry; the destination is up, so the failure count does not grow.
- ``400`` (``M_BAD_JSON``, ``M_NOT_JSON``...) and ``413``: the peer says this request can never
  succeed.  Retrying it would block every later item, so its items are dropped (logged at
  WARNING with their event IDs) and the queue moves on.
- anything else (connection refused or reset, DNS failure, TLS failure, timeout, 5xx, 401/403
  while the peer cannot yet verify us, 404 from something that is not a Matrix server):
  exponential back-off from 5 s, doubling per consecutive failure up to 24 h, with +-20 % jitter.

Exceptions are classified by duck typing so that this module depends on no transport: an int
``status`` (``protocol.errors.HttpResponseError``) or ``code`` attribute is the HTTP status, a
dict ``body`` the parsed answer.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any

MAX_PDUS_PER_TRANSACTION = 50
MAX_EDUS_PER_TRANSACTION = 100

MIN_RETRY_INTERVAL_MS = 5_000
MAX_RETRY_INTERVAL_MS = 24 * 60 * 60 * 1000
JITTER = 0.2

#: Ephemeral EDUs kept in memory per destination while a transaction is in flight.
MAX_PENDING_EPHEMERAL_EDUS = 1000

DEFAULT_REQUEST_TIMEOUT_S = 60.0


class FailureKind(enum.Enum):
    BACKOFF = "backoff"  # the destination is unreachable or failing: back off and retry
    RATE_LIMITED = "rate_limited"  # the destination asked us to wait retry_after_ms
    REJECTED = "rejected"  # the destination refused this request for good: drop its items


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    status: int | None  # HTTP status, None for connection errors and timeouts
    retry_after_ms: int | None = None
    description: str = ""


_REJECTED_STATUSES = frozenset({400, 413})


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _retry_after_of(exc: BaseException) -> int | None:
    value: Any = getattr(exc, "retry_after_ms", None)
    if value is None:
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            value = body.get("retry_after_ms")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return min(int(value), MAX_RETRY_INTERVAL_MS)
    return None


def classify(exc: BaseException) -> Failure:
    """What a failed send means for the destination (see the module docstring)."""
    status = _status_of(exc)
    description = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if status == 429:
        retry_after = _retry_after_of(exc)
        if retry_after is not None:
            return Failure(FailureKind.RATE_LIMITED, status, retry_after, description)
        return Failure(FailureKind.BACKOFF, status, None, description)
    if status in _REJECTED_STATUSES:
        return Failure(FailureKind.REJECTED, status, None, description)
    return Failure(FailureKind.BACKOFF, status, None, description)


def backoff_interval_ms(failure_count: int, rng: random.Random) -> int:
    """How long to wait after ``failure_count`` consecutive failures (>= 1), jittered, capped."""
    doublings = min(max(failure_count, 1) - 1, 40)
    base = min(MIN_RETRY_INTERVAL_MS * (2**doublings), MAX_RETRY_INTERVAL_MS)
    jittered = base * rng.uniform(1 - JITTER, 1 + JITTER)
    return int(min(jittered, MAX_RETRY_INTERVAL_MS))
