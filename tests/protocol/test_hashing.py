"""Content hashes, reference hashes, event IDs and room v12 room IDs."""

from __future__ import annotations

import hashlib
import re

from protocol.canonical import encode_canonical_json, urlsafe_unpadded_b64
from protocol.events import build_pdu, finalize_pdu
from protocol.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_room_id_from_create,
)
from protocol.redaction import prune_event_dict
from protocol.room_versions import RoomVersions
from protocol.signing import generate_signing_key

KEY = generate_signing_key("t")


def _message() -> dict:
    return {
        "room_id": "!r:a.test",
        "sender": "@u:a.test",
        "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": "hello"},
        "prev_events": ["$prev"],
        "auth_events": ["$auth"],
        "depth": 5,
        "origin_server_ts": 1234,
        "unsigned": {"age": 5},
    }


def test_content_hash_round_trip() -> None:
    pdu = _message()
    add_content_hash(pdu)
    assert check_content_hash(pdu)


def test_content_hash_ignores_unsigned_and_signatures() -> None:
    pdu = _message()
    add_content_hash(pdu)
    pdu["unsigned"] = {"age": 99999}
    pdu["signatures"] = {"x": {"ed25519:1": "sig"}}
    assert check_content_hash(pdu)


def test_content_hash_detects_tampered_content() -> None:
    pdu = _message()
    add_content_hash(pdu)
    pdu["content"]["body"] = "goodbye"
    assert not check_content_hash(pdu)


def test_content_hash_missing_is_invalid() -> None:
    assert not check_content_hash(_message())


def test_content_hash_is_sha256_of_canonical_json_without_excluded_keys() -> None:
    pdu = _message()
    expected = {k: v for k, v in pdu.items() if k != "unsigned"}
    assert compute_content_hash(pdu) == hashlib.sha256(encode_canonical_json(expected)).digest()


def test_event_id_is_urlsafe_reference_hash_of_redacted_event() -> None:
    pdu = _message()
    add_content_hash(pdu)
    pdu["signatures"] = {"a.test": {"ed25519:1": "x"}}
    redacted = prune_event_dict(RoomVersions.V11, pdu)
    del redacted["signatures"]
    digest = hashlib.sha256(encode_canonical_json(redacted)).digest()
    event_id = compute_event_id(pdu, RoomVersions.V11)
    assert event_id == "$" + urlsafe_unpadded_b64(digest)
    assert re.fullmatch(r"\$[A-Za-z0-9_-]{43}", event_id)


def test_event_id_does_not_depend_on_signatures_or_unsigned() -> None:
    pdu = _message()
    add_content_hash(pdu)
    before = compute_event_id(pdu, RoomVersions.V11)
    pdu["signatures"] = {"other.test": {"ed25519:9": "abc"}}
    pdu["unsigned"] = {"age": 1}
    assert compute_event_id(pdu, RoomVersions.V11) == before


def test_event_id_depends_on_content_through_the_hash() -> None:
    a, b = _message(), _message()
    b["content"]["body"] = "different"
    add_content_hash(a)
    add_content_hash(b)
    assert compute_event_id(a, RoomVersions.V11) != compute_event_id(b, RoomVersions.V11)


def test_v12_room_id_is_bang_plus_create_event_reference_hash() -> None:
    pdu = build_pdu(
        RoomVersions.V12,
        room_id=None,
        sender="@alice:a.test",
        type="m.room.create",
        content={"room_version": "12"},
        state_key="",
        prev_event_ids=[],
        auth_event_ids=[],
        depth=1,
        origin_server_ts=1,
    )
    event = finalize_pdu(pdu, "a.test", KEY, RoomVersions.V12)
    room_id = compute_room_id_from_create(pdu)
    assert room_id == "!" + event.event_id[1:]
    assert re.fullmatch(r"![A-Za-z0-9_-]{43}", room_id)
    assert event.room_id == room_id
    assert "room_id" not in event.pdu
