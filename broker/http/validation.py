"""Reading query-string integers and tokens: each failure is the spec's 400 error naming the
argument.  (Request bodies are declared and checked by :mod:`broker.http.bodies`.)"""

from __future__ import annotations

from broker.http.errors import bad_param
from broker.sync.tokens import InvalidToken, SyncToken
from protocol.canonical import MAX_SAFE_INT


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
