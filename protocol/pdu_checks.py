"""Checks every PDU received from another server passes before the room logic sees it.

Shape (``event_from_pdu``), signatures of every server that must have signed it (through the
keyring) and the content hash: an event whose hash does not match is kept in its redacted form,
as the spec requires, rather than refused.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from protocol.errors import InvalidEventError, KeyFetchError, SignatureVerifyError
from protocol.events import Event, event_from_pdu
from protocol.hashing import check_content_hash, compute_event_id
from protocol.redaction import prune_event_dict
from protocol.room_versions import RoomVersion

logger = logging.getLogger(__name__)


TRUSTED_UNSIGNED = ("invite_room_state", "knock_room_state")


class SignatureChecker(Protocol):
    async def verify_event_signatures(self, pdu: dict[str, Any],
                                      room_version: RoomVersion) -> None: ...


class PduRejected(Exception):
    """A PDU that fails its checks; the message says why. ``event_id`` is set when the PDU was
    well-formed enough to have one (so the sender can be told which event failed)."""

    def __init__(self, message: str, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


def event_id_if_computable(pdu: Any, room_version: RoomVersion) -> str | None:
    """The ID a malformed PDU would have, so the sender learns which event was refused; None
    when even that cannot be computed (not an object, values canonical JSON cannot carry)."""
    if not isinstance(pdu, dict):
        return None
    try:
        return compute_event_id(pdu, room_version)
    except Exception:  # anything about a malformed PDU may be wrong
        return None


async def check_pdu(keyring: SignatureChecker, pdu: Any, room_version: RoomVersion) -> Event:
    """A verified Event from a received PDU, or PduRejected."""
    if isinstance(pdu, dict):
        # A peer's ``unsigned`` is not covered by any signature: keep only what clients need.
        raw_unsigned = pdu.get("unsigned")
        unsigned: dict[str, Any] = raw_unsigned if isinstance(raw_unsigned, dict) else {}
        pdu = {k: v for k, v in pdu.items() if k != "unsigned"}
        kept = {k: unsigned[k] for k in TRUSTED_UNSIGNED if k in unsigned}
        if kept:
            pdu["unsigned"] = kept
    try:
        event = event_from_pdu(pdu, room_version)
    except InvalidEventError as e:
        raise PduRejected(f"malformed event: {e}", event_id_if_computable(pdu, room_version)
                          ) from e
    try:
        await keyring.verify_event_signatures(event.pdu, room_version)
    except (SignatureVerifyError, KeyFetchError) as e:
        raise PduRejected(f"bad signature on {event.event_id}: {e}", event.event_id) from e
    if not check_content_hash(event.pdu):
        logger.info("content hash mismatch on %s: keeping it redacted", event.event_id)
        pruned = prune_event_dict(room_version, event.pdu)
        event = Event(pruned, room_version, event_id=event.event_id)
    return event
