"""``add_cross_signing_to_query`` over the store on both engines: which keys each requester sees,
which signatures are merged into master and device keys, and that a remote server's answer
already in the response is kept."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer

from broker.e2ee.cross_signing import (
    add_cross_signing_to_federation_query,
    add_cross_signing_to_query,
)
from storage.cross_signing import MASTER, SELF_SIGNING, USER_SIGNING, CrossSigningStore, Signature
from storage.database import Database
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
REMOTE = "@rita:elsewhere.example"


def _key(user_id: str, usage: str, public: str) -> dict[str, Any]:
    return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}


def _device(user_id: str, device_id: str) -> dict[str, Any]:
    return {"user_id": user_id, "device_id": device_id, "keys": {f"ed25519:{device_id}": "k"},
            "signatures": {user_id: {f"ed25519:{device_id}": "self"}}}


def _setup(database: Database) -> Any:
    store = CrossSigningStore(database)
    result_of(store.set_cross_signing_keys(ALICE, {
        MASTER: _key(ALICE, MASTER, "AM"), SELF_SIGNING: _key(ALICE, SELF_SIGNING, "AS"),
        USER_SIGNING: _key(ALICE, USER_SIGNING, "AU")}, 1))
    result_of(store.set_cross_signing_keys(BOB, {
        MASTER: _key(BOB, MASTER, "BM"), USER_SIGNING: _key(BOB, USER_SIGNING, "BU")}, 2))
    result_of(store.add_signatures([
        Signature(ALICE, "ed25519:AS", ALICE, "ADEV", "ssk-over-device"),
        Signature(ALICE, "ed25519:ADEV", ALICE, "AM", "device-over-master"),
        Signature(BOB, "ed25519:BU", ALICE, "AM", "bob-over-alice")], 3))
    return SimpleNamespace(stores=SimpleNamespace(cross_signing=store))


def _query(node: Any, requester: str, response: dict[str, Any]) -> dict[str, Any]:
    result_of(defer.ensureDeferred(add_cross_signing_to_query(node, requester, response)))
    return response


def test_queried_users_get_master_and_self_signing_keys(database: Database) -> None:
    node = _setup(database)
    response = _query(node, BOB, {"device_keys": {ALICE: {}}})
    assert response["master_keys"][ALICE]["keys"] == {"ed25519:AM": "AM"}
    assert response["self_signing_keys"] == {ALICE: _key(ALICE, SELF_SIGNING, "AS")}


def test_user_signing_key_only_for_the_requesters_own_user(database: Database) -> None:
    node = _setup(database)
    response = _query(node, BOB, {"device_keys": {ALICE: {}, BOB: {}}})
    assert response["user_signing_keys"] == {BOB: _key(BOB, USER_SIGNING, "BU")}


def test_users_without_keys_are_left_out(database: Database) -> None:
    node = _setup(database)
    response = _query(node, ALICE, {"device_keys": {"@nobody:example.org": {}}})
    assert response["master_keys"] == {} and response["self_signing_keys"] == {}


def test_self_signing_signature_is_merged_into_the_device_keys(database: Database) -> None:
    node = _setup(database)
    response = _query(node, BOB, {"device_keys": {ALICE: {"ADEV": _device(ALICE, "ADEV")}}})
    assert response["device_keys"][ALICE]["ADEV"]["signatures"] == {
        ALICE: {"ed25519:ADEV": "self", "ed25519:AS": "ssk-over-device"}}


def test_requesters_signature_over_another_master_key_is_merged(database: Database) -> None:
    node = _setup(database)
    response = _query(node, BOB, {"device_keys": {ALICE: {}}})
    assert response["master_keys"][ALICE]["signatures"] == {
        ALICE: {"ed25519:ADEV": "device-over-master"}, BOB: {"ed25519:BU": "bob-over-alice"}}


def test_signature_over_another_master_key_is_hidden_from_others(database: Database) -> None:
    node = _setup(database)
    response = _query(node, ALICE, {"device_keys": {ALICE: {}}})
    assert response["master_keys"][ALICE]["signatures"] == {
        ALICE: {"ed25519:ADEV": "device-over-master"}}


def test_keys_already_in_the_answer_are_kept(database: Database) -> None:
    node = _setup(database)
    remote_master = _key(REMOTE, MASTER, "RM")
    response = _query(node, ALICE, {"device_keys": {REMOTE: {}},
                                    "master_keys": {REMOTE: copy.deepcopy(remote_master)}})
    assert response["master_keys"] == {REMOTE: remote_master}


def test_requesters_signature_over_a_remote_master_key_in_the_answer_is_merged(
        database: Database) -> None:
    node = _setup(database)
    result_of(node.stores.cross_signing.add_signatures(
        [Signature(ALICE, "ed25519:AU", REMOTE, "RM", "alice-over-rita")], 4))
    response = _query(node, ALICE, {"device_keys": {REMOTE: {}},
                                    "master_keys": {REMOTE: _key(REMOTE, MASTER, "RM")}})
    assert response["master_keys"][REMOTE]["signatures"] == {
        ALICE: {"ed25519:AU": "alice-over-rita"}}


def test_federation_answer_has_no_user_signing_keys_nor_private_signatures(
        database: Database) -> None:
    node = _setup(database)
    response: dict[str, Any] = {"device_keys": {ALICE: {}, BOB: {}}}
    result_of(defer.ensureDeferred(add_cross_signing_to_federation_query(node, response)))
    assert "user_signing_keys" not in response
    assert response["master_keys"][ALICE]["signatures"] == {
        ALICE: {"ed25519:ADEV": "device-over-master"}}


def test_queried_user_without_device_keys_gets_their_keys(database: Database) -> None:
    node = _setup(database)
    response: dict[str, Any] = {"device_keys": {}}
    result_of(defer.ensureDeferred(add_cross_signing_to_query(node, BOB, response, [ALICE])))
    assert response["self_signing_keys"] == {ALICE: _key(ALICE, SELF_SIGNING, "AS")}
