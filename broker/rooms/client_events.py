"""Events as clients see them: the ClientEvent shape with the ``unsigned`` a client expects
(age, transaction_id for the sending device, prev_content, redacted_because)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol.events import Event, format_client_event
from storage.events import PRIVATE_UNSIGNED, EventStore


def serialize_event(
    event: Event, now_ms: int, *, device: tuple[str, str] | None = None,
    redactions: dict[str, Event] | None = None, include_room_id: bool = True,
) -> dict[str, Any]:
    """One event for a client; ``device`` is (user_id, device_id) of the requester."""
    result = format_client_event(event, include_room_id=include_room_id)
    unsigned = {k: v for k, v in event.unsigned.items() if k not in PRIVATE_UNSIGNED}
    unsigned["age"] = max(0, now_ms - event.origin_server_ts)
    txn = event.unsigned.get("txn")
    if txn is not None and device is not None and tuple(txn[:2]) == device:
        unsigned["transaction_id"] = txn[2]
    redacted_by = event.unsigned.get("redacted_by")
    if redacted_by is not None:
        redaction = (redactions or {}).get(redacted_by)
        if redaction is not None:
            unsigned["redacted_because"] = format_client_event(redaction)
        else:
            unsigned["redacted_because"] = {"event_id": redacted_by}
        unsigned.pop("prev_content", None)
    result["unsigned"] = unsigned
    return result


def redaction_ids(events: Iterable[Event]) -> list[str]:
    """IDs of the redactions that ``events`` mention, to fetch before serializing."""
    return [e.unsigned["redacted_by"] for e in events if e.unsigned.get("redacted_by")]


class ClientEvents:
    """Events as a client sees them, fetching the redactions they mention in one read."""

    def __init__(self, events: EventStore, clock: Any) -> None:
        self.events = events
        self.clock = clock

    async def serialize(self, events: list[Event], *, device: tuple[str, str] | None = None,
                        include_room_id: bool = True) -> list[dict[str, Any]]:
        wanted = redaction_ids(events)
        redactions = await self.events.get_events(wanted) if wanted else {}
        now = self.clock.time_ms()
        return [serialize_event(e, now, device=device, redactions=redactions,
                                include_room_id=include_room_id) for e in events]
