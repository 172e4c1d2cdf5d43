"""Canonical JSON and the base64 variants used throughout the Matrix protocol."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from canonicaljson import encode_canonical_json as _encode_canonical_json

__all__ = [
    "encode_canonical_json",
    "unpadded_b64",
    "urlsafe_unpadded_b64",
    "decode_b64",
    "check_canonical_values",
    "MAX_SAFE_INT",
]

#: Canonical JSON integers must lie in [-(2**53)+1, (2**53)-1].
MAX_SAFE_INT = 2**53 - 1


def encode_canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as Matrix canonical JSON (sorted keys, no whitespace, UTF-8)."""
    return _encode_canonical_json(obj)


def unpadded_b64(data: bytes) -> str:
    """Standard-alphabet base64 without ``=`` padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def urlsafe_unpadded_b64(data: bytes) -> str:
    """URL-safe-alphabet base64 (``-`` and ``_``) without ``=`` padding."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_b64(value: str) -> bytes:
    """Decode base64 that may be padded or unpadded, standard or URL-safe.

    Raises ``ValueError`` on malformed input.
    """
    if not isinstance(value, str):
        raise ValueError("base64 value must be a string")
    stripped = value.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("invalid base64 length")
    padded = stripped + "=" * (-len(stripped) % 4)
    altchars = b"-_" if ("-" in padded or "_" in padded) else None
    try:
        if altchars is not None:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from exc


def check_canonical_values(obj: Any) -> None:
    """Raise ``ValueError`` if ``obj`` holds values canonical JSON forbids.

    Room versions 6 and later require integers in the safe range and no floats.
    """
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if not -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                raise ValueError(f"integer out of canonical JSON range: {item}")
        elif isinstance(item, float):
            raise ValueError("floats are not allowed in canonical JSON")
        elif isinstance(item, dict):
            for key, val in item.items():
                if not isinstance(key, str):
                    raise ValueError("object keys must be strings")
                stack.append(val)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            raise ValueError(f"unsupported JSON value of type {type(item).__name__}")
