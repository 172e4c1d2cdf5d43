"""Content hashes, reference hashes, event IDs and (room v12) hash-derived room IDs."""

from __future__ import annotations

import hashlib
from typing import Any

from protocol.canonical import (
    decode_b64,
    encode_canonical_json,
    unpadded_b64,
    urlsafe_unpadded_b64,
)
from protocol.redaction import prune_event_dict
from protocol.room_versions import RoomVersion, RoomVersions

__all__ = [
    "compute_content_hash",
    "add_content_hash",
    "check_content_hash",
    "redacted_canonical_bytes",
    "compute_reference_hash",
    "compute_event_id",
    "event_id_from_reference_hash",
    "room_id_from_event_id",
    "compute_room_id_from_create",
]

_CONTENT_HASH_EXCLUDED = ("unsigned", "signatures", "hashes")


def compute_content_hash(pdu: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON of ``pdu`` without unsigned, signatures and hashes."""
    stripped = {k: v for k, v in pdu.items() if k not in _CONTENT_HASH_EXCLUDED}
    return hashlib.sha256(encode_canonical_json(stripped)).digest()


def add_content_hash(pdu: dict[str, Any]) -> None:
    """Compute the content hash and store it as ``pdu["hashes"]["sha256"]``."""
    digest = compute_content_hash(pdu)
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        hashes = {}
        pdu["hashes"] = hashes
    hashes["sha256"] = unpadded_b64(digest)


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """True if ``pdu["hashes"]["sha256"]`` matches the event's content hash."""
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        return False
    claimed = hashes.get("sha256")
    if not isinstance(claimed, str):
        return False
    try:
        claimed_bytes = decode_b64(claimed)
    except ValueError:
        return False
    return claimed_bytes == compute_content_hash(pdu)


def redacted_canonical_bytes(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """Canonical JSON of the redacted event without signatures, unsigned and age_ts.

    These are exactly the bytes an event signature covers and the bytes the reference
    hash is computed over, so callers on the hot path can encode once and reuse.
    """
    pruned = prune_event_dict(room_version, pdu)
    pruned.pop("signatures", None)
    pruned.pop("unsigned", None)
    pruned.pop("age_ts", None)
    return encode_canonical_json(pruned)


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """The SHA-256 reference hash of an event."""
    return hashlib.sha256(redacted_canonical_bytes(pdu, room_version)).digest()


def event_id_from_reference_hash(reference_hash: bytes) -> str:
    """Format a reference hash as a v4-style event ID."""
    return "$" + urlsafe_unpadded_b64(reference_hash)


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """``"$"`` + url-safe unpadded base64 of the event's reference hash."""
    return event_id_from_reference_hash(compute_reference_hash(pdu, room_version))


def room_id_from_event_id(create_event_id: str) -> str:
    """Room v12 (MSC4291): the room ID is the create event's ID with sigil ``!``."""
    if not create_event_id.startswith("$"):
        raise ValueError(f"not an event ID: {create_event_id!r}")
    return "!" + create_event_id[1:]


def compute_room_id_from_create(
    pdu: dict[str, Any], room_version: RoomVersion | None = None
) -> str:
    """The room ID implied by a room v12 create event (``"!"`` + its reference hash)."""
    if room_version is None:
        room_version = RoomVersions.V12
    return "!" + urlsafe_unpadded_b64(compute_reference_hash(pdu, room_version))
