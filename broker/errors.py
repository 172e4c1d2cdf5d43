"""Domain errors: what the node's services raise when they refuse a request.

They say *why* (the input is invalid, the thing does not exist, the caller may not, a limit
was reached) and carry the Matrix error code a client should see, but nothing about HTTP: the
HTTP layer (:func:`broker.http.errors.from_domain`) alone turns a kind into a status, so the
same service can answer the Client-Server API, an admin API, an application API or a script.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a reason.  ``errcode`` defaults to the kind's usual Matrix code;
    ``extra`` holds further fields of the error (``retry_after_ms``, ``soft_logout``...)."""

    errcode = "M_UNKNOWN"

    def __init__(self, message: str, *, errcode: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if errcode is not None:
            self.errcode = errcode
        self.extra = extra


class InvalidInput(DomainError):
    """The request names or holds something that is not acceptable."""

    errcode = "M_INVALID_PARAM"


class MissingInput(InvalidInput):
    errcode = "M_MISSING_PARAM"


class MalformedContent(InvalidInput):
    """A JSON value has the wrong shape or type."""

    errcode = "M_BAD_JSON"


class NotFound(DomainError):
    errcode = "M_NOT_FOUND"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    errcode = "M_FORBIDDEN"


class Unauthenticated(DomainError):
    """The caller is not (or no longer) known: a missing, unknown or expired credential."""

    errcode = "M_UNKNOWN_TOKEN"


class Conflict(DomainError):
    """The thing exists already (an alias, a key backup version of another shape...)."""

    errcode = "M_UNKNOWN"


class LimitExceeded(DomainError):
    """Too many requests: try again after ``retry_after_ms``."""

    errcode = "M_LIMIT_EXCEEDED"

    def __init__(self, retry_after_ms: int, message: str = "Too many requests") -> None:
        super().__init__(message, retry_after_ms=retry_after_ms)
        self.retry_after_ms = retry_after_ms


class TooLarge(DomainError):
    errcode = "M_TOO_LARGE"


class Unavailable(DomainError):
    """Another server, or a part of this one, cannot answer now."""

    errcode = "M_UNKNOWN"


class TimedOut(Unavailable):
    """Something awaited (an upload, another server) did not arrive in time."""
