"""JSON in and out of the node: strict parsing of what arrives, an encoder that always answers.

Everything a node accepts may end up in canonical JSON (signed events), in the database or in
another user's ``/sync``; so what JSON can say but canonical JSON, a browser's ``JSON.parse`` or
the database cannot carry is refused when it arrives:

- ``NaN``, ``Infinity`` and numbers too large for a double (``1e400``) are not JSON;
- escapes of lone UTF-16 surrogates (``"\\ud800"``) are not Unicode text; nor is invalid UTF-8;
- integers outside [-(2**53)+1, 2**53-1] (canonical JSON's range);
- nesting deeper than :data:`MAX_DEPTH` objects/arrays;
- the character U+0000, which PostgreSQL cannot store in text.

:func:`loads_strict` raises :class:`JsonRefused` (carrying the Matrix errcode) for all of them.
:func:`encode_json` never fails on a value read back from storage that predates these checks: it
replaces what cannot be encoded instead.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

import orjson

from protocol.canonical import MAX_SAFE_INT

logger = logging.getLogger(__name__)

#: The deepest nesting of objects and arrays a JSON body may have.
MAX_DEPTH = 100

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class JsonRefused(ValueError):
    """A body that is not acceptable JSON; ``errcode`` is M_NOT_JSON or M_BAD_JSON."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise JsonRefused("M_NOT_JSON", f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonRefused("M_NOT_JSON", "Number too large to represent")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 17:  # no 18-character integer is in range; don't convert huge digit strings
        raise JsonRefused("M_BAD_JSON", "Integer out of range [-(2**53)+1, 2**53-1]")
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise JsonRefused("M_BAD_JSON", "Integer out of range [-(2**53)+1, 2**53-1]")
    return value


def loads_strict(raw: bytes | str) -> Any:
    """Parse ``raw`` as JSON under the rules above; :class:`JsonRefused` otherwise."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonRefused("M_NOT_JSON", "Content is not valid UTF-8") from e
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                           parse_int=_bounded_int)
    except JsonRefused:
        raise
    except RecursionError as e:
        raise JsonRefused("M_BAD_JSON", f"JSON nested deeper than {MAX_DEPTH} levels") from e
    except ValueError as e:
        raise JsonRefused("M_NOT_JSON", f"Content not JSON: {e}") from e
    # Each check below can only find something if the text has what it looks for: a bare
    # surrogate or NUL cannot pass json.loads, only their escapes can.
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    nul = "\\u0000" in text
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    if surrogates or nul or deep:
        _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    """Depth, lone surrogates and NUL anywhere in ``value`` (keys included), without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise JsonRefused("M_BAD_JSON", f"JSON nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_string(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_string(text: str) -> None:
    if _LONE_SURROGATE.search(text) is not None:
        raise JsonRefused("M_NOT_JSON", "Strings must be Unicode text (a lone surrogate escape)")
    if "\x00" in text:
        raise JsonRefused("M_BAD_JSON", "Strings must not contain U+0000")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


class Encoded(dict):  # type: ignore[type-arg]
    """A JSON object that keeps its own encoding: :func:`encode_json` writes the kept bytes
    instead of encoding the object again (a /sync timeline that every member of a room woken
    by the same event receives).  It reads like the object it holds and refuses changes,
    which the kept bytes would not show."""

    __slots__ = ("fragment",)

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value)
        self.fragment = orjson.Fragment(encode_json(value))

    def _read_only(self, *_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("an Encoded JSON object cannot be changed")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]


def _subclass_value(value: Any) -> Any:
    """What orjson writes for an instance of a subclass of a JSON type (it passes them here
    so that :class:`Encoded` is written from its kept bytes)."""
    if isinstance(value, Encoded):
        return value.fragment
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (orjson: several times faster than the standard
    library, and every /sync answer goes through here).

    Values JSON cannot carry (from rows stored before strict parsing, or echoed in an error
    message) are replaced: non-finite numbers by ``null``, lone surrogates by U+FFFD.  Raises
    only for values that are not JSON-shaped at all (a programming error) or nested past
    Python's recursion limit.
    """
    try:
        return orjson.dumps(value, default=_subclass_value,
                            option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except orjson.JSONEncodeError:
        # What orjson refuses (lone surrogates, integers beyond 64 bits, non-string keys,
        # nesting past 255 levels) the standard library encodes or replaces below.
        pass
    try:
        return _dumps(value)
    except ValueError:  # includes UnicodeEncodeError
        logger.warning("response held values JSON cannot carry; they were replaced")
        return _dumps(_replace_unencodable(value))


def _replace_unencodable(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_replace_unencodable(k) if isinstance(k, str) else k: _replace_unencodable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_unencodable(v) for v in value]
    return value
