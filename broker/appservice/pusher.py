"""Everything pushed to application services: one :class:`ServiceQueue` per service with a
URL, woken after events are persisted (never on the send path: the queues read the event log
on their own turn), and handed the ephemeral data and to-device messages of their rooms and
users as they happen (memory only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from broker.appservice.interest import Interest
from broker.appservice.queue import ServiceQueue
from broker.appservice.registration import Registration
from storage.events import PersistItem
from storage.receipts import Receipt

if TYPE_CHECKING:
    from broker.services.federation_transactions import EphemeralUpdates

JsonDict = dict[str, Any]


class AppServicePusher:
    def __init__(self, queues: Sequence[ServiceQueue], interest: Interest) -> None:
        self.queues = tuple(queues)
        self.interest = interest

    async def start(self) -> None:
        for queue in self.queues:
            await queue.start()

    def stop(self) -> None:
        for queue in self.queues:
            queue.stop()

    def events_persisted(self, items: list[PersistItem]) -> None:
        """New events are durable: each queue keeps them and picks what concerns it on its
        own turn."""
        for queue in self.queues:
            queue.events_written(items)
            queue.wake()

    # -- ephemeral data (MSC2409) ------------------------------------------------------------
    def typing_changed(self, room_id: str, user_ids: list[str]) -> None:
        self._to_rooms(room_id, {"type": "m.typing", "room_id": room_id,
                                 "content": {"user_ids": user_ids}})

    def watch_federation(self, edus: EphemeralUpdates) -> None:
        """Receipts of other servers' users reach the services too (when there are any)."""
        if self.queues:
            edus.receipt_listeners.append(self.receipt_set)

    def receipt_set(self, receipt: Receipt) -> None:
        data: JsonDict = {"ts": receipt.ts}
        if receipt.thread_id:
            data["thread_id"] = receipt.thread_id
        self._to_rooms(receipt.room_id, {
            "type": "m.receipt", "room_id": receipt.room_id,
            "content": {receipt.event_id: {receipt.receipt_type: {receipt.user_id: data}}}})

    def _to_rooms(self, room_id: str, edu: JsonDict) -> None:
        wanting = [q for q in self.queues if q.service.receive_ephemeral]
        if wanting:
            d = defer.ensureDeferred(self._hand_ephemeral(wanting, room_id, edu))
            d.addErrback(lambda f: None)  # a room that cannot be read concerns nobody

    async def _hand_ephemeral(self, queues: list[ServiceQueue], room_id: str,
                              edu: JsonDict) -> None:
        for queue in queues:
            if await self.interest.wants_room(queue.service, room_id):
                queue.add_ephemeral(edu)

    # -- to-device messages (MSC4203) --------------------------------------------------------
    def to_device_delivered(self, sender: str, event_type: str,
                            messages: Mapping[str, Mapping[str, JsonDict]],
                            devices: Mapping[str, list[str]]) -> None:
        """Messages delivered to local users: those of a service's users go to it too
        (a ``*`` device is each device it reached)."""
        for queue in self.queues:
            if not queue.service.receive_to_device:
                continue
            for user_id, by_device in messages.items():
                if not queue.service.in_user_namespace(user_id):
                    continue
                for device_id, content in by_device.items():
                    targets = devices.get(user_id, []) if device_id == "*" else [device_id]
                    for target in targets:
                        queue.add_to_device({"type": event_type, "sender": sender,
                                             "content": content, "to_user_id": user_id,
                                             "to_device_id": target})

    async def status(self) -> list[JsonDict]:
        """Each service's delivery, for admins: its state, its backlog (the events after
        its position, whether they concern it or not, and what memory holds for it), the
        last success and the last error."""
        answers = []
        for queue in self.queues:
            health = queue.health
            token = queue.stream_token()
            backlog = await queue.store.count_events_after(queue.position, token) \
                if queue.position < token else 0
            answers.append({
                "id": queue.service.id, "url": queue.service.url, "state": health.state,
                "stream_position": queue.position, "last_txn_id": queue.last_txn_id,
                "backlog": {"events": backlog, "ephemeral": len(queue.ephemeral),
                            "to_device": len(queue.to_device)},
                "dropped": dict(health.dropped), "transactions": health.transactions,
                "events_sent": health.events_sent, "failures_in_a_row": health.failures_in_a_row,
                "failed_attempts": health.failed_attempts,
                "last_success_ts": health.last_success_ts, "last_error": health.last_error,
                "last_error_ts": health.last_error_ts,
                "next_attempt_ts": health.next_attempt_ts})
        return answers

    def health(self) -> list[tuple[Registration, ServiceQueue]]:
        """Each service and its queue (what the metrics read)."""
        return [(q.service, q) for q in self.queues]
