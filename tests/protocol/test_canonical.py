"""Base64 helpers and canonical value checks."""

from __future__ import annotations

import pytest

from protocol.canonical import (
    check_canonical_values,
    decode_b64,
    unpadded_b64,
    urlsafe_unpadded_b64,
)


def test_unpadded_b64_matches_spec_examples() -> None:
    examples = {
        b"": "",
        b"f": "Zg",
        b"fo": "Zm8",
        b"foo": "Zm9v",
        b"foob": "Zm9vYg",
        b"fooba": "Zm9vYmE",
        b"foobar": "Zm9vYmFy",
    }
    for raw, encoded in examples.items():
        assert unpadded_b64(raw) == encoded


def test_urlsafe_unpadded_b64_uses_dash_and_underscore() -> None:
    assert urlsafe_unpadded_b64(b"\xfb\xff") == "-_8"
    assert unpadded_b64(b"\xfb\xff") == "+/8"


def test_decode_b64_accepts_padded_unpadded_standard_and_urlsafe() -> None:
    assert decode_b64("Zm9vYg") == b"foob"
    assert decode_b64("Zm9vYg==") == b"foob"
    assert decode_b64("+/8") == b"\xfb\xff"
    assert decode_b64("-_8=") == b"\xfb\xff"


def test_decode_b64_rejects_garbage() -> None:
    for bad in ("Z", "Zm9v!", "a b"):
        with pytest.raises(ValueError):
            decode_b64(bad)


def test_check_canonical_values_refuses_floats_and_huge_ints() -> None:
    check_canonical_values({"a": [1, "x", None, True, {"b": 2**53 - 1}]})
    with pytest.raises(ValueError):
        check_canonical_values({"a": 1.5})
    with pytest.raises(ValueError):
        check_canonical_values({"a": [2**53]})
