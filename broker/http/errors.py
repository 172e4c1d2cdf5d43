"""Matrix errors: ``{"errcode", "error"}`` bodies with the spec's HTTP status."""

from __future__ import annotations

from typing import Any

from broker import errors


class MatrixError(Exception):
    """An error a client sees as a Matrix error response."""

    def __init__(self, status: int, errcode: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}


def bad_json(message: str = "Content not JSON.") -> MatrixError:
    return MatrixError(400, "M_NOT_JSON", message)


def bad_param(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message)


def missing_param(message: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", message)


def bad_type(message: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", message)


def not_found(message: str = "Not found") -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", message)


def unrecognized(status: int = 404) -> MatrixError:
    return MatrixError(status, "M_UNRECOGNIZED", "Unrecognized request")


def limit_exceeded(retry_after_ms: int) -> MatrixError:
    return MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=retry_after_ms)


# The HTTP status of each kind of domain error; the most specific class listed wins.
STATUS_OF_KIND: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.LimitExceeded, 429),
    (errors.TimedOut, 504),
    (errors.Unavailable, 502),
    (errors.InvalidInput, 400),
)


def from_domain(error: errors.DomainError) -> MatrixError:
    """The Matrix error a client sees for a domain error: its kind's status, its code."""
    status = next((status for kind, status in STATUS_OF_KIND if isinstance(error, kind)), 500)
    return MatrixError(status, error.errcode, error.message, **error.extra)
