"""Read receipts and the fully-read marker of local users.

``m.read`` and ``m.read.private`` go to the receipts store under a new stream id: a public receipt
wakes every local member's /sync, a private one only its owner's.  ``m.fully_read`` is the room's
``m.fully_read`` account data (``{"event_id": ...}``), which only its owner sees.  Each marker must
point at an event of the room and the user must be joined; re-posting the current receipt
changes nothing and takes no stream id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.http.errors import bad_param, not_found
from broker.rooms.service import federate_edu
from protocol.events import Event
from storage.receipts import READ, READ_PRIVATE, UNTHREADED, Receipt

if TYPE_CHECKING:
    from broker.node import Node

FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, READ_PRIVATE)
MARKER_TYPES = (READ, READ_PRIVATE, FULLY_READ)
MAIN_THREAD = "main"


def check_thread_id(receipt_type: str, thread_id: object) -> str:
    """The stored thread id ('' when unthreaded); 400 ``M_INVALID_PARAM`` when invalid."""
    if thread_id is None:
        return UNTHREADED
    if not isinstance(thread_id, str) or not thread_id:
        raise bad_param("thread_id field must be a non-empty string")
    if receipt_type == FULLY_READ:
        raise bad_param(f"thread_id cannot be used with {FULLY_READ}")
    if thread_id != MAIN_THREAD and not thread_id.startswith("$"):
        raise bad_param("thread_id must be 'main' or the event ID of a thread root")
    return thread_id


def _thread_of(event: Event) -> str | None:
    relation = event.content.get("m.relates_to")
    if isinstance(relation, dict) and relation.get("rel_type") == "m.thread":
        root = relation.get("event_id")
        return root if isinstance(root, str) else None
    return None


class Receipts:
    def __init__(self, node: Node) -> None:
        self.node = node

    async def room_event(self, room_id: str, user_id: str, event_id: str) -> Event:
        """The event, if ``user_id`` is joined to the room and the event belongs to it."""
        await self.node.rooms.require_joined(room_id, user_id)
        event = (await self.node.stores.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != room_id:
            raise not_found(f"Event {event_id} not found in room {room_id}")
        return event

    async def set_marker(self, room_id: str, user_id: str, marker_type: str, event_id: str,
                         thread_id: str = UNTHREADED) -> None:
        """Move one receipt or the fully-read marker to ``event_id`` (checked first)."""
        event = await self.room_event(room_id, user_id, event_id)
        if thread_id not in (UNTHREADED, MAIN_THREAD) and event_id != thread_id and \
                _thread_of(event) not in (None, thread_id):
            raise bad_param(f"Event {event_id} is not in thread {thread_id}")
        if marker_type == FULLY_READ:
            await self._set_fully_read(room_id, user_id, event_id)
        else:
            await self._set_receipt(Receipt(
                room_id=room_id, receipt_type=marker_type, user_id=user_id, event_id=event_id,
                thread_id=thread_id, ts=self.node.clock.time_ms()))

    async def _set_receipt(self, receipt: Receipt) -> None:
        store = self.node.stores.receipts
        current = await store.get_receipt(
            receipt.room_id, receipt.receipt_type, receipt.user_id, receipt.thread_id)
        if current == receipt.event_id:
            return
        if receipt.receipt_type == READ_PRIVATE:
            audience = {"users": [receipt.user_id]}
        else:
            audience = {"rooms": [receipt.room_id]}
        await self.node.write_with_stream_id(
            lambda stream_id: store.set_receipt(receipt, stream_id), **audience)
        if receipt.receipt_type == READ:
            data: dict[str, object] = {"ts": receipt.ts}
            if receipt.thread_id:
                data["thread_id"] = receipt.thread_id
            await federate_edu(
                self.node, receipt.room_id, "m.receipt",
                {receipt.room_id: {READ: {receipt.user_id: {"event_ids": [receipt.event_id],
                                                            "data": data}}}},
                key=f"{receipt.room_id}|{receipt.user_id}")

    async def _set_fully_read(self, room_id: str, user_id: str, event_id: str) -> None:
        store = self.node.stores.account_data
        content = {"event_id": event_id}
        if await store.get_account_data(user_id, room_id, FULLY_READ) == content:
            return
        await self.node.write_with_stream_id(
            lambda stream_id: store.set_account_data(
                user_id, room_id, FULLY_READ, content, stream_id),
            users=[user_id])
