"""RemoteKnockStore on both engines: a user's knocks on rooms of other servers, one per room
(a knock again replaces the last), read back as kept, in stream order, until deleted."""

from __future__ import annotations

from storage.database import Database
from storage.remote_knocks import RemoteKnock, RemoteKnockStore
from tests.storage_helpers import result_of

PAT = "@pat:here.test"
ROOM = "!room:there.test"
OTHER_ROOM = "!other:there.test"


def _knock(room_id: str = ROOM, *, event_id: str = "$k1", stream_id: int = 5) -> RemoteKnock:
    return RemoteKnock(
        user_id=PAT, room_id=room_id, event_id=event_id, room_version="12",
        server="there.test", event={"type": "m.room.member", "content": {"membership": "knock"}},
        knock_state=[{"type": "m.room.name", "state_key": "", "content": {"name": "Door"},
                      "sender": "@ann:there.test"}],
        stream_id=stream_id)


def test_a_knock_reads_back_as_kept(database: Database) -> None:
    store = RemoteKnockStore(database)
    result_of(store.add_knock(_knock()))
    assert result_of(store.get_knock(PAT, ROOM)) == _knock()


def test_a_second_knock_on_the_same_room_replaces_the_first(database: Database) -> None:
    store = RemoteKnockStore(database)
    result_of(store.add_knock(_knock()))
    result_of(store.add_knock(_knock(event_id="$k2", stream_id=9)))
    assert result_of(store.get_knocks(PAT)) == [_knock(event_id="$k2", stream_id=9)]


def test_a_users_knocks_come_in_stream_order(database: Database) -> None:
    store = RemoteKnockStore(database)
    result_of(store.add_knock(_knock(OTHER_ROOM, stream_id=8)))
    result_of(store.add_knock(_knock(ROOM, stream_id=3)))
    assert [k.room_id for k in result_of(store.get_knocks(PAT))] == [ROOM, OTHER_ROOM]


def test_a_deleted_knock_is_gone(database: Database) -> None:
    store = RemoteKnockStore(database)
    result_of(store.add_knock(_knock()))
    result_of(store.delete_knock(PAT, ROOM))
    assert result_of(store.get_knock(PAT, ROOM)) is None
