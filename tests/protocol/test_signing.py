"""Signing keys, key files and event signature verification."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from protocol.errors import SignatureVerifyError
from protocol.hashing import add_content_hash
from protocol.room_versions import RoomVersions
from protocol.signing import (
    decode_verify_key,
    encode_verify_key,
    generate_signing_key,
    get_verify_key,
    read_signing_key_file,
    servers_required_to_sign,
    sign_event,
    sign_json,
    verify_event_signature,
    verify_json_signature,
    verify_key_id,
    write_signing_key_file,
)

V11 = RoomVersions.V11


def _event() -> dict:
    return {
        "room_id": "!r:a.test",
        "sender": "@u:a.test",
        "type": "m.room.message",
        "content": {"body": "hi"},
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
        "origin_server_ts": 1,
    }


def test_generated_key_version_has_a_prefix_and_random_suffix() -> None:
    key = generate_signing_key()
    assert key.version.startswith("a_") and len(key.version) == 6
    assert verify_key_id(key) == f"ed25519:{key.version}"
    assert generate_signing_key().encode() != key.encode()


def test_key_file_round_trip_in_signedjson_format(tmp_path: Path) -> None:
    key = generate_signing_key("a_test")
    path = tmp_path / "signing.key"
    write_signing_key_file(path, key)
    line = path.read_text()
    assert line.startswith("ed25519 a_test ") and line.endswith("\n") and "=" not in line
    loaded = read_signing_key_file(path)
    assert loaded.version == "a_test" and loaded.encode() == key.encode()


def test_key_file_is_written_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_signing_key_file(path, generate_signing_key("a_x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_malformed_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("rsa 1 abc\n")
    with pytest.raises(ValueError):
        read_signing_key_file(path)


def test_verify_key_base64_round_trip() -> None:
    key = generate_signing_key("a_k")
    encoded = encode_verify_key(key)
    decoded = decode_verify_key("ed25519:a_k", encoded)
    assert bytes(decoded) == bytes(get_verify_key(key))
    assert encode_verify_key(get_verify_key(key)) == encoded


def test_json_signature_with_wrong_key_is_refused() -> None:
    signed = sign_json({"a": 1}, "a.test", generate_signing_key("k"))
    with pytest.raises(SignatureVerifyError):
        verify_json_signature(signed, "a.test", get_verify_key(generate_signing_key("k")))


def test_event_signature_verifies_and_survives_redaction_of_content() -> None:
    key = generate_signing_key("k")
    pdu = _event()
    add_content_hash(pdu)
    sign_event(pdu, "a.test", key, V11)
    verify_event_signature(pdu, "a.test", get_verify_key(key), V11)
    pdu["content"] = {}  # a redacted copy still carries a valid signature
    verify_event_signature(pdu, "a.test", get_verify_key(key), V11)


def test_event_signature_fails_when_essential_field_changes() -> None:
    key = generate_signing_key("k")
    pdu = _event()
    add_content_hash(pdu)
    sign_event(pdu, "a.test", key, V11)
    pdu["sender"] = "@mallory:a.test"
    with pytest.raises(SignatureVerifyError):
        verify_event_signature(pdu, "a.test", get_verify_key(key), V11)


def test_event_signature_missing_for_server_is_refused() -> None:
    key = generate_signing_key("k")
    pdu = _event()
    add_content_hash(pdu)
    sign_event(pdu, "a.test", key, V11)
    with pytest.raises(SignatureVerifyError):
        verify_event_signature(pdu, "b.test", get_verify_key(key), V11)


def test_malformed_signature_is_refused() -> None:
    key = generate_signing_key("k")
    pdu = _event()
    pdu["signatures"] = {"a.test": {"ed25519:k": "!!!"}}
    with pytest.raises(SignatureVerifyError):
        verify_event_signature(pdu, "a.test", get_verify_key(key), V11)


def test_restricted_join_requires_authorising_server_signature() -> None:
    pdu = _event() | {
        "type": "m.room.member",
        "state_key": "@u:a.test",
        "content": {"membership": "join", "join_authorised_via_users_server": "@mod:b.test"},
    }
    assert servers_required_to_sign(pdu, V11) == {"a.test", "b.test"}
    assert servers_required_to_sign(_event(), V11) == {"a.test"}
