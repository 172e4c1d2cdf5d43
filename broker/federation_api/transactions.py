"""``PUT /_matrix/federation/v1/send/{txnId}``: PDUs and EDUs pushed to us by other servers
(received by :class:`broker.services.federation_transactions.TransactionReceiver`)."""

from __future__ import annotations

from typing import Any

from broker.federation_api import FED_V1
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.services.federation_transactions import TransactionReceiver


class TransactionEndpoints(Endpoints):
    def __init__(self, receiver: TransactionReceiver) -> None:
        self.receiver = receiver

    @endpoint("PUT", f"{FED_V1}/send/(?P<txn_id>[^/]+)", access=Access.SERVER)
    async def send_transaction(self, call: Call, txn_id: str) -> tuple[int, dict[str, Any]]:
        body = call.json()
        if body.get("origin", call.server) != call.server:
            raise MatrixError(400, "M_BAD_JSON", "Transaction origin does not match the sender")
        return 200, await self.receiver.receive(call.server, txn_id, body)
