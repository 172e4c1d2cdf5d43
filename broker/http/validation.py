"""Small typed accessors for request bodies: each failure is the spec's 400 error naming the key."""

from __future__ import annotations

from typing import Any, TypeVar

from broker.http.errors import MatrixError, bad_param, missing_param
from broker.sync.tokens import InvalidToken, SyncToken
from protocol.canonical import MAX_SAFE_INT

T = TypeVar("T")

_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}


def _describe(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_NAMES.get(k, k.__name__) for k in kinds)


def require(body: dict[str, Any], key: str, kind: type[T]) -> T:
    """``body[key]``, which must be present and of ``kind``."""
    if key not in body:
        raise missing_param(f"Missing '{key}'")
    return check(body, key, kind)  # type: ignore[return-value]


def optional(body: dict[str, Any], key: str, kind: type[T], default: Any = None) -> Any:
    """``body[key]`` if present (and not null), checked against ``kind``; else ``default``."""
    if body.get(key) is None:
        return default
    return check(body, key, kind)


def check(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise MatrixError(400, "M_BAD_JSON", f"'{key}' must be {_describe(kind)}")
    if not isinstance(value, kinds):
        raise MatrixError(400, "M_BAD_JSON", f"'{key}' must be {_describe(kind)}")
    return value


def parse_int_arg(value: str | None, name: str, default: int, *, minimum: int = 0,
                  maximum: int | None = None) -> int:
    """A query-string integer, clamped to ``maximum``; M_INVALID_PARAM if not a number."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as e:
        raise bad_param(f"'{name}' must be an integer") from e
    number = bounded_int(number, name)
    if number < minimum:
        raise bad_param(f"'{name}' must be at least {minimum}")
    return min(number, maximum) if maximum is not None else number


def bounded_int(number: int, name: str) -> int:
    """``number`` if it lies in canonical JSON's range [-(2**53)+1, 2**53-1] (which every
    column holds); 400 M_INVALID_PARAM naming ``name`` otherwise.  For integers taken from
    query strings and tokens, which the strict JSON parser never sees."""
    if not -MAX_SAFE_INT <= number <= MAX_SAFE_INT:
        raise bad_param(f"'{name}' is out of range")
    return number


def token_arg(raw: str, name: str) -> SyncToken:
    """The sync or pagination token in query argument ``name``; 400 M_INVALID_PARAM naming
    it when malformed or out of range."""
    try:
        return SyncToken.parse(raw)
    except InvalidToken as e:
        raise bad_param(f"'{name}': {e}") from e
