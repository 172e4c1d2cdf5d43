"""Events as clients see them: the ClientEvent shape with the ``unsigned`` a client expects
(age, transaction_id for the sending device, prev_content, redacted_because)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from protocol.events import Event, format_client_event
from storage.events import PRIVATE_UNSIGNED, EventStore

#: Events whose client shape is kept (one entry per event and variant).
SHAPE_CACHE_SIZE = 4096


def client_shape(event: Event, *, redactions: dict[str, Event] | None = None,
                 include_room_id: bool = True) -> dict[str, Any]:
    """What every client sees of an event: the ClientEvent without ``age`` (it grows) and
    without ``transaction_id`` (only the sending device sees it)."""
    result = format_client_event(event, include_room_id=include_room_id)
    unsigned = {k: v for k, v in event.unsigned.items() if k not in PRIVATE_UNSIGNED}
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


def for_requester(shape: dict[str, Any], event: Event, now_ms: int,
                  device: tuple[str, str] | None) -> dict[str, Any]:
    """The shape as one requester gets it: its own top level and ``unsigned`` (the rest is
    shared), with the event's age and, for the sending device, its transaction ID."""
    result = dict(shape)
    unsigned = dict(shape["unsigned"])
    unsigned["age"] = max(0, now_ms - event.origin_server_ts)
    txn = event.unsigned.get("txn")
    if txn is not None and device is not None and tuple(txn[:2]) == device:
        unsigned["transaction_id"] = txn[2]
    result["unsigned"] = unsigned
    return result


def serialize_event(
    event: Event, now_ms: int, *, device: tuple[str, str] | None = None,
    redactions: dict[str, Event] | None = None, include_room_id: bool = True,
) -> dict[str, Any]:
    """One event for a client; ``device`` is (user_id, device_id) of the requester."""
    shape = client_shape(event, redactions=redactions, include_room_id=include_room_id)
    return for_requester(shape, event, now_ms, device)


def redaction_ids(events: Iterable[Event]) -> list[str]:
    """IDs of the redactions that ``events`` mention, to fetch before serializing."""
    return [e.unsigned["redacted_by"] for e in events if e.unsigned.get("redacted_by")]


class ClientEvents:
    """Events as a client sees them, fetching the redactions they mention in one read.

    The shape every client sees is built once per event (and variant: with or without the
    room ID) and kept for the next requesters, the ``SHAPE_CACHE_SIZE`` newest; a kept shape
    serves only the same event object with the same redaction, so a redacted event (a new
    object, or one marked redacted since) is shaped again.
    """

    def __init__(self, events: EventStore, clock: Any,
                 cache_size: int = SHAPE_CACHE_SIZE) -> None:
        self.events = events
        self.clock = clock
        self.cache_size = cache_size
        self._shapes: dict[tuple[str, bool], _Shape] = {}
        # the server-side aggregations (unsigned.m.relations) of events for a user, read in
        # one batch a response: broker/services/relations.py
        self.aggregate: Callable[[list[Event], str], Awaitable[dict[str, dict[str, Any]]]] | \
            None = None

    async def serialize(self, events: list[Event], *, device: tuple[str, str] | None = None,
                        include_room_id: bool = True, aggregate: bool = False
                        ) -> list[dict[str, Any]]:
        """``aggregate``: with each event's relations summarised in ``unsigned.m.relations``
        (for ``device``'s user)."""
        wanted = redaction_ids(events)
        redactions = await self.events.get_events(wanted) if wanted else {}
        now = self.clock.time_ms()
        shown = [for_requester(self._shape(e, redactions, include_room_id), e, now, device)
                 for e in events]
        if not aggregate or self.aggregate is None or device is None or not events:
            return shown
        found = await self.aggregate(events, device[0])
        return [{**shape, "unsigned": {**shape.get("unsigned", {}),
                                       "m.relations": found[shape["event_id"]]}}
                if shape.get("event_id") in found else shape for shape in shown]

    def _shape(self, event: Event, redactions: dict[str, Event],
               include_room_id: bool) -> dict[str, Any]:
        key = (event.event_id, include_room_id)
        redacted_by = event.unsigned.get("redacted_by")
        because = redactions.get(redacted_by) if redacted_by is not None else None
        kept = self._shapes.get(key)
        if (kept is not None and kept.event is event and kept.redacted_by == redacted_by
                and kept.because is because):
            return kept.shape
        shape = client_shape(event, redactions=redactions, include_room_id=include_room_id)
        self._shapes.pop(key, None)
        self._shapes[key] = _Shape(event, redacted_by, because, shape)
        while len(self._shapes) > self.cache_size:
            del self._shapes[next(iter(self._shapes))]
        return shape

    def forget(self, event_ids: list[str]) -> None:
        """Drop the kept shapes of these events (their content was purged)."""
        for event_id in event_ids:
            self._shapes.pop((event_id, True), None)
            self._shapes.pop((event_id, False), None)

    def cached_count(self) -> int:
        return len(self._shapes)


@dataclass(frozen=True)
class _Shape:
    event: Event
    redacted_by: str | None
    because: Event | None
    shape: dict[str, Any]
