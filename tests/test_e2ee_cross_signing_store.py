"""CrossSigningStore on both engines: current key per usage, replacement (with the signatures of
replaced keys), guarded first upload, signature visibility and change ranges."""

from __future__ import annotations

from typing import Any

from storage.cross_signing import (
    MASTER,
    SELF_SIGNING,
    USER_SIGNING,
    CrossSigningStore,
    ListChange,
    Signature,
)
from storage.database import Database
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"


def _key(user_id: str, usage: str, public: str) -> dict[str, Any]:
    return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}


def _sig(signer: str, signer_key: str, target: str, target_key: str, value: str = "sig"
         ) -> Signature:
    return Signature(signer_user_id=signer, signer_key_id=signer_key, target_user_id=target,
                     target_key_id=target_key, signature=value)


def test_keys_read_back_by_user_and_usage(database: Database) -> None:
    store = CrossSigningStore(database)
    master, ssk = _key(ALICE, MASTER, "M1"), _key(ALICE, SELF_SIGNING, "S1")
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: master, SELF_SIGNING: ssk}, 1))
    assert result_of(store.get_cross_signing_keys([ALICE, BOB])) == {
        ALICE: {MASTER: master, SELF_SIGNING: ssk}}


def test_reading_selected_usages_leaves_the_others_out(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {
        MASTER: _key(ALICE, MASTER, "M1"), USER_SIGNING: _key(ALICE, USER_SIGNING, "U1")}, 1))
    assert result_of(store.get_cross_signing_keys([ALICE], [MASTER])) == {
        ALICE: {MASTER: _key(ALICE, MASTER, "M1")}}


def test_a_new_key_replaces_the_one_of_the_same_usage(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {
        MASTER: _key(ALICE, MASTER, "M1"), SELF_SIGNING: _key(ALICE, SELF_SIGNING, "S1")}, 1))
    result_of(store.set_cross_signing_keys(ALICE, {SELF_SIGNING: _key(ALICE, SELF_SIGNING, "S2")},
                                           2))
    assert result_of(store.get_cross_signing_keys([ALICE])) == {
        ALICE: {MASTER: _key(ALICE, MASTER, "M1"), SELF_SIGNING: _key(ALICE, SELF_SIGNING, "S2")}}


def test_guarded_write_refuses_when_a_master_key_appeared(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M1")}, 1,
                                           expected_master=None))
    assert result_of(store.set_cross_signing_keys(
        ALICE, {MASTER: _key(ALICE, MASTER, "M2")}, 2, expected_master=None)) is None
    assert result_of(store.get_cross_signing_keys([ALICE]))[ALICE][MASTER] == \
        _key(ALICE, MASTER, "M1")


def test_guarded_write_goes_ahead_when_the_master_key_is_the_expected_one(
        database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M1")}, 1))
    assert result_of(store.set_cross_signing_keys(
        ALICE, {MASTER: _key(ALICE, MASTER, "M2")}, 2, expected_master="ed25519:M1")) is not None
    assert result_of(store.get_cross_signing_keys([ALICE]))[ALICE][MASTER] == \
        _key(ALICE, MASTER, "M2")


def test_signatures_read_back_per_target_key(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.add_signatures([
        _sig(ALICE, "ed25519:S1", ALICE, "DEVICE1", "a"),
        _sig(ALICE, "ed25519:DEVICE1", ALICE, "M1", "b")], 3))
    assert result_of(store.get_signatures(ALICE, ["DEVICE1", "M1", "OTHER"])) == {
        "DEVICE1": {ALICE: {"ed25519:S1": "a"}}, "M1": {ALICE: {"ed25519:DEVICE1": "b"}}}


def test_a_new_signature_by_the_same_key_replaces_the_old_one(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.add_signatures([_sig(ALICE, "ed25519:S1", ALICE, "DEVICE1", "old")], 1))
    result_of(store.add_signatures([_sig(ALICE, "ed25519:S1", ALICE, "DEVICE1", "new")], 2))
    assert result_of(store.get_signatures(ALICE, ["DEVICE1"])) == {
        "DEVICE1": {ALICE: {"ed25519:S1": "new"}}}


def test_signatures_of_another_user_are_shown_only_to_the_signer(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.add_signatures([_sig(BOB, "ed25519:BU", ALICE, "M1", "bob's")], 1))
    assert result_of(store.get_signatures(ALICE, ["M1"])) == {}
    assert result_of(store.get_signatures(ALICE, ["M1"], viewer="@carol:example.org")) == {}
    assert result_of(store.get_signatures(ALICE, ["M1"], viewer=BOB)) == {
        "M1": {BOB: {"ed25519:BU": "bob's"}}}


def test_signatures_for_several_users_in_one_read(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.add_signatures([_sig(ALICE, "ed25519:S1", ALICE, "A1"),
                                    _sig(BOB, "ed25519:S2", BOB, "B1")], 1))
    assert result_of(store.get_signatures_for({ALICE: ["A1"], BOB: ["B1"]})) == {
        ALICE: {"A1": {ALICE: {"ed25519:S1": "sig"}}}, BOB: {"B1": {BOB: {"ed25519:S2": "sig"}}}}


def test_replacing_a_key_drops_the_signatures_it_made(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {SELF_SIGNING: _key(ALICE, SELF_SIGNING, "S1")},
                                           1))
    result_of(store.add_signatures([_sig(ALICE, "ed25519:S1", ALICE, "DEVICE1")], 2))
    result_of(store.set_cross_signing_keys(ALICE, {SELF_SIGNING: _key(ALICE, SELF_SIGNING, "S2")},
                                           3))
    assert result_of(store.get_signatures(ALICE, ["DEVICE1"])) == {}


