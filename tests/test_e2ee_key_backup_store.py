"""KeyBackupStore on both engines: versions (current = newest live), the spec's rule for
replacing a stored session key, etags and counts, deletion."""

from __future__ import annotations

from typing import Any

import pytest

from storage.database import Database
from storage.key_backup import (
    KeyBackupStore,
    KeysUpdated,
    NoBackup,
    RoomKey,
    WrongVersion,
    should_replace,
)
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:example.org"


def _key(session: str = "s1", *, index: int = 0, forwarded: int = 0, verified: bool = False,
         data: str = "c", room: str = ROOM) -> RoomKey:
    return RoomKey(room, session, index, forwarded, verified, {"ciphertext": data})


def _keys(store: KeyBackupStore, version: str, *where: str) -> list[RoomKey]:
    keys = result_of(store.get_keys(ALICE, version, *where))
    assert keys is not None
    return keys


def _backup(database: Database, user: str = ALICE) -> tuple[KeyBackupStore, str]:
    store = KeyBackupStore(database)
    return store, result_of(store.create_version(user, ALGORITHM, {"public_key": "pk"}))


def test_versions_count_up_per_user(database: Database) -> None:
    store = KeyBackupStore(database)
    assert result_of(store.create_version(ALICE, ALGORITHM, {})) == "1"
    assert result_of(store.create_version(ALICE, ALGORITHM, {})) == "2"
    assert result_of(store.create_version(BOB, ALGORITHM, {})) == "1"


def test_current_version_is_the_newest(database: Database) -> None:
    store, _ = _backup(database)
    result_of(store.create_version(ALICE, ALGORITHM, {"public_key": "second"}))
    current = result_of(store.get_version(ALICE))
    assert current is not None
    assert current.to_json() == {"version": "2", "algorithm": ALGORITHM,
                                 "auth_data": {"public_key": "second"}, "etag": "0", "count": 0}


def test_no_backup_means_no_current_version(database: Database) -> None:
    assert result_of(KeyBackupStore(database).get_version(ALICE)) is None


def test_deleting_the_newest_makes_the_previous_current(database: Database) -> None:
    store, first = _backup(database)
    second = result_of(store.create_version(ALICE, ALGORITHM, {}))
    assert result_of(store.delete_version(ALICE, second)) is True
    current = result_of(store.get_version(ALICE))
    assert current is not None and current.version == first


def test_deleted_version_numbers_are_not_reused(database: Database) -> None:
    store, first = _backup(database)
    result_of(store.delete_version(ALICE, first))
    assert result_of(store.create_version(ALICE, ALGORITHM, {})) == "2"


def test_deleting_twice_succeeds_but_unknown_versions_fail(database: Database) -> None:
    store, version = _backup(database)
    assert result_of(store.delete_version(ALICE, version)) is True
    assert result_of(store.delete_version(ALICE, version)) is True
    assert result_of(store.delete_version(ALICE, "7")) is False
    assert result_of(store.delete_version(ALICE, "x")) is False


def test_deleting_a_version_deletes_its_keys(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key()]))
    result_of(store.delete_version(ALICE, version))
    assert database.run_sync("count", lambda cur: cur.select_value(
        "SELECT COUNT(*) FROM room_key_backup_keys")) == 0


def test_version_strings_are_exact(database: Database) -> None:
    store, _ = _backup(database)
    assert result_of(store.get_version(ALICE, "01")) is None
    assert result_of(store.get_version(ALICE, "1")) is not None


@pytest.mark.parametrize("version", ["9" * 30, "9" * 5000, str(2**63), "\u00b2", "\u0661"])
def test_a_version_that_is_no_number_handed_out_is_unknown(database: Database,
                                                            version: str) -> None:
    store, _ = _backup(database)
    assert result_of(store.get_version(ALICE, version)) is None
    assert result_of(store.get_keys(ALICE, version)) is None
    assert result_of(store.delete_version(ALICE, version)) is False


