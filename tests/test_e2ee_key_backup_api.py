"""Server-side key backups against a real node: versions, storing and reading keys at every
level, the replacement rule, etags and counts, and each error class."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
VERSION = f"{V3}/room_keys/version"
KEYS = f"{V3}/room_keys/keys"
ROOM = "!backup:example.org"


def _auth_data(public_key: str = "pk1") -> dict[str, Any]:
    return {"public_key": public_key, "signatures": {}}


def _create(client: Client, public_key: str = "pk1") -> str:
    body = client.post(VERSION, {"algorithm": ALGORITHM, "auth_data": _auth_data(public_key)})
    assert client.status == 200, body
    return str(body["version"])


def _key(index: int = 0, forwarded: int = 0, verified: bool = False,
         ciphertext: str = "c1") -> dict[str, Any]:
    return {"first_message_index": index, "forwarded_count": forwarded, "is_verified": verified,
            "session_data": {"ephemeral": "e", "ciphertext": ciphertext, "mac": "m"}}


def _session_path(room_id: str = ROOM, session_id: str = "s1") -> str:
    return f"{KEYS}/{quote(room_id)}/{quote(session_id)}"


def _put_session(client: Client, version: str, key: dict[str, Any], room_id: str = ROOM,
                 session_id: str = "s1") -> Any:
    return client.put(_session_path(room_id, session_id), key, params={"version": version})


def test_create_and_read_the_current_version(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    assert alice.get(VERSION) == {"version": version, "algorithm": ALGORITHM,
                                  "auth_data": _auth_data(), "etag": "0", "count": 0}


def test_newer_version_becomes_current(node: NodeProcess) -> None:
    alice = node.register()
    _create(alice, "old")
    newer = _create(alice, "new")
    body = alice.get(VERSION)
    assert (body["version"], body["auth_data"]["public_key"]) == (newer, "new")


def test_read_a_named_version(node: NodeProcess) -> None:
    alice = node.register()
    first = _create(alice, "old")
    _create(alice, "new")
    assert alice.get(f"{VERSION}/{first}")["auth_data"]["public_key"] == "old"


def test_no_backup_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(VERSION)
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_unknown_version_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"{VERSION}/42")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_backups_are_per_user(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    version = _create(alice)
    body = bob.get(f"{VERSION}/{version}")
    assert (bob.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_create_needs_auth_data(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(VERSION, {"algorithm": ALGORITHM})
    assert (alice.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_create_refuses_an_unknown_algorithm(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(VERSION, {"algorithm": "m.rot13", "auth_data": _auth_data()})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_create_needs_a_public_key(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(VERSION, {"algorithm": ALGORITHM, "auth_data": {}})
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_backup_needs_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.get(VERSION)
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_update_auth_data(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    body = alice.put(f"{VERSION}/{version}", {"algorithm": ALGORITHM, "version": version,
                                              "auth_data": _auth_data("pk2")})
    assert (alice.status, body) == (200, {})
    assert alice.get(f"{VERSION}/{version}")["auth_data"]["public_key"] == "pk2"


def test_update_with_mismatched_version_is_invalid(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    body = alice.put(f"{VERSION}/{version}", {"algorithm": ALGORITHM, "version": "99",
                                              "auth_data": _auth_data("pk2")})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_update_of_unknown_version_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(f"{VERSION}/7", {"algorithm": ALGORITHM, "auth_data": _auth_data()})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_delete_version_and_again(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    assert alice.delete(f"{VERSION}/{version}") == {} and alice.status == 200
    assert alice.delete(f"{VERSION}/{version}") == {} and alice.status == 200
    alice.get(VERSION)
    assert alice.status == 404


def test_delete_of_never_created_version_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.delete(f"{VERSION}/5")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_store_and_read_one_session(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    assert _put_session(alice, version, _key()) == {"etag": "1", "count": 1}
    assert alice.get(_session_path(), params={"version": version}) == _key()


def test_store_a_room_and_read_it(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    body = alice.put(f"{KEYS}/{quote(ROOM)}", {"sessions": {"s1": _key(), "s2": _key(3)}},
                     params={"version": version})
    assert body == {"etag": "1", "count": 2}
    assert alice.get(f"{KEYS}/{quote(ROOM)}", params={"version": version}) == {
        "sessions": {"s1": _key(), "s2": _key(3)}}


def test_store_all_rooms_and_read_them(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    rooms = {ROOM: {"sessions": {"s1": _key()}}, "!two:example.org": {"sessions": {"s2": _key()}}}
    assert alice.put(KEYS, {"rooms": rooms}, params={"version": version}) == {
        "etag": "1", "count": 2}
    assert alice.get(KEYS, params={"version": version}) == {"rooms": rooms}
    info = alice.get(VERSION)
    assert (info["etag"], info["count"]) == ("1", 2)


def test_empty_backup_reads_empty(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    assert alice.get(KEYS, params={"version": version}) == {"rooms": {}}
    assert alice.get(f"{KEYS}/{quote(ROOM)}", params={"version": version}) == {"sessions": {}}


def test_missing_session_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    body = alice.get(_session_path(), params={"version": version})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_worse_key_does_not_replace_a_better_one(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    _put_session(alice, version, _key(index=0, verified=True, ciphertext="good"))
    assert _put_session(alice, version, _key(index=0, verified=False, ciphertext="bad")) == {
        "etag": "1", "count": 1}
    kept = alice.get(_session_path(), params={"version": version})
    assert kept["session_data"]["ciphertext"] == "good"


def test_better_key_replaces_the_stored_one(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    _put_session(alice, version, _key(index=4, ciphertext="late"))
    assert _put_session(alice, version, _key(index=1, ciphertext="early")) == {
        "etag": "2", "count": 1}
    kept = alice.get(_session_path(), params={"version": version})
    assert kept["session_data"]["ciphertext"] == "early"


def test_storing_into_an_old_version_names_the_current_one(node: NodeProcess) -> None:
    alice = node.register()
    old = _create(alice)
    current = _create(alice)
    body = _put_session(alice, old, _key())
    assert alice.status == 403
    assert (body["errcode"], body["current_version"]) == ("M_WRONG_ROOM_KEYS_VERSION", current)


def test_storing_without_a_backup_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = _put_session(alice, "1", _key())
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_keys_need_the_version_parameter(node: NodeProcess) -> None:
    alice = node.register()
    _create(alice)
    body = alice.get(KEYS)
    assert (alice.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_malformed_key_data_is_bad_json(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    body = _put_session(alice, version, {**_key(), "first_message_index": "zero"})
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_malformed_room_stores_nothing(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    alice.put(f"{KEYS}/{quote(ROOM)}", {"sessions": {"s1": _key(), "s2": {"nope": 1}}},
              params={"version": version})
    assert alice.status == 400
    assert alice.get(VERSION)["count"] == 0


def test_reading_an_old_version_still_works(node: NodeProcess) -> None:
    alice = node.register()
    old = _create(alice)
    _put_session(alice, old, _key())
    _create(alice)
    assert alice.get(_session_path(), params={"version": old}) == _key()


def test_delete_one_session(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    _put_session(alice, version, _key(), session_id="s1")
    _put_session(alice, version, _key(), session_id="s2")
    assert alice.delete(_session_path(session_id="s1"), params={"version": version}) == {
        "etag": "3", "count": 1}


def test_delete_a_room(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    _put_session(alice, version, _key())
    _put_session(alice, version, _key(), room_id="!other:example.org")
    assert alice.delete(f"{KEYS}/{quote(ROOM)}", params={"version": version}) == {
        "etag": "3", "count": 1}


def test_delete_all_keys(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    _put_session(alice, version, _key())
    assert alice.delete(KEYS, params={"version": version}) == {"etag": "2", "count": 0}


def test_delete_keys_of_unknown_version_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.delete(KEYS, params={"version": "3"})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_deleted_version_keys_are_gone(node: NodeProcess) -> None:
    alice = node.register()
    version = _create(alice)
    _put_session(alice, version, _key())
    alice.delete(f"{VERSION}/{version}")
    body = alice.get(KEYS, params={"version": version})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_backup_round_trip_on_both_engines(any_node: NodeProcess) -> None:
    alice = any_node.register()
    old = _create(alice)
    version = _create(alice)
    assert _put_session(alice, version, _key(index=2)) == {"etag": "1", "count": 1}
    assert _put_session(alice, version, _key(index=1)) == {"etag": "2", "count": 1}
    assert _put_session(alice, old, _key())["errcode"] == "M_WRONG_ROOM_KEYS_VERSION"
    assert alice.get(_session_path(), params={"version": version}) == _key(index=1)
