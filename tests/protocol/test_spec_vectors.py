"""The Matrix spec's published test vectors (Appendices)."""

from __future__ import annotations

import json

from protocol.canonical import encode_canonical_json
from protocol.hashing import add_content_hash
from protocol.room_versions import RoomVersions
from protocol.signing import (
    get_verify_key,
    sign_event,
    sign_json,
    signing_key_from_seed,
    verify_event_signature,
    verify_json_signature,
)

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
KEY = signing_key_from_seed(SEED, "1")


def test_canonical_json_examples_from_appendix() -> None:
    cases = [
        ({}, b"{}"),
        ({"one": 1, "two": "Two"}, b'{"one":1,"two":"Two"}'),
        ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
        (
            {
                "auth": {
                    "success": True,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            {"medium": "email", "address": "john.doe@example.org"},
                            {"medium": "msisdn", "address": "123456789"},
                        ],
                    },
                }
            },
            b'{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
            b'"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
            b'{"address":"123456789","medium":"msisdn"}]},"success":true}}',
        ),
        ({"a": "日本語"}, '{"a":"日本語"}'.encode()),
        ({"本": 2, "日": 1}, '{"日":1,"本":2}'.encode()),
        (json.loads('{"a": "\\u65E5"}'), '{"a":"日"}'.encode()),
        ({"a": None}, b'{"a":null}'),
        (json.loads('{"a": -0, "b": 10000000000}'), b'{"a":0,"b":10000000000}'),
    ]
    for obj, expected in cases:
        assert encode_canonical_json(obj) == expected


def test_json_signing_of_empty_object_matches_spec() -> None:
    signed = sign_json({}, "domain", KEY)
    assert signed == {
        "signatures": {
            "domain": {
                "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
            }
        }
    }
    verify_json_signature(signed, "domain", get_verify_key(KEY))


def test_json_signing_of_object_with_data_matches_spec() -> None:
    signed = sign_json({"one": 1, "two": "Two"}, "domain", KEY)
    assert signed["signatures"]["domain"]["ed25519:1"] == (
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    )


def _minimal_event() -> dict:
    return {
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "signatures": {},
        "hashes": {},
        "type": "X",
        "content": {},
        "prev_events": [],
        "auth_events": [],
        "depth": 3,
        "unsigned": {"age_ts": 1000000},
    }


def test_event_signing_minimal_event_matches_spec() -> None:
    # The appendix vectors predate room v11, whose redaction no longer keeps "origin";
    # they are reproduced with the v10 redaction rules.
    event = _minimal_event()
    add_content_hash(event)
    sign_event(event, "domain", KEY, RoomVersions.V10)
    assert event["hashes"] == {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"}
    assert event["signatures"] == {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    }
    assert event["unsigned"] == {"age_ts": 1000000}
    verify_event_signature(event, "domain", get_verify_key(KEY), RoomVersions.V10)


def test_event_signing_redactable_event_matches_spec() -> None:
    event = {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }
    add_content_hash(event)
    sign_event(event, "domain", KEY, RoomVersions.V10)
    assert event["hashes"] == {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"}
    assert event["signatures"]["domain"]["ed25519:1"] == (
        "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
    )


def test_spec_minimal_event_signature_differs_under_v11_redaction() -> None:
    # v11 strips the top-level "origin" before signing, so the signature changes.
    event = _minimal_event()
    add_content_hash(event)
    sign_event(event, "domain", KEY, RoomVersions.V11)
    assert event["hashes"]["sha256"] == "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    assert event["signatures"]["domain"]["ed25519:1"] != (
        "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
    )