def test_update_replaces_auth_data(database: Database) -> None:
    store, version = _backup(database)
    assert result_of(store.update_auth_data(ALICE, version, {"public_key": "new"})) is True
    info = result_of(store.get_version(ALICE, version))
    assert info is not None and info.auth_data == {"public_key": "new"}
    assert result_of(store.update_auth_data(ALICE, "9", {})) is False


def test_put_keys_reports_etag_and_count(database: Database) -> None:
    store, version = _backup(database)
    result = result_of(store.put_keys(ALICE, version, [_key("s1"), _key("s2")]))
    assert result == KeysUpdated(etag="1", count=2)
    assert [k.session_id for k in _keys(store, version)] == ["s1", "s2"]


def test_put_keys_without_backup_is_refused(database: Database) -> None:
    assert result_of(KeyBackupStore(database).put_keys(ALICE, "1", [_key()])) == NoBackup()


def test_put_keys_into_an_old_version_names_the_current_one(database: Database) -> None:
    store, old = _backup(database)
    result_of(store.create_version(ALICE, ALGORITHM, {}))
    assert result_of(store.put_keys(ALICE, old, [_key()])) == WrongVersion(current="2")


def test_a_key_that_loses_the_comparison_leaves_the_etag(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key(index=0, data="first")]))
    result = result_of(store.put_keys(ALICE, version, [_key(index=5, data="worse")]))
    assert result == KeysUpdated(etag="1", count=1)
    kept = _keys(store, version, ROOM, "s1")
    assert kept[0].session_data == {"ciphertext": "first"}


def test_a_key_that_wins_the_comparison_replaces_the_stored_one(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key(index=5, data="first")]))
    result = result_of(store.put_keys(ALICE, version, [_key(index=0, data="better")]))
    assert result == KeysUpdated(etag="2", count=1)
    kept = _keys(store, version, ROOM, "s1")
    assert kept[0].session_data == {"ciphertext": "better"}


@pytest.mark.parametrize("existing, new, replace", [
    ({"verified": False, "index": 0}, {"verified": True, "index": 9}, True),
    ({"verified": True, "index": 9}, {"verified": False, "index": 0}, False),
    ({"index": 3}, {"index": 2, "forwarded": 5}, True),
    ({"index": 2, "forwarded": 0}, {"index": 3}, False),
    ({"forwarded": 2}, {"forwarded": 1}, True),
    ({"forwarded": 1}, {"forwarded": 2}, False),
    ({}, {"data": "different"}, False),
])
def test_replacement_rule(existing: dict[str, Any], new: dict[str, Any], replace: bool) -> None:
    assert should_replace(_key(**existing), _key(**new)) is replace


def test_get_keys_of_one_room(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key("s1"), _key("s2", room="!other:x")]))
    keys = _keys(store, version, ROOM)
    assert [(k.room_id, k.session_id) for k in keys] == [(ROOM, "s1")]


def test_get_keys_of_a_deleted_version_is_none(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.delete_version(ALICE, version))
    assert result_of(store.get_keys(ALICE, version)) is None


def test_keys_belong_to_their_user(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key()]))
    _, bob_version = _backup(database, BOB)
    assert result_of(store.get_keys(BOB, bob_version)) == []


def test_delete_keys_of_one_session(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key("s1"), _key("s2")]))
    result = result_of(store.delete_keys(ALICE, version, ROOM, "s1"))
    assert result == KeysUpdated(etag="2", count=1)


def test_deleting_nothing_leaves_the_etag(database: Database) -> None:
    store, version = _backup(database)
    result_of(store.put_keys(ALICE, version, [_key()]))
    assert result_of(store.delete_keys(ALICE, version, "!none:x")) == KeysUpdated("1", 1)


def test_delete_keys_of_unknown_version_is_none(database: Database) -> None:
    store, _ = _backup(database)
    assert result_of(store.delete_keys(ALICE, "5")) is None
