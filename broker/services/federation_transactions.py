"""Transactions other servers push to us: PDUs and EDUs.

Each PDU is checked (shape, signatures, content hash) and handed to the room logic; its result
is reported per event.  EDUs: typing and read receipts of the sender's users in rooms we share
are handled here; the other kinds (device-list and cross-signing key updates, to-device
messages) by the handlers the composition root gives (``edu_handlers``, by EDU type).
A transaction replayed with the same ID gets the first answer again and is not re-applied.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from twisted.internet import defer

from broker.rooms.live_room import RoomRegistry
from broker.rooms.remote_events import RemoteEventRejected, RemoteEvents
from broker.services.federation_knocks import KnockAnswers
from broker.streams import StreamWriter
from broker.typing_tracker import TypingTracker
from protocol.pdu_checks import PduRejected, check_pdu, event_id_if_computable
from protocol.signing import server_name_of
from storage.receipts import READ, UNTHREADED, Receipt, ReceiptStore
from storage.state import StateStore

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
REMEMBERED_TRANSACTIONS = 2000

# Handles one EDU's content from an origin server.
EduHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
PduResult = tuple[str | None, str | None, "defer.Deferred[None] | None"]


class TransactionReceiver:
    def __init__(self, server_name: str, registry: RoomRegistry, state_store: StateStore,
                 keyring: Any, policy: Any, remote_events: RemoteEvents, sender: Any,
                 edus: EphemeralUpdates, knock_answers: KnockAnswers) -> None:
        self.server_name = server_name
        self.registry = registry
        self.state_store = state_store
        self.keyring = keyring
        self.policy = policy  # FederationPolicy
        self.remote_events = remote_events
        self.sender = sender  # FederationSender
        self.edus = edus
        self.knock_answers = knock_answers  # a refused knock on a room not held here
        self._seen: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        # Told each new transaction: its origin, how many PDUs and EDUs it carries.
        self.on_received: Callable[[str, int, int], None] | None = None

    async def receive(self, origin: str, txn_id: str, pdus: list[Any], edus: list[Any]
                      ) -> dict[str, Any]:
        """Take in one transaction (at most :data:`MAX_PDUS` PDUs and :data:`MAX_EDUS` EDUs,
        as the endpoint's body type checks)."""
        key = (origin, txn_id)
        if key in self._seen:
            return self._seen[key]
        if self.on_received is not None:  # a transaction sent again is not counted again
            self.on_received(origin, len(pdus), len(edus))
        results = await self._receive_pdus(origin, pdus)
        for edu in edus:
            try:
                await self.edus.receive(origin, edu)
            except Exception:
                logger.exception("EDU from %s failed", origin)
        response = {"pdus": results}
        self._seen[key] = response
        while len(self._seen) > REMEMBERED_TRANSACTIONS:
            self._seen.popitem(last=False)
        self.sender.wake_destination(origin)
        return response

    async def _receive_pdus(self, origin: str, pdus: list[Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        known = await self._known_ids(pdus)
        durable: list[tuple[str, defer.Deferred[None]]] = []
        for pdu in pdus:
            event_id, error, written = await self._receive_pdu(origin, pdu, known)
            if event_id is not None:
                results[event_id] = {"error": error} if error else {}
            if event_id is not None and written is not None:
                durable.append((event_id, written))
        # Every accepted event is queued for writing; wait for all of them at once so their
        # writes share transactions, and report any that could not be written.
        for event_id, written in durable:
            try:
                await written
            except Exception as e:
                logger.error("writing %s from %s failed: %s", event_id, origin, e)
                results[event_id] = {"error": "the event could not be stored"}
        return results

    async def _known_ids(self, pdus: list[Any]) -> set[str]:
        """Which of the PDUs we already hold, in one query (by the IDs they will have)."""
        ids = []
        for pdu in pdus:
            room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
            room = self.registry.cached(room_id) if isinstance(room_id, str) else None
            event_id = (event_id_if_computable(pdu, room.room_version) if room is not None
                        else None)
            if event_id is not None:
                ids.append(event_id)
        return await self.state_store.known_event_ids(ids) if ids else set()

    async def _receive_pdu(self, origin: str, pdu: Any, known: set[str]) -> PduResult:
        room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
        if not isinstance(room_id, str):
            return None, None, None
        room = await self.registry.get(room_id)
        if room is None:
            if not await self.knock_answers.on_unknown_room(origin, pdu):
                logger.info("PDU from %s for unknown room %s dropped", origin, room_id)
            return None, None, None
        try:
            event = await check_pdu(self.keyring, pdu, room.room_version)
        except PduRejected as e:
            logger.info("PDU from %s refused: %s", origin, e)
            return e.event_id, str(e), None
        sender_server = server_name_of(event.sender)
        if sender_server != self.server_name and not self.policy.is_allowed(sender_server):
            self.policy.record_refusal("inbound", sender_server)
            return event.event_id, f"events from {sender_server} are not allowed here", None
        try:
            written = await self.remote_events.on_pdu(
                origin, event, known=event.event_id in known)
        except RemoteEventRejected as e:
            logger.info("PDU %s from %s rejected: %s", event.event_id, origin, e)
            return event.event_id, str(e), None
        except Exception:
            logger.exception("PDU %s from %s could not be processed", event.event_id, origin)
            return event.event_id, "internal error while processing the event", None
        return event.event_id, None, written


class EphemeralUpdates:
    """EDUs: typing and read receipts here, the other kinds by their handler."""

    def __init__(self, registry: RoomRegistry, typing: TypingTracker, receipts: ReceiptStore,
                 streams: StreamWriter, clock: Any,
                 handlers: Mapping[str, EduHandler]) -> None:
        self.registry = registry
        self.typing = typing
        self.receipts = receipts
        self.streams = streams
        self.clock = clock
        self.handlers = dict(handlers)
        # Told each receipt of another server's user once it is stored (application
        # messages' read status, application services' ephemeral events).
        self.receipt_listeners: list[Callable[[Receipt], None]] = []

    async def receive(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("content"), dict):
            return
        content, edu_type = edu["content"], edu.get("edu_type")
        if edu_type == "m.typing":
            await self._typing(origin, content)
        elif edu_type == "m.receipt":
            await self._receipts(origin, content)
        elif isinstance(edu_type, str) and edu_type in self.handlers:
            await self.handlers[edu_type](origin, content)

    async def _member_of(self, origin: str, room_id: Any, user_id: Any) -> bool:
        if not isinstance(room_id, str) or not isinstance(user_id, str):
            return False
        if server_name_of(user_id) != origin:
            return False
        room = await self.registry.get(room_id)
        return room is not None and room.membership_of(user_id) == "join"

    async def _typing(self, origin: str, content: dict[str, Any]) -> None:
        room_id, user_id = content.get("room_id"), content.get("user_id")
        if not await self._member_of(origin, room_id, user_id):
            return
        timeout = content.get("timeout", 30000)
        self.typing.set_typing(str(room_id), str(user_id), bool(content.get("typing")),
                               timeout if isinstance(timeout, int) else 30000)

    async def _receipts(self, origin: str, content: dict[str, Any]) -> None:
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict):
                continue
            for user_id, receipt in (by_type.get(READ) or {}).items():
                if await self._member_of(origin, room_id, user_id):
                    await self._receipt(room_id, user_id, receipt)

    async def _receipt(self, room_id: str, user_id: str, receipt: Any) -> None:
        event_ids = receipt.get("event_ids") if isinstance(receipt, dict) else None
        if not isinstance(event_ids, list) or not event_ids:
            return
        data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
        thread = data.get("thread_id") if isinstance(data.get("thread_id"), str) else None
        record = Receipt(room_id=room_id, receipt_type=READ, user_id=user_id,
                         event_id=str(event_ids[0]), thread_id=thread or UNTHREADED,
                         ts=int(data.get("ts", self.clock.time_ms())))
        await self.streams.write(lambda stream_id: self.receipts.set_receipt(record, stream_id),
                                 rooms=[room_id])
        for listener in self.receipt_listeners:
            listener(record)
