"""Undelivered data waiting for another server is sealed at rest too, on both engines: the
outbound federation queue's PDUs and EDUs (a to-device message, say) hold no clear text in
their rows and come back whole for delivery."""

from __future__ import annotations

from storage.at_rest import AtRest, DataKey
from storage.database import Database
from storage.federation_queue import FederationQueueStore, NewEdu, NewPdu
from tests.at_rest_helpers import MARKER, holding
from tests.storage_helpers import result_of

PDU = {"type": "m.room.message", "content": {"body": MARKER}, "depth": 3}
EDU = {"messages": {"@bob:b.example": {"DEV": {"text": MARKER}}}}


def queue(database: Database) -> FederationQueueStore:
    database.at_rest = AtRest([DataKey.generate()])
    store = FederationQueueStore(database)
    result_of(store.enqueue([NewPdu("b.example", "$1", PDU)],
                            [NewEdu("b.example", "m.direct_to_device", EDU, None)]))
    return store


def raw(database: Database, table: str, column: str) -> list[str]:
    return [str(row[0]) for row in result_of(database.run_interaction(
        "test_raw", lambda cur: cur.select_all(f"SELECT {column} FROM {table}")))]


def test_queued_pdus_and_edus_hold_no_clear_text(database: Database) -> None:
    queue(database)
    assert holding(raw(database, "federation_outbound_pdus", "pdu_json")) == []
    assert holding(raw(database, "federation_outbound_edus", "content_json")) == []


def test_queued_pdus_and_edus_come_back_whole_for_delivery(database: Database) -> None:
    batch = result_of(queue(database).get_batch("b.example"))
    assert [p.pdu for p in batch.pdus] == [PDU]
    assert [e.content for e in batch.edus] == [EDU]
