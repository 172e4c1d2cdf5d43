"""Small Twisted helpers shared by the node's modules."""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


def observe(shared: defer.Deferred[T]) -> defer.Deferred[T]:
    """A new Deferred with ``shared``'s result, leaving ``shared`` usable by other waiters
    (several callers awaiting one load or one send)."""
    out: defer.Deferred[T] = defer.Deferred()

    def fire(result: Any) -> Any:
        if isinstance(result, Failure):
            out.errback(result)
        else:
            out.callback(result)
        return result

    shared.addBoth(fire)
    return out
