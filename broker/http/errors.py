"""Matrix errors: ``{"errcode", "error"}`` bodies with the spec's HTTP status."""

from __future__ import annotations

from typing import Any


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
