"""``PUT /_matrix/federation/v1/send/{txnId}``: PDUs and EDUs pushed to us by other servers
(received by :class:`broker.services.federation_transactions.TransactionReceiver`)."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from broker.errors import MalformedContent
from broker.federation_api import FED_V1
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.services.federation_transactions import MAX_EDUS, MAX_PDUS, TransactionReceiver


class Transaction(Body):
    origin: str | None = None
    pdus: list[Any] = []
    edus: list[Any] = []

    @model_validator(mode="after")
    def _within_limits(self) -> Transaction:
        if len(self.pdus) > MAX_PDUS or len(self.edus) > MAX_EDUS:
            raise MalformedContent(
                f"A transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
        return self


class TransactionEndpoints(Endpoints):
    def __init__(self, receiver: TransactionReceiver) -> None:
        self.receiver = receiver

    @endpoint("PUT", f"{FED_V1}/send/(?P<txn_id>[^/]+)", access=Access.SERVER, body=Transaction)
    async def send_transaction(self, call: Call, txn_id: str, body: Transaction
                               ) -> tuple[int, dict[str, Any]]:
        if body.origin is not None and body.origin != call.server:
            raise MatrixError(400, "M_BAD_JSON", "Transaction origin does not match the sender")
        return 200, await self.receiver.receive(call.server, txn_id, body.pdus, body.edus)