def test_replacing_the_master_key_drops_signatures_over_it(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M1")}, 1))
    result_of(store.add_signatures([_sig(ALICE, "ed25519:DEVICE1", ALICE, "M1"),
                                    _sig(BOB, "ed25519:BU", ALICE, "M1")], 2))
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M2")}, 3))
    assert result_of(store.get_signatures(ALICE, ["M1"], viewer=BOB)) == {}


def test_changed_users_cover_key_changes_and_own_signatures_in_range(
        database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M1")}, 2))
    result_of(store.add_signatures([_sig(BOB, "ed25519:S", BOB, "DEV")], 4))
    result_of(store.add_signatures([_sig(BOB, "ed25519:U", "@carol:example.org", "C")], 5))
    assert result_of(store.get_changed_users(0, 10)) == [ALICE, BOB]
    assert result_of(store.get_changed_users(2, 10)) == [BOB]
    assert result_of(store.get_changed_users(0, 3)) == [ALICE]


def test_users_signed_by_a_signer_in_range(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.add_signatures([_sig(BOB, "ed25519:U", ALICE, "M1")], 3))
    result_of(store.add_signatures([_sig(BOB, "ed25519:S", BOB, "DEV")], 4))
    assert result_of(store.get_users_signed_by(BOB, 0, 10)) == [ALICE]
    assert result_of(store.get_users_signed_by(BOB, 3, 10)) == []
    assert result_of(store.get_users_signed_by(ALICE, 0, 10)) == []


def _list_changes(database: Database) -> list[tuple[str, int, str]]:
    return database.run_sync("changes", lambda cur: [tuple(r) for r in cur.select_all(
        "SELECT user_id, stream_id, device_id FROM device_list_changes ORDER BY stream_id")])


def test_a_key_change_is_a_device_list_change_of_its_user(database: Database) -> None:
    store = CrossSigningStore(database)
    first = result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M1")}, 4))
    second = result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M2")},
                                                    7))
    assert (first, second) == (ListChange(ALICE, "", 4, None), ListChange(ALICE, "", 7, 4))
    assert _list_changes(database) == [(ALICE, 4, ""), (ALICE, 7, "")]


def test_a_refused_guarded_write_records_no_device_list_change(database: Database) -> None:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M1")}, 1))
    result_of(store.set_cross_signing_keys(ALICE, {MASTER: _key(ALICE, MASTER, "M2")}, 2,
                                           expected_master=None))
    assert _list_changes(database) == [(ALICE, 1, "")]


def test_signatures_record_the_device_list_changes_they_are_given(database: Database) -> None:
    store = CrossSigningStore(database)
    changes = result_of(store.add_signatures(
        [_sig(ALICE, "ed25519:S1", ALICE, "DEV1"), _sig(ALICE, "ed25519:S1", ALICE, "DEV2")], 5,
        list_changes=[(ALICE, "DEV1", 5), (ALICE, "DEV2", 6)]))
    assert changes == [ListChange(ALICE, "DEV1", 5, None), ListChange(ALICE, "DEV2", 6, 5)]
    assert _list_changes(database) == [(ALICE, 5, "DEV1"), (ALICE, 6, "DEV2")]
