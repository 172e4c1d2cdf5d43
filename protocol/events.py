"""Matrix PDUs as typed, effectively immutable ``Event`` objects, and how to build them.

``build_pdu`` shapes a new event for a room version, ``finalize_pdu`` hashes, signs and
identifies it (the hot send path: canonical JSON of the redacted form is encoded once
and used both for the signature and for the event ID), and ``event_from_pdu`` wraps and
validates a PDU received over federation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from protocol.canonical import check_canonical_values, encode_canonical_json
from protocol.errors import InvalidEventError
from protocol.hashing import (
    add_content_hash,
    compute_event_id,
    event_id_from_reference_hash,
    redacted_canonical_bytes,
    room_id_from_event_id,
)
from protocol.identifiers import is_event_id, is_room_id, is_user_id, within_id_limit
from protocol.room_versions import RoomVersion
from protocol.signing import SigningKey, sign_canonical_bytes, verify_key_id

__all__ = [
    "Event",
    "build_pdu",
    "finalize_pdu",
    "event_from_pdu",
    "format_client_event",
    "MAX_PDU_SIZE",
]

#: Events whose canonical JSON exceeds this many bytes must be refused.
MAX_PDU_SIZE = 65536

_MAX_DEPTH = 2**63 - 1


class Event:
    """A PDU plus its room version. Treat ``pdu`` and ``content`` as read-only.

    ``unsigned`` is a separate, mutable dict of local metadata (age, transaction_id,
    prev_content, ...) that is never part of hashes or signatures.
    """

    __slots__ = ("_pdu", "_room_version", "_event_id", "unsigned", "rejected_reason")

    def __init__(
        self,
        pdu: dict[str, Any],
        room_version: RoomVersion,
        *,
        event_id: str | None = None,
        unsigned: dict[str, Any] | None = None,
    ) -> None:
        self._pdu = pdu
        self._room_version = room_version
        self._event_id = event_id
        if unsigned is None:
            raw = pdu.get("unsigned")
            unsigned = dict(raw) if isinstance(raw, dict) else {}
        self.unsigned: dict[str, Any] = unsigned
        self.rejected_reason: str | None = None

    # Identity -----------------------------------------------------------------
    @property
    def event_id(self) -> str:
        """The event ID, computed once from the reference hash and cached."""
        event_id = self._event_id
        if event_id is None:
            event_id = compute_event_id(self._pdu, self._room_version)
            self._event_id = event_id
        return event_id

    @property
    def room_id(self) -> str:
        """The room ID; for a room v12 create event, derived from its own hash."""
        if self._room_version.room_id_is_create_event_hash and self.type == "m.room.create":
            return room_id_from_event_id(self.event_id)
        room_id: str = self._pdu["room_id"]
        return room_id

    @property
    def room_version(self) -> RoomVersion:
        return self._room_version

    @property
    def pdu(self) -> dict[str, Any]:
        """The federation JSON of the event (as received or built)."""
        return self._pdu

    # Fields -------------------------------------------------------------------
    @property
    def type(self) -> str:
        value: str = self._pdu["type"]
        return value

    @property
    def state_key(self) -> str | None:
        value: str | None = self._pdu.get("state_key")
        return value

    def is_state(self) -> bool:
        return "state_key" in self._pdu

    @property
    def sender(self) -> str:
        value: str = self._pdu["sender"]
        return value

    @property
    def content(self) -> dict[str, Any]:
        value: dict[str, Any] = self._pdu.get("content", {})
        return value

    @property
    def prev_event_ids(self) -> list[str]:
        value: list[str] = self._pdu.get("prev_events", [])
        return value

    @property
    def auth_event_ids(self) -> list[str]:
        value: list[str] = self._pdu.get("auth_events", [])
        return value

    @property
    def depth(self) -> int:
        value: int = self._pdu["depth"]
        return value

    @property
    def origin_server_ts(self) -> int:
        value: int = self._pdu["origin_server_ts"]
        return value

    @property
    def redacts(self) -> str | None:
        """The redacted event ID of an m.room.redaction (content in v11+, top level before)."""
        if self.type != "m.room.redaction":
            return None
        if self._room_version.redacts_in_content:
            value = self.content.get("redacts")
        else:
            value = self._pdu.get("redacts")
        return value if isinstance(value, str) else None

    @property
    def membership(self) -> str | None:
        if self.type != "m.room.member":
            return None
        value = self.content.get("membership")
        return value if isinstance(value, str) else None

    @property
    def signatures(self) -> dict[str, dict[str, str]]:
        value: dict[str, dict[str, str]] = self._pdu.get("signatures", {})
        return value

    @property
    def hashes(self) -> dict[str, str]:
        value: dict[str, str] = self._pdu.get("hashes", {})
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.event_id == other.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)

    def __repr__(self) -> str:
        state = f", state_key={self.state_key!r}" if self.is_state() else ""
        return f"<Event {self.event_id} type={self.type!r}{state} sender={self.sender!r}>"


def build_pdu(
    room_version: RoomVersion,
    *,
    room_id: str | None,
    sender: str,
    type: str,
    content: dict[str, Any],
    state_key: str | None = None,
    prev_event_ids: Sequence[str],
    auth_event_ids: Sequence[str],
    depth: int,
    origin_server_ts: int,
    redacts: str | None = None,
    unsigned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A PDU dict of the right shape for ``room_version``, ready for ``finalize_pdu``.

    - Room v12 create events carry no ``room_id`` (``room_id`` is ignored for them).
    - Room v12 events never list the create event in ``auth_events``; it is removed
      if passed (it is recognisable from the room ID).
    - ``redacts`` goes into ``content`` for v11+ and at top level before.
    - Room v10 create events get ``content.creator = sender`` if absent.
    """
    content = dict(content)
    auth_ids = list(auth_event_ids)
    is_create = type == "m.room.create" and state_key == ""

    if room_version.room_id_is_create_event_hash and not is_create:
        if room_id is None or not room_id.startswith("!"):
            raise InvalidEventError("room_id is required")
        create_id = "$" + room_id[1:]
        auth_ids = [eid for eid in auth_ids if eid != create_id]

    if is_create and not room_version.implicit_room_creator:
        content.setdefault("creator", sender)

    pdu: dict[str, Any] = {
        "auth_events": auth_ids,
        "content": content,
        "depth": depth,
        "origin_server_ts": origin_server_ts,
        "prev_events": list(prev_event_ids),
        "sender": sender,
        "type": type,
    }
    if not (is_create and room_version.room_id_is_create_event_hash):
        if room_id is None:
            raise InvalidEventError("room_id is required")
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        if room_version.redacts_in_content:
            content["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    if unsigned:
        pdu["unsigned"] = dict(unsigned)
    return pdu


def finalize_pdu(
    pdu: dict[str, Any], server_name: str, signing_key: SigningKey, room_version: RoomVersion
) -> Event:
    """Add the content hash, sign, and compute the event ID; returns the ``Event``.

    The signature and the reference hash cover the same canonical bytes (the redacted
    event without signatures and unsigned), so they are encoded only once.
    """
    add_content_hash(pdu)
    signed_bytes = redacted_canonical_bytes(pdu, room_version)
    signature = sign_canonical_bytes(signed_bytes, signing_key)
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        signatures = {}
        pdu["signatures"] = signatures
    signatures.setdefault(server_name, {})[verify_key_id(signing_key)] = signature
    event_id = event_id_from_reference_hash(hashlib.sha256(signed_bytes).digest())
    return Event(pdu, room_version, event_id=event_id)


def _require(pdu: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = pdu.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidEventError(f"PDU field {key!r} is missing or has the wrong type")
    return value


def event_from_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> Event:
    """Validate the shape of a received PDU for ``room_version`` and wrap it.

    Raises ``InvalidEventError`` for malformed events (wrong types, non-canonical
    values, oversized events). Authorization is a separate step (``auth_rules``).
    """
    if not isinstance(pdu, dict):
        raise InvalidEventError("PDU must be a JSON object")
    event_type = _require(pdu, "type", str)
    if not within_id_limit(event_type):
        raise InvalidEventError("PDU type exceeds 255 bytes")
    if not is_user_id(pdu.get("sender")):
        raise InvalidEventError("PDU sender is not a valid user ID")
    _require(pdu, "content", dict)
    ts = _require(pdu, "origin_server_ts", int)
    depth = _require(pdu, "depth", int)
    if not 0 <= depth <= _MAX_DEPTH or ts < 0:
        raise InvalidEventError("PDU depth or origin_server_ts out of range")
    for key in ("prev_events", "auth_events"):
        ids = _require(pdu, key, list)
        if not all(is_event_id(eid) for eid in ids):
            raise InvalidEventError(f"PDU {key} must be a list of event IDs")
    if "state_key" in pdu and not (isinstance(pdu["state_key"], str)
                                   and within_id_limit(pdu["state_key"])):
        raise InvalidEventError("PDU state_key must be a string of at most 255 bytes")
    if "event_id" in pdu and not is_event_id(pdu["event_id"]):
        raise InvalidEventError("PDU event_id is not a valid event ID")
    hashes = _require(pdu, "hashes", dict)
    if not isinstance(hashes.get("sha256"), str):
        raise InvalidEventError("PDU has no sha256 content hash")
    _require(pdu, "signatures", dict)

    is_v12_create = room_version.room_id_is_create_event_hash and event_type == "m.room.create"
    if not is_v12_create:
        if not is_room_id(pdu.get("room_id")):
            raise InvalidEventError("PDU room_id is not a valid room ID")

    if room_version.strict_canonical_json:
        try:
            check_canonical_values(pdu)
        except ValueError as exc:
            raise InvalidEventError(str(exc)) from exc
    if len(encode_canonical_json(pdu)) > MAX_PDU_SIZE:
        raise InvalidEventError("PDU exceeds 65536 bytes")
    return Event(pdu, room_version)


def format_client_event(event: Event, *, include_room_id: bool = True) -> dict[str, Any]:
    """The Client-Server API ``ClientEvent`` shape of an event.

    For redactions, ``redacts`` is given both at top level and inside ``content``
    whatever the room version, as the spec recommends for client compatibility.
    """
    content = event.content
    result: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "content": content,
        "sender": event.sender,
        "origin_server_ts": event.origin_server_ts,
        "unsigned": dict(event.unsigned),
    }
    if event.is_state():
        result["state_key"] = event.state_key
    if include_room_id:
        result["room_id"] = event.room_id
    redacts = event.redacts
    if redacts is not None:
        result["redacts"] = redacts
        if "redacts" not in content:
            result["content"] = {**content, "redacts": redacts}
    return result
