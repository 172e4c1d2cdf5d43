"""Read receipts and the fully-read marker of local users.

``m.read`` and ``m.read.private`` go to the receipts store under a new stream id: a public receipt
wakes every local member's /sync, a private one only its owner's.  ``m.fully_read`` is the room's
``m.fully_read`` account data (``{"event_id": ...}``), which only its owner sees.  Each marker must
point at an event of the room and the user must be joined; re-posting the current receipt
changes nothing and takes no stream id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.errors import InvalidInput, NotFound
from broker.rooms.service import RoomEdus, Rooms
from broker.streams import StreamWriter
from protocol.events import Event
from storage.account_data import AccountDataStore
from storage.events import EventStore
from storage.receipts import READ, READ_PRIVATE, UNTHREADED, Receipt, ReceiptStore

FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, READ_PRIVATE)
MARKER_TYPES = (READ, READ_PRIVATE, FULLY_READ)
MAIN_THREAD = "main"


def check_thread_id(receipt_type: str, thread_id: object) -> str:
    """The stored thread id ('' when unthreaded); 400 ``M_INVALID_PARAM`` when invalid."""
    if thread_id is None:
        return UNTHREADED
    if not isinstance(thread_id, str) or not thread_id:
        raise InvalidInput("thread_id field must be a non-empty string")
    if receipt_type == FULLY_READ:
        raise InvalidInput(f"thread_id cannot be used with {FULLY_READ}")
    if thread_id != MAIN_THREAD and not thread_id.startswith("$"):
        raise InvalidInput("thread_id must be 'main' or the event ID of a thread root")
    return thread_id


def _thread_of(event: Event) -> str | None:
    relation = event.content.get("m.relates_to")
    if isinstance(relation, dict) and relation.get("rel_type") == "m.thread":
        root = relation.get("event_id")
        return root if isinstance(root, str) else None
    return None


class Receipts:
    def __init__(self, rooms: Rooms, events: EventStore, receipts: ReceiptStore,
                 account_data: AccountDataStore, streams: StreamWriter, edus: RoomEdus,
                 clock: Any) -> None:
        self.rooms = rooms
        self.events = events
        self.receipts = receipts
        self.account_data = account_data
        self.streams = streams
        self.edus = edus
        self.clock = clock
        # told each receipt moved (m.read, m.read.private), once it is stored
        self.on_receipt: Callable[[Receipt], None] | None = None
        # Told each public receipt once it is written (application services).
        self.listeners: list[Callable[[Receipt], None]] = []

    async def room_event(self, room_id: str, user_id: str, event_id: str) -> Event:
        """The event, if ``user_id`` is joined to the room and the event belongs to it."""
        await self.rooms.require_joined(room_id, user_id)
        event = (await self.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != room_id:
            raise NotFound(f"Event {event_id} not found in room {room_id}")
        return event

    async def set_marker(self, room_id: str, user_id: str, marker_type: str, event_id: str,
                         thread_id: str = UNTHREADED) -> None:
        """Move one receipt or the fully-read marker to ``event_id`` (checked first)."""
        event = await self.room_event(room_id, user_id, event_id)
        if thread_id not in (UNTHREADED, MAIN_THREAD) and event_id != thread_id and \
                _thread_of(event) not in (None, thread_id):
            raise InvalidInput(f"Event {event_id} is not in thread {thread_id}")
        if marker_type == FULLY_READ:
            await self._set_fully_read(room_id, user_id, event_id)
        else:
            await self._set_receipt(Receipt(
                room_id=room_id, receipt_type=marker_type, user_id=user_id, event_id=event_id,
                thread_id=thread_id, ts=self.clock.time_ms()))

    async def _set_receipt(self, receipt: Receipt) -> None:
        store = self.receipts
        current = await store.get_receipt(
            receipt.room_id, receipt.receipt_type, receipt.user_id, receipt.thread_id)
        if current == receipt.event_id:
            return
        if receipt.receipt_type == READ_PRIVATE:
            audience = {"users": [receipt.user_id]}
        else:
            audience = {"rooms": [receipt.room_id]}
        await self.streams.write(
            lambda stream_id: store.set_receipt(receipt, stream_id), **audience)
        if self.on_receipt is not None:
            self.on_receipt(receipt)
        if receipt.receipt_type == READ:
            for listener in self.listeners:
                listener(receipt)
            data: dict[str, object] = {"ts": receipt.ts}
            if receipt.thread_id:
                data["thread_id"] = receipt.thread_id
            self.edus.send(
                receipt.room_id, "m.receipt",
                {receipt.room_id: {READ: {receipt.user_id: {"event_ids": [receipt.event_id],
                                                            "data": data}}}},
                key=f"{receipt.room_id}|{receipt.user_id}")

    async def _set_fully_read(self, room_id: str, user_id: str, event_id: str) -> None:
        store = self.account_data
        content = {"event_id": event_id}
        if await store.get_account_data(user_id, room_id, FULLY_READ) == content:
            return
        await self.streams.write(
            lambda stream_id: store.set_account_data(
                user_id, room_id, FULLY_READ, content, stream_id),
            users=[user_id])

    async def set_read_markers(self, room_id: str, user_id: str,
                               wanted: dict[str, str]) -> None:
        """Move several markers at once (``/read_markers``): every one is checked before any
        moves, so a bad one leaves nothing half-written."""
        await self.rooms.require_joined(room_id, user_id)
        for event_id in set(wanted.values()):
            await self.room_event(room_id, user_id, event_id)
        for kind, event_id in wanted.items():
            await self.set_marker(room_id, user_id, kind, event_id)
