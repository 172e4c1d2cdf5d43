"""Device keys through the Client-Server API against a real node: /keys/upload, /keys/query,
/keys/claim (with fallback keys), key counts in /sync, keys removed with their device, and the
errors for keys the node must refuse."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from signedjson.key import generate_signing_key
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, sync

ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]


@pytest.fixture
def node(any_node: NodeProcess) -> NodeProcess:
    """Every test here runs against a node on each database engine."""
    return any_node


def make_device_keys(user_id: str, device_id: str) -> dict[str, Any]:
    """A DeviceKeys object signed by a fresh ed25519 key of the device."""
    signing_key = generate_signing_key(device_id)
    keys = {
        "user_id": user_id, "device_id": device_id, "algorithms": ALGORITHMS,
        "keys": {f"curve25519:{device_id}": encode_base64(secrets.token_bytes(32)),
                 f"ed25519:{device_id}": encode_base64(signing_key.verify_key.encode())},
    }
    return dict(sign_json(keys, user_id, signing_key))


def one_time_keys(count: int, prefix: str = "K") -> dict[str, Any]:
    return {f"signed_curve25519:{prefix}{i}": {"key": encode_base64(secrets.token_bytes(32))}
            for i in range(count)}


def upload(client: Client, **body: Any) -> Any:
    return client.post(f"{V3}/keys/upload", body)


def upload_device_keys(client: Client) -> dict[str, Any]:
    keys = make_device_keys(client.user_id, client.device_id)
    response = upload(client, device_keys=keys)
    assert client.status == 200, response
    return keys


def login(node: NodeProcess, user: Client, password: str = "correct horse 1") -> Client:
    """A second device of ``user``."""
    client = node.client()
    body = client.post(f"{V3}/login", {
        "type": "m.login.password", "password": password,
        "identifier": {"type": "m.id.user", "user": user.user_id}})
    assert client.status == 200, body
    client.token, client.user_id, client.device_id = (
        body["access_token"], body["user_id"], body["device_id"])
    return client


def query(client: Client, user_id: str, devices: list[str] | None = None) -> Any:
    return client.post(f"{V3}/keys/query", {"device_keys": {user_id: devices or []}})


def claim(client: Client, user_id: str, device_id: str,
          algorithm: str = "signed_curve25519") -> Any:
    return client.post(f"{V3}/keys/claim",
                       {"one_time_keys": {user_id: {device_id: algorithm}}})


# -- upload and query -----------------------------------------------------------------------------
def test_upload_answers_one_time_key_counts(node: NodeProcess) -> None:
    alice = node.register()
    body = upload(alice, device_keys=make_device_keys(alice.user_id, alice.device_id),
                  one_time_keys=one_time_keys(3))
    assert alice.status == 200
    assert body == {"one_time_key_counts": {"signed_curve25519": 3}}


def test_query_returns_uploaded_device_keys_with_display_name(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    keys = upload_device_keys(alice)
    alice.put(f"{V3}/devices/{alice.device_id}", {"display_name": "Desk phone"})
    body = query(bob, alice.user_id)
    assert bob.status == 200 and body["failures"] == {}
    assert body["device_keys"][alice.user_id] == {
        alice.device_id: {**keys, "unsigned": {"device_display_name": "Desk phone"}}}


def test_query_of_named_device_leaves_out_the_others(node: NodeProcess) -> None:
    alice = node.register()
    second = login(node, alice)
    upload_device_keys(alice)
    upload_device_keys(second)
    body = query(alice, alice.user_id, [second.device_id])
    assert set(body["device_keys"][alice.user_id]) == {second.device_id}


def test_query_of_user_without_keys_leaves_them_out(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    body = query(alice, bob.user_id)
    assert alice.status == 200
    assert bob.user_id not in body["device_keys"]


def test_query_of_unreachable_server_is_listed_in_failures(node: NodeProcess) -> None:
    alice = node.register()
    body = query(alice, "@someone:unreachable.example")
    assert alice.status == 200
    assert set(body["failures"]) == {"unreachable.example"}


# -- claims ---------------------------------------------------------------------------------------
def test_claim_hands_out_each_one_time_key_once(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    uploaded = one_time_keys(2)
    upload(alice, one_time_keys=uploaded)
    first = claim(bob, alice.user_id, alice.device_id)["one_time_keys"]
    second = claim(bob, alice.user_id, alice.device_id)["one_time_keys"]
    got = {**first[alice.user_id][alice.device_id], **second[alice.user_id][alice.device_id]}
    assert got == uploaded
    assert claim(bob, alice.user_id, alice.device_id)["one_time_keys"] == {}


def test_concurrent_claims_never_share_a_key(node: NodeProcess) -> None:
    alice = node.register()
    upload(alice, one_time_keys=one_time_keys(12))
    claimers = [node.register() for _ in range(12)]
    with ThreadPoolExecutor(len(claimers)) as pool:
        answers = list(pool.map(
            lambda c: claim(c, alice.user_id, alice.device_id)["one_time_keys"], claimers))
    claimed = [key_id for answer in answers
               for key_id in answer[alice.user_id][alice.device_id]]
    assert len(claimed) == len(set(claimed)) == 12


def test_fallback_key_is_claimed_once_one_time_keys_run_out(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    fallback = {"signed_curve25519:FB": {"key": "fallbackkey", "fallback": True}}
    upload(alice, one_time_keys=one_time_keys(1), fallback_keys=fallback)
    claim(bob, alice.user_id, alice.device_id)
    body = claim(bob, alice.user_id, alice.device_id)
    assert body == {"one_time_keys": {alice.user_id: {alice.device_id: fallback}},
                    "failures": {}}


# -- counts in /sync -------------------------------------------------------------------------------
def test_sync_reports_one_time_key_counts_and_unused_fallback_types(node: NodeProcess) -> None:
    alice = node.register()
    upload(alice, one_time_keys=one_time_keys(4),
           fallback_keys={"signed_curve25519:FB": {"key": "fb", "fallback": True}})
    body = sync(alice)
    assert body["device_one_time_keys_count"] == {"signed_curve25519": 4}
    assert body["device_unused_fallback_key_types"] == ["signed_curve25519"]


def test_sync_counts_follow_claims(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    upload(alice, one_time_keys=one_time_keys(2),
           fallback_keys={"signed_curve25519:FB": {"key": "fb", "fallback": True}})
    assert sync(alice)["device_one_time_keys_count"] == {"signed_curve25519": 2}
    for _ in range(3):
        claim(bob, alice.user_id, alice.device_id)
    body = sync(alice)
    assert body["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert body["device_unused_fallback_key_types"] == []


def test_counts_are_per_device(node: NodeProcess) -> None:
    alice = node.register()
    second = login(node, alice)
    upload(alice, one_time_keys=one_time_keys(3))
    assert sync(second)["device_one_time_keys_count"] == {"signed_curve25519": 0}


# -- devices going away ---------------------------------------------------------------------------
def test_deleting_a_device_removes_its_keys(node: NodeProcess) -> None:
    alice = node.register()
    second = login(node, alice)
    upload_device_keys(second)
    upload(second, one_time_keys=one_time_keys(1))
    alice.post(f"{V3}/delete_devices", {"devices": [second.device_id], "auth": {
        "type": "m.login.password", "password": "correct horse 1",
        "identifier": {"type": "m.id.user", "user": alice.user_id}}})
    assert alice.status == 200
    assert query(alice, alice.user_id)["device_keys"].get(alice.user_id, {}) == {}
    assert claim(alice, alice.user_id, second.device_id)["one_time_keys"] == {}


def test_logging_out_removes_the_devices_keys(node: NodeProcess) -> None:
    alice = node.register()
    second = login(node, alice)
    upload_device_keys(alice)
    upload_device_keys(second)
    second.post(f"{V3}/logout")
    assert second.status == 200
    assert set(query(alice, alice.user_id)["device_keys"][alice.user_id]) == {alice.device_id}


def test_logging_out_everywhere_removes_every_devices_keys(node: NodeProcess) -> None:
    alice = node.register()
    second = login(node, alice)
    upload_device_keys(alice)
    upload_device_keys(second)
    second.post(f"{V3}/logout/all")
    assert second.status == 200
    viewer = node.register()
    assert alice.user_id not in query(viewer, alice.user_id)["device_keys"]


def test_deactivating_the_account_removes_its_keys(node: NodeProcess) -> None:
    alice, viewer = node.register(), node.register()
    upload_device_keys(alice)
    alice.post(f"{V3}/account/deactivate", {"auth": {
        "type": "m.login.password", "password": "correct horse 1",
        "identifier": {"type": "m.id.user", "user": alice.user_id}}})
    assert alice.status == 200
    assert alice.user_id not in query(viewer, alice.user_id)["device_keys"]


# -- refused uploads ------------------------------------------------------------------------------
def _assert_refused(client: Client, body: Any, errcode: str = "M_INVALID_PARAM") -> None:
    assert client.status == 400, body
    assert body["errcode"] == errcode


def test_device_keys_with_a_bad_signature_are_refused(node: NodeProcess) -> None:
    alice = node.register()
    keys = make_device_keys(alice.user_id, alice.device_id)
    keys["algorithms"] = ["m.megolm.v1.aes-sha2"]  # changed after signing
    _assert_refused(alice, upload(alice, device_keys=keys))
    assert alice.user_id not in query(alice, alice.user_id)["device_keys"]


def test_device_keys_signed_by_another_key_are_refused(node: NodeProcess) -> None:
    alice = node.register()
    keys = make_device_keys(alice.user_id, alice.device_id)
    other = make_device_keys(alice.user_id, alice.device_id)
    keys["signatures"] = other["signatures"]
    _assert_refused(alice, upload(alice, device_keys=keys))


def test_device_keys_for_another_user_are_refused(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    keys = make_device_keys(bob.user_id, alice.device_id)
    _assert_refused(alice, upload(alice, device_keys=keys))


def test_device_keys_for_another_device_are_refused(node: NodeProcess) -> None:
    alice = node.register()
    keys = make_device_keys(alice.user_id, "NOTMYDEVICE")
    _assert_refused(alice, upload(alice, device_keys=keys))


def test_device_keys_without_algorithms_are_refused(node: NodeProcess) -> None:
    alice = node.register()
    keys = make_device_keys(alice.user_id, alice.device_id)
    del keys["algorithms"]
    _assert_refused(alice, upload(alice, device_keys=keys), "M_BAD_JSON")


def test_malformed_one_time_key_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    _assert_refused(alice, upload(alice, one_time_keys={"no_key_id": "abc"}))
    _assert_refused(alice, upload(alice, one_time_keys={"signed_curve25519:A": {"k": 1}}))


def test_one_time_key_id_reused_with_other_content_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    upload(alice, one_time_keys={"signed_curve25519:A": {"key": "one"}})
    _assert_refused(alice, upload(alice, one_time_keys={"signed_curve25519:A": {"key": "two"}}))
    assert sync(alice)["device_one_time_keys_count"] == {"signed_curve25519": 1}


def test_two_fallback_keys_of_one_algorithm_are_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = upload(alice, fallback_keys={"signed_curve25519:A": {"key": "a"},
                                        "signed_curve25519:B": {"key": "b"}})
    _assert_refused(alice, body)


def test_query_without_device_keys_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(f"{V3}/keys/query", {"timeout": 1000})
    _assert_refused(alice, body, "M_MISSING_PARAM")


def test_claim_with_malformed_request_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(f"{V3}/keys/claim", {"one_time_keys": {alice.user_id: ["DEVICE"]}})
    _assert_refused(alice, body, "M_BAD_JSON")


def test_keys_endpoints_need_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.post(f"{V3}/keys/upload", {})
    assert anonymous.status == 401 and body["errcode"] == "M_MISSING_TOKEN"
