"""What travels between servers is sealed at rest too, on both engines: undelivered data in
the outbound federation queue (PDUs, and EDUs such as a to-device message) and the invites and
knocks other servers send (the event and the room's stripped state) hold no clear text in
their rows and come back whole."""

from __future__ import annotations

from storage.at_rest import AtRest, DataKey
from storage.database import Database
from storage.federation_queue import FederationQueueStore, NewEdu, NewPdu
from storage.remote_invites import RemoteInvite, RemoteInviteStore
from storage.remote_knocks import RemoteKnock, RemoteKnockStore
from tests.at_rest_helpers import MARKER, holding
from tests.storage_helpers import result_of

STATE = [{"type": "m.room.name", "state_key": "", "content": {"name": MARKER}}]
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


def invite_and_knock(database: Database) -> tuple[RemoteInvite, RemoteKnock]:
    database.at_rest = AtRest([DataKey.generate()])
    invite = RemoteInvite("@alice:a.example", "!r:b.example", "$i", "12", PDU, STATE, 7)
    knock = RemoteKnock("@alice:a.example", "!k:b.example", "$k", "12", "b.example", PDU,
                        STATE, 8)
    result_of(RemoteInviteStore(database).add_invite(invite))
    result_of(RemoteKnockStore(database).add_knock(knock))
    return invite, knock


def test_invites_and_knocks_from_other_servers_hold_no_clear_text(database: Database) -> None:
    invite_and_knock(database)
    for table, columns in (("remote_invites", ("event_json", "invite_state")),
                           ("remote_knocks", ("event_json", "knock_state"))):
        for column in columns:
            assert holding(raw(database, table, column)) == [], (table, column)


def test_invites_and_knocks_from_other_servers_read_back_whole(database: Database) -> None:
    invite, knock = invite_and_knock(database)
    assert result_of(RemoteInviteStore(database).get_invite(invite.user_id,
                                                            invite.room_id)) == invite
    assert result_of(RemoteKnockStore(database).get_knock(knock.user_id, knock.room_id)) == knock
