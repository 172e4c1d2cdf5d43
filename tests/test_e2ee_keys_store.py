"""DeviceKeyStore on both engines: identity, one-time and fallback keys of local devices, claims,
device deletion, the device-list change stream and the cache of remote users' devices."""

from __future__ import annotations

from typing import Any

import pytest

from storage.database import Database
from storage.device_keys import DeviceKeyStore, OneTimeKeyConflict, UnknownDevice
from storage.users import UserStore
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:remote.example"


def _device_keys(device_id: str = "DEV1", marker: str = "a") -> dict[str, Any]:
    return {"user_id": ALICE, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{device_id}": "c" + marker, f"ed25519:{device_id}": "e" + marker},
            "signatures": {ALICE: {f"ed25519:{device_id}": "sig" + marker}}}


def _store(database: Database, *devices: str) -> DeviceKeyStore:
    users = UserStore(database)
    result_of(users.create_user(ALICE, None, 1))
    for device_id in devices or ("DEV1",):
        result_of(users.add_device_and_token(ALICE, device_id, f"name {device_id}",
                                             f"tok-{device_id}", 1, None))
    return DeviceKeyStore(database)


def _upload(store: DeviceKeyStore, device_id: str = "DEV1", *, keys: Any = None,
            otks: Any = None, fallback: Any = None, stream_id: int = 1) -> Any:
    return result_of(store.upload_keys(
        ALICE, device_id, device_keys=keys, one_time_keys=otks or {},
        fallback_keys=fallback or {}, now_ms=1000, stream_id=stream_id))


def test_uploaded_device_keys_read_back_with_display_name(database: Database) -> None:
    store = _store(database)
    _upload(store, keys=_device_keys())
    found = result_of(store.get_device_keys({ALICE: []}))
    assert found[ALICE]["DEV1"] == {**_device_keys(),
                                    "unsigned": {"device_display_name": "name DEV1"}}


def test_display_name_is_left_out_when_not_asked_for(database: Database) -> None:
    store = _store(database)
    _upload(store, keys=_device_keys())
    found = result_of(store.get_device_keys({ALICE: ["DEV1"]}, include_display_names=False))
    assert found == {ALICE: {"DEV1": _device_keys()}}


def test_query_of_named_devices_leaves_out_the_others(database: Database) -> None:
    store = _store(database, "DEV1", "DEV2")
    _upload(store, "DEV1", keys=_device_keys("DEV1"), stream_id=1)
    _upload(store, "DEV2", keys=_device_keys("DEV2"), stream_id=2)
    assert set(result_of(store.get_device_keys({ALICE: ["DEV2"]}))[ALICE]) == {"DEV2"}


def test_new_identity_keys_record_a_change_and_same_keys_do_not(database: Database) -> None:
    store = _store(database)
    first = _upload(store, keys=_device_keys(), stream_id=5)
    again = _upload(store, keys=_device_keys(), stream_id=6)
    changed = _upload(store, keys=_device_keys(marker="b"), stream_id=7)
    assert first.change.stream_id == 5 and first.change.prev_stream_id is None
    assert again.change is None
    assert changed.change.stream_id == 7 and changed.change.prev_stream_id == 5
    assert result_of(store.get_changed_users(4, 7)) == {ALICE}
    assert result_of(store.get_changed_users(7, 9)) == set()
    assert result_of(store.get_last_change(ALICE)) == 7


def test_upload_for_a_deleted_device_is_refused(database: Database) -> None:
    store = _store(database)
    with pytest.raises(UnknownDevice):
        _upload(store, "GONE", keys=_device_keys("GONE"))


def test_one_time_key_counts_per_algorithm(database: Database) -> None:
    store = _store(database)
    result = _upload(store, otks={"signed_curve25519:A": {"key": "k1"},
                                  "signed_curve25519:B": {"key": "k2"}, "curve25519:C": "k3"})
    assert result.counts.one_time == {"signed_curve25519": 2, "curve25519": 1}
    assert result_of(store.get_key_counts(ALICE, "DEV1")).one_time == result.counts.one_time


def test_same_one_time_key_uploaded_twice_is_kept_once(database: Database) -> None:
    store = _store(database)
    _upload(store, otks={"signed_curve25519:A": {"key": "k1"}})
    result = _upload(store, otks={"signed_curve25519:A": {"key": "k1"}})
    assert result.counts.one_time == {"signed_curve25519": 1}


def test_one_time_key_id_reused_with_other_content_is_refused_and_nothing_written(
        database: Database) -> None:
    store = _store(database)
    _upload(store, otks={"signed_curve25519:A": {"key": "k1"}})
    with pytest.raises(OneTimeKeyConflict):
        _upload(store, keys=_device_keys(), otks={"signed_curve25519:B": {"key": "k2"},
                                                  "signed_curve25519:A": {"key": "other"}})
    assert result_of(store.get_key_counts(ALICE, "DEV1")).one_time == {"signed_curve25519": 1}
    assert result_of(store.get_device_keys({ALICE: []})) == {}


