"""AccountDataStore on both engines: global and per-room entries, change ranges, room tags."""

from __future__ import annotations

from storage.account_data import AccountDataStore
from storage.database import Database
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"


def test_unset_account_data_is_none(database: Database) -> None:
    store = AccountDataStore(database)
    assert result_of(store.get_account_data(ALICE, "", "org.example.x")) is None


def test_set_then_get_global_and_room_entries(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "m.direct", {"@b:x": ["!r:x"]}, 1))
    result_of(store.set_account_data(ALICE, ROOM, "org.example.x", {"v": 1}, 2))
    assert result_of(store.get_account_data(ALICE, "", "m.direct")) == {"@b:x": ["!r:x"]}
    assert result_of(store.get_account_data(ALICE, ROOM, "org.example.x")) == {"v": 1}
    assert result_of(store.get_global_account_data(ALICE)) == {"m.direct": {"@b:x": ["!r:x"]}}
    assert result_of(store.get_room_account_data(ALICE)) == {ROOM: {"org.example.x": {"v": 1}}}


def test_global_and_room_entries_of_same_type_are_separate(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "t", {"scope": "global"}, 1))
    result_of(store.set_account_data(ALICE, ROOM, "t", {"scope": "room"}, 2))
    assert result_of(store.get_account_data(ALICE, "", "t")) == {"scope": "global"}
    assert result_of(store.get_account_data(ALICE, ROOM, "t")) == {"scope": "room"}


def test_entries_are_private_to_their_user(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "t", {"a": 1}, 1))
    assert result_of(store.get_global_account_data(BOB)) == {}
    assert result_of(store.get_account_data(BOB, "", "t")) is None


def test_overwrite_replaces_content(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "t", {"a": 1}, 1))
    result_of(store.set_account_data(ALICE, "", "t", {"b": 2}, 5))
    assert result_of(store.get_account_data(ALICE, "", "t")) == {"b": 2}


def test_changes_are_limited_to_the_stream_range(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "old", {"n": 1}, 3))
    result_of(store.set_account_data(ALICE, "", "new", {"n": 2}, 7))
    result_of(store.set_account_data(ALICE, ROOM, "r", {"n": 3}, 8))
    result_of(store.set_account_data(ALICE, "", "future", {"n": 4}, 12))
    result_of(store.set_account_data(BOB, "", "other", {"n": 5}, 6))
    global_changes, room_changes = result_of(store.get_account_data_changes(ALICE, 3, 10))
    assert global_changes == {"new": {"n": 2}}
    assert room_changes == {ROOM: {"r": {"n": 3}}}


def test_rewritten_entry_shows_up_as_a_change_again(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "t", {"v": 1}, 2))
    assert result_of(store.get_account_data_changes(ALICE, 2, 9)) == ({}, {})
    result_of(store.set_account_data(ALICE, "", "t", {"v": 2}, 9))
    assert result_of(store.get_account_data_changes(ALICE, 2, 9)) == ({"t": {"v": 2}}, {})


def test_unicode_content_round_trips(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_account_data(ALICE, "", "t", {"name": "नमस्ते 🙂"}, 1))
    assert result_of(store.get_account_data(ALICE, "", "t")) == {"name": "नमस्ते 🙂"}


def test_room_tags_start_empty(database: Database) -> None:
    assert result_of(AccountDataStore(database).get_room_tags(ALICE, ROOM)) == {}


def test_set_room_tags_builds_the_m_tag_entry(database: Database) -> None:
    store = AccountDataStore(database)
    assert result_of(store.set_room_tag(ALICE, ROOM, "m.favourite", {"order": 0.2}, 1))
    assert result_of(store.set_room_tag(ALICE, ROOM, "u.work", {}, 2))
    assert result_of(store.get_room_tags(ALICE, ROOM)) == {
        "m.favourite": {"order": 0.2}, "u.work": {}}
    assert result_of(store.get_account_data(ALICE, ROOM, "m.tag")) == {
        "tags": {"m.favourite": {"order": 0.2}, "u.work": {}}}
    assert result_of(store.get_account_data_changes(ALICE, 1, 2))[1] == {
        ROOM: {"m.tag": {"tags": {"m.favourite": {"order": 0.2}, "u.work": {}}}}}


def test_setting_a_tag_again_replaces_its_content(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_room_tag(ALICE, ROOM, "m.favourite", {"order": 0.2}, 1))
    result_of(store.set_room_tag(ALICE, ROOM, "m.favourite", {"order": 0.9}, 2))
    assert result_of(store.get_room_tags(ALICE, ROOM)) == {"m.favourite": {"order": 0.9}}


def test_remove_room_tag(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_room_tag(ALICE, ROOM, "a", {}, 1))
    result_of(store.set_room_tag(ALICE, ROOM, "b", {}, 2))
    assert result_of(store.remove_room_tag(ALICE, ROOM, "a", 3)) is True
    assert result_of(store.get_room_tags(ALICE, ROOM)) == {"b": {}}
    assert result_of(store.get_account_data_changes(ALICE, 2, 3))[1] == {
        ROOM: {"m.tag": {"tags": {"b": {}}}}}


def test_removing_an_absent_tag_writes_nothing(database: Database) -> None:
    store = AccountDataStore(database)
    result_of(store.set_room_tag(ALICE, ROOM, "a", {}, 1))
    assert result_of(store.remove_room_tag(ALICE, ROOM, "nope", 2)) is False
    assert result_of(store.get_account_data_changes(ALICE, 1, 2)) == ({}, {})
