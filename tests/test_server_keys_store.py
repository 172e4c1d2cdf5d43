"""ServerKeyStore on both engines: fetched keys of other servers and their signed responses."""

from __future__ import annotations

from storage.database import Database
from storage.server_keys import ServerKeyStore
from tests.storage_helpers import result_of

SERVER = "remote.example"
RESPONSE = {"server_name": SERVER, "valid_until_ts": 5000, "signatures": {SERVER: {"k": "s"}}}


def store_response(store: ServerKeyStore, *, valid_until: int = 5000, key: str = "KEYA",
                   old: dict[str, tuple[str, int]] | None = None,
                   current: dict[str, str] | None = None, from_server: str = SERVER,
                   raw: dict | None = None) -> None:
    result_of(store.store_server_keys(
        SERVER,
        verify_keys=current if current is not None else {"ed25519:a": key},
        old_verify_keys=old or {},
        valid_until_ts=valid_until,
        fetched_ts=100,
        from_server=from_server,
        key_json=raw or dict(RESPONSE, valid_until_ts=valid_until),
    ))


def test_stored_key_reads_back_with_its_response(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store)
    row = result_of(store.get_server_key(SERVER, "ed25519:a"))
    assert row is not None
    assert (row.verify_key, row.valid_until_ts, row.expired_ts, row.fetched_ts, row.from_server) \
        == ("KEYA", 5000, None, 100, SERVER)
    assert row.key_json == RESPONSE


def test_old_keys_are_stored_with_their_expired_ts(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store, old={"ed25519:old": ("KEYO", 1234)})
    row = result_of(store.get_server_key(SERVER, "ed25519:old"))
    assert row is not None and (row.verify_key, row.expired_ts) == ("KEYO", 1234)


def test_unknown_key_is_none(database: Database) -> None:
    assert result_of(ServerKeyStore(database).get_server_key(SERVER, "ed25519:x")) is None


def test_newer_response_replaces_a_key(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store, valid_until=5000)
    store_response(store, valid_until=9000, key="KEYB", from_server="notary.example")
    row = result_of(store.get_server_key(SERVER, "ed25519:a"))
    assert row is not None
    assert (row.verify_key, row.valid_until_ts, row.from_server) == ("KEYB", 9000, "notary.example")


def test_older_response_does_not_replace_a_fresher_key(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store, valid_until=9000)
    store_response(store, valid_until=5000, key="STALE")
    row = result_of(store.get_server_key(SERVER, "ed25519:a"))
    assert row is not None and (row.verify_key, row.valid_until_ts) == ("KEYA", 9000)


def test_key_retired_in_a_newer_response_becomes_old(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store, valid_until=5000)
    store_response(store, valid_until=9000, current={"ed25519:b": "KEYB"},
                   old={"ed25519:a": ("KEYA", 6000)})
    row = result_of(store.get_server_key(SERVER, "ed25519:a"))
    assert row is not None and (row.expired_ts, row.valid_until_ts) == (6000, 9000)


def test_get_server_keys_lists_only_that_servers_keys(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store, current={"ed25519:a": "KEYA", "ed25519:b": "KEYB"})
    result_of(store.store_server_keys(
        "other.example", verify_keys={"ed25519:z": "KEYZ"}, old_verify_keys={},
        valid_until_ts=1, fetched_ts=1, from_server="other.example", key_json={}))
    rows = result_of(store.get_server_keys(SERVER))
    assert [r.key_id for r in rows] == ["ed25519:a", "ed25519:b"]


def test_delete_server_keys_forgets_the_server(database: Database) -> None:
    store = ServerKeyStore(database)
    store_response(store, current={"ed25519:a": "KEYA", "ed25519:b": "KEYB"})
    assert result_of(store.delete_server_keys(SERVER)) == 2
    assert result_of(store.get_server_keys(SERVER)) == []


def test_non_ascii_response_round_trips(database: Database) -> None:
    store = ServerKeyStore(database)
    raw = dict(RESPONSE, note="clé ✓")
    store_response(store, raw=raw)
    row = result_of(store.get_server_key(SERVER, "ed25519:a"))
    assert row is not None and row.key_json == raw