def test_claim_takes_each_one_time_key_once(database: Database) -> None:
    store = _store(database)
    _upload(store, otks={"signed_curve25519:A": {"key": "k1"},
                         "signed_curve25519:B": {"key": "k2"}})
    wanted = [(ALICE, "DEV1", "signed_curve25519")]
    first = result_of(store.claim_keys(wanted))[ALICE]["DEV1"]
    second = result_of(store.claim_keys(wanted))[ALICE]["DEV1"]
    assert first.keys() != second.keys()
    assert result_of(store.claim_keys(wanted)) == {}
    assert result_of(store.get_key_counts(ALICE, "DEV1")).one_time == {}


def test_fallback_key_is_claimed_when_no_one_time_key_is_left_and_marked_used(
        database: Database) -> None:
    store = _store(database)
    _upload(store, fallback={"signed_curve25519:F": {"key": "fb", "fallback": True}})
    assert result_of(store.get_key_counts(ALICE, "DEV1")).unused_fallback == ["signed_curve25519"]
    wanted = [(ALICE, "DEV1", "signed_curve25519")]
    claimed = result_of(store.claim_keys(wanted))
    assert claimed == {ALICE: {"DEV1": {"signed_curve25519:F": {"key": "fb", "fallback": True}}}}
    assert result_of(store.get_key_counts(ALICE, "DEV1")).unused_fallback == []
    assert result_of(store.claim_keys(wanted)) == claimed


def test_new_fallback_key_replaces_a_used_one(database: Database) -> None:
    store = _store(database)
    _upload(store, fallback={"signed_curve25519:F": {"key": "fb"}})
    result_of(store.claim_keys([(ALICE, "DEV1", "signed_curve25519")]))
    result = _upload(store, fallback={"signed_curve25519:G": {"key": "fb2"}})
    assert result.counts.unused_fallback == ["signed_curve25519"]
    claimed = result_of(store.claim_keys([(ALICE, "DEV1", "signed_curve25519")]))
    assert claimed[ALICE]["DEV1"] == {"signed_curve25519:G": {"key": "fb2"}}


def test_deleting_devices_removes_their_keys_and_records_changes(database: Database) -> None:
    store = _store(database, "DEV1", "DEV2")
    _upload(store, "DEV1", keys=_device_keys("DEV1"), otks={"curve25519:A": "k"},
            fallback={"curve25519:F": "f"}, stream_id=1)
    changes = result_of(store.delete_devices_keys(ALICE, ["DEV1", "DEV2"], [3, 4]))
    assert [(c.device_id, c.stream_id, c.prev_stream_id) for c in changes] == [("DEV1", 3, 1)]
    assert result_of(store.get_device_keys({ALICE: []})) == {}
    assert result_of(store.claim_keys([(ALICE, "DEV1", "curve25519")])) == {}


def test_remote_cache_holds_a_complete_answer(database: Database) -> None:
    store = DeviceKeyStore(database)
    result_of(store.set_remote_cache(BOB, {"B1": {"k": 1}}, {"master": {"m": 1}}, 100))
    cached = result_of(store.get_remote_cache([BOB, "@carol:remote.example"]))
    assert set(cached) == {BOB}
    assert cached[BOB].devices == {"B1": {"k": 1}}
    assert cached[BOB].cross_signing == {"master": {"m": 1}}


def _remote_update(store: DeviceKeyStore, stream: int, prev: list[int], *, device: str = "B2",
                   keys: Any = None, deleted: bool = False, local: int = 10) -> bool:
    return bool(result_of(store.apply_remote_update(
        BOB, device, remote_stream_id=stream, prev_ids=prev, deleted=deleted, keys=keys,
        stream_id=local)))


def test_remote_update_without_a_known_predecessor_drops_the_cache(database: Database) -> None:
    store = DeviceKeyStore(database)
    result_of(store.set_remote_cache(BOB, {"B1": {"k": 1}}, {}, 100))
    assert _remote_update(store, 7, [6], keys={"k": 2})
    assert result_of(store.get_remote_cache([BOB])) == {}
    assert result_of(store.get_changed_users(9, 10)) == {BOB}


def test_remote_update_following_the_last_one_updates_the_cache(database: Database) -> None:
    store = DeviceKeyStore(database)
    _remote_update(store, 7, [], local=10)
    result_of(store.set_remote_cache(BOB, {"B1": {"k": 1}}, {}, 100))
    assert _remote_update(store, 8, [7], keys={"k": 2}, local=11)
    assert _remote_update(store, 9, [8], device="B1", deleted=True, local=12)
    assert result_of(store.get_remote_cache([BOB]))[BOB].devices == {"B2": {"k": 2}}


def test_remote_update_seen_before_changes_nothing(database: Database) -> None:
    store = DeviceKeyStore(database)
    _remote_update(store, 7, [], local=10)
    assert not _remote_update(store, 7, [], local=11)
    assert result_of(store.get_changed_users(10, 11)) == set()


def test_forgetting_remote_caches(database: Database) -> None:
    store = DeviceKeyStore(database)
    result_of(store.set_remote_cache(BOB, {"B1": {"k": 1}}, {}, 100))
    result_of(store.forget_remote_cache([BOB]))
    assert result_of(store.get_remote_cache([BOB])) == {}
