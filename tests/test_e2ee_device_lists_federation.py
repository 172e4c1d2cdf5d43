"""Device keys across two federating nodes: a user on B queries and claims the keys of a user on
A, and sees A's device-list changes in /sync once they share a room."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
import urllib3

from protocol.request_auth import sign_request
from protocol.signing import read_signing_key_file
from tests.node_harness import Client, NodeProcess, federated_nodes
from tests.room_helpers import V3, create_room, sync
from tests.test_e2ee_keys_api import claim, login, one_time_keys, query, upload, upload_device_keys


@pytest.fixture(scope="module")
def pair(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with federated_nodes(tmp_path_factory, 2, "keys") as (a, b):
        yield a, b


def _share_room(a: NodeProcess, alice: Client, bob: Client) -> str:
    room_id = create_room(alice, preset="public_chat")
    body = bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200, body
    return room_id


def _wait_for_change(client: Client, since: str, user_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    token = since
    while time.monotonic() < deadline:
        body = sync(client, token, timeout=2000)
        if user_id in body.get("device_lists", {}).get("changed", []):
            return
        token = body["next_batch"]
    raise AssertionError(f"{user_id} never appeared in device_lists.changed")


def test_user_on_another_node_queries_device_keys(pair: tuple[NodeProcess, NodeProcess]
                                                  ) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    keys = upload_device_keys(alice)
    body = query(bob, alice.user_id)
    assert bob.status == 200 and body["failures"] == {}
    assert body["device_keys"] == {alice.user_id: {alice.device_id: keys}}


def test_user_on_another_node_claims_one_time_keys_then_the_fallback_key(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    otk = one_time_keys(1)
    fallback = {"signed_curve25519:FB": {"key": "fallback", "fallback": True}}
    upload(alice, one_time_keys=otk, fallback_keys=fallback)
    first = claim(bob, alice.user_id, alice.device_id)
    assert first == {"one_time_keys": {alice.user_id: {alice.device_id: otk}}, "failures": {}}
    second = claim(bob, alice.user_id, alice.device_id)
    assert second["one_time_keys"] == {alice.user_id: {alice.device_id: fallback}}
    assert sync(alice)["device_unused_fallback_key_types"] == []


def test_new_device_on_another_node_appears_in_sync_and_query(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    upload_device_keys(alice)
    _share_room(a, alice, bob)
    assert set(query(bob, alice.user_id)["device_keys"][alice.user_id]) == {alice.device_id}
    since = sync(bob)["next_batch"]
    second = login(a, alice)
    upload_device_keys(second)
    _wait_for_change(bob, since, alice.user_id)
    assert set(query(bob, alice.user_id)["device_keys"][alice.user_id]) == {
        alice.device_id, second.device_id}


def test_deleted_device_on_another_node_leaves_the_query_answer(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    upload_device_keys(alice)
    second = login(a, alice)
    upload_device_keys(second)
    _share_room(a, alice, bob)
    assert len(query(bob, alice.user_id)["device_keys"][alice.user_id]) == 2
    since = sync(bob)["next_batch"]
    second.post(f"{V3}/logout")
    _wait_for_change(bob, since, alice.user_id)
    assert set(query(bob, alice.user_id)["device_keys"][alice.user_id]) == {alice.device_id}


def _signed_get(origin: NodeProcess, destination: NodeProcess, path: str) -> Any:
    """GET ``path`` on ``destination``'s federation port, signed as ``origin``."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    key = read_signing_key_file(origin.workdir / "data" / "signing.key")
    header = sign_request(origin.server_name, destination.server_name, "GET", path, None, key)
    return requests.get(f"https://127.0.0.1:{destination.federation_port}{path}",
                        headers={"Authorization": header}, verify=False, timeout=10)


def test_other_server_lists_a_local_users_devices_with_keys(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice = a.register()
    keys = upload_device_keys(alice)
    response = _signed_get(b, a, f"/_matrix/federation/v1/user/devices/{quote(alice.user_id)}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == alice.user_id and body["stream_id"] > 0
    assert body["devices"] == [{"device_id": alice.device_id, "keys": keys}]


def test_other_server_cannot_list_devices_of_a_user_not_on_this_node(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    bob = b.register()
    response = _signed_get(b, a, f"/_matrix/federation/v1/user/devices/{quote(bob.user_id)}")
    assert response.status_code == 400
    assert response.json()["errcode"] == "M_INVALID_PARAM"
