"""``PUT /_matrix/federation/v1/send/{txnId}``: PDUs and EDUs pushed to us by other servers.

Each PDU is checked (shape, signatures, content hash) and handed to the room logic; its result is
reported per event.  EDUs: typing and read receipts of the sender's users in rooms we share,
device-list and cross-signing key updates, and to-device messages (handled in broker.e2ee).
A transaction replayed with the same ID gets the first answer again and is not re-applied.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.web.http import Request

from broker.e2ee import to_device
from broker.federation_api import FED_V1
from broker.federation_api.authentication import authenticate
from broker.http.errors import MatrixError
from broker.http.parsing import parse_json_body
from broker.rooms.remote_events import RemoteEventRejected
from protocol.pdu_checks import PduRejected, check_pdu, event_id_if_computable
from protocol.signing import server_name_of
from storage.receipts import READ, UNTHREADED, Receipt

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
REMEMBERED_TRANSACTIONS = 2000


class TransactionReceiver:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._seen: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    async def receive(self, origin: str, txn_id: str, body: dict[str, Any]) -> dict[str, Any]:
        key = (origin, txn_id)
        if key in self._seen:
            return self._seen[key]
        pdus = body.get("pdus", [])
        edus = body.get("edus", [])
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise MatrixError(400, "M_BAD_JSON", "'pdus' and 'edus' must be arrays")
        if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
            raise MatrixError(400, "M_BAD_JSON",
                              f"A transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
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
        for edu in edus:
            try:
                await self._receive_edu(origin, edu)
            except Exception:
                logger.exception("EDU from %s failed", origin)
        response = {"pdus": results}
        self._seen[key] = response
        while len(self._seen) > REMEMBERED_TRANSACTIONS:
            self._seen.popitem(last=False)
        sender = getattr(self.node, "federation_sender", None)
        if sender is not None:
            sender.wake_destination(origin)
        return response

    async def _known_ids(self, pdus: list[Any]) -> set[str]:
        """Which of the PDUs we already hold, in one query (by the IDs they will have)."""
        ids = []
        for pdu in pdus:
            room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
            room = self.node.rooms.registry.cached(room_id) if isinstance(room_id, str) else None
            event_id = (event_id_if_computable(pdu, room.room_version) if room is not None
                        else None)
            if event_id is not None:
                ids.append(event_id)
        return await self.node.stores.state.known_event_ids(ids) if ids else set()

    async def _receive_pdu(self, origin: str, pdu: Any, known: set[str]
                           ) -> tuple[str | None, str | None, defer.Deferred[None] | None]:
        room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
        if not isinstance(room_id, str):
            return None, None, None
        room = await self.node.rooms.registry.get(room_id)
        if room is None:
            logger.info("PDU from %s for unknown room %s dropped", origin, room_id)
            return None, None, None
        try:
            event = await check_pdu(self.node.keyring, pdu, room.room_version)
        except PduRejected as e:
            logger.info("PDU from %s refused: %s", origin, e)
            return e.event_id, str(e), None
        sender_server = server_name_of(event.sender)
        if sender_server != self.node.server_name and \
                not self.node.federation_policy.is_allowed(sender_server):
            self.node.federation_policy.record_refusal("inbound", sender_server)
            return event.event_id, f"events from {sender_server} are not allowed here", None
        try:
            written = await self.node.remote_events.on_pdu(
                origin, event, known=event.event_id in known)
        except RemoteEventRejected as e:
            logger.info("PDU %s from %s rejected: %s", event.event_id, origin, e)
            return event.event_id, str(e), None
        except Exception:
            logger.exception("PDU %s from %s could not be processed", event.event_id, origin)
            return event.event_id, "internal error while processing the event", None
        return event.event_id, None, written

    async def _receive_edu(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("content"), dict):
            return
        content = edu["content"]
        if edu.get("edu_type") == "m.typing":
            await self._typing(origin, content)
        elif edu.get("edu_type") == "m.receipt":
            await self._receipts(origin, content)
        elif edu.get("edu_type") == "m.device_list_update":
            from broker.e2ee.device_lists import on_device_list_update_edu

            await on_device_list_update_edu(self.node, origin, content)
        elif edu.get("edu_type") == to_device.EDU_TYPE:
            await to_device.on_direct_to_device_edu(self.node, origin, content)
        elif edu.get("edu_type") == "m.signing_key_update":
            from broker.e2ee.cross_signing import on_signing_key_update

            await on_signing_key_update(self.node, origin, content)

    async def _member_of(self, origin: str, room_id: Any, user_id: Any) -> bool:
        if not isinstance(room_id, str) or not isinstance(user_id, str):
            return False
        if server_name_of(user_id) != origin:
            return False
        room = await self.node.rooms.registry.get(room_id)
        return room is not None and room.membership_of(user_id) == "join"

    async def _typing(self, origin: str, content: dict[str, Any]) -> None:
        room_id, user_id = content.get("room_id"), content.get("user_id")
        if not await self._member_of(origin, room_id, user_id):
            return
        timeout = content.get("timeout", 30000)
        self.node.typing.set_typing(str(room_id), str(user_id), bool(content.get("typing")),
                                    timeout if isinstance(timeout, int) else 30000)

    async def _receipts(self, origin: str, content: dict[str, Any]) -> None:
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict):
                continue
            for user_id, receipt in (by_type.get(READ) or {}).items():
                if not await self._member_of(origin, room_id, user_id):
                    continue
                event_ids = receipt.get("event_ids") if isinstance(receipt, dict) else None
                if not isinstance(event_ids, list) or not event_ids:
                    continue
                data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
                thread = data.get("thread_id") if isinstance(data.get("thread_id"), str) else None
                record = Receipt(room_id=room_id, receipt_type=READ, user_id=user_id,
                                 event_id=str(event_ids[0]), thread_id=thread or UNTHREADED,
                                 ts=int(data.get("ts", self.node.clock.time_ms())))
                await self._store_receipt(record)


    async def _store_receipt(self, record: Receipt) -> None:
        store = self.node.stores.receipts

        def write(stream_id: int) -> Any:
            return store.set_receipt(record, stream_id)

        await self.node.write_with_stream_id(write, rooms=[record.room_id])


def register_servlets(node: Node, router: Router) -> None:
    receiver = TransactionReceiver(node)

    async def send_transaction(request: Request, txn_id: str) -> tuple[int, dict[str, Any]]:
        origin = await authenticate(node, request)
        body = parse_json_body(request)
        if body.get("origin", origin) != origin:
            raise MatrixError(400, "M_BAD_JSON", "Transaction origin does not match the sender")
        return 200, await receiver.receive(origin, txn_id, body)

    router.register("PUT", f"{FED_V1}/send/(?P<txn_id>[^/]+)", send_transaction)
