"""Cross-signing between two nodes: a user on B sees A's users' cross-signing keys through
/keys/query, replaced keys reach B as an ``m.signing_key_update`` EDU, and a user on B signs the
master key of a user on A."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import Client, NodeProcess, federated_nodes
from tests.room_helpers import V3, create_room, sync
from tests.test_e2ee_cross_signing_api import (
    DEVICE_SIGNING,
    SIGNATURES,
    CrossSigningKeys,
    fresh_user,
    password_auth,
    query,
    upload_cross_signing,
    upload_device_keys,
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with federated_nodes(tmp_path_factory, 2, "cs") as (a, b):
        yield a, b


def share_a_room(alice: Client, bob: Client, server_name: str) -> None:
    room_id = create_room(alice, preset="public_chat")
    body = bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": server_name})
    assert bob.status == 200, body


def wait_for_device_list_change(user: Client, token: str, changed_user: str,
                                within_s: float = 15) -> str:
    """Long-poll ``user``'s /sync from ``token`` until it reports a device-list change of
    ``changed_user`` (the node answers when one arrives; nothing sleeps); the next token."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        response = sync(user, token, timeout=int(within_s * 1000))
        token = response["next_batch"]
        if changed_user in response.get("device_lists", {}).get("changed", []):
            return token
    raise AssertionError(f"no device-list change of {changed_user} within {within_s}s")


def replace_keys(user: Client) -> CrossSigningKeys:
    new = CrossSigningKeys(user.user_id)
    session = user.post(DEVICE_SIGNING, new.upload_body())["session"]
    body = user.post(DEVICE_SIGNING, new.upload_body(auth=password_auth(user, session)))
    assert user.status == 200, body
    return new


def test_user_on_another_node_sees_cross_signing_keys(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = fresh_user(a), fresh_user(b)
    keys = upload_cross_signing(alice)
    body = query(bob, alice.user_id)
    assert body["master_keys"][alice.user_id] == keys.master_key
    assert body["self_signing_keys"][alice.user_id] == keys.self_signing_key
    assert alice.user_id not in body.get("user_signing_keys", {})


def test_replaced_keys_reach_a_user_sharing_a_room_on_another_node(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = fresh_user(a), fresh_user(b)
    upload_cross_signing(alice)
    share_a_room(alice, bob, a.server_name)
    query(bob, alice.user_id)
    token = sync(bob)["next_batch"]
    new = replace_keys(alice)
    wait_for_device_list_change(bob, token, alice.user_id)
    assert query(bob, alice.user_id)["master_keys"][alice.user_id] == new.master_key


def test_signing_the_master_key_of_a_user_on_another_node(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = fresh_user(a), fresh_user(b)
    alice_keys, bob_keys = upload_cross_signing(alice), upload_cross_signing(bob)
    signed = bob_keys.user_signing.sign(alice_keys.master_key)
    body = bob.post(SIGNATURES, {alice.user_id: {alice_keys.master.public: signed}})
    assert (bob.status, body) == (200, {"failures": {}})
    master = query(bob, alice.user_id)["master_keys"][alice.user_id]
    assert master["signatures"][bob.user_id] == signed["signatures"][bob.user_id]


def test_signed_device_of_a_user_on_another_node_shows_the_signature(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = fresh_user(a), fresh_user(b)
    keys = upload_cross_signing(alice)
    device_keys, _ = upload_device_keys(alice)
    share_a_room(alice, bob, a.server_name)
    query(bob, alice.user_id)
    token = sync(bob)["next_batch"]
    signed = keys.self_signing.sign(device_keys)
    body = alice.post(SIGNATURES, {alice.user_id: {alice.device_id: signed}})
    assert (alice.status, body) == (200, {"failures": {}})
    expected = signed["signatures"][alice.user_id]
    # Each round waits for B to hear of a change to alice's devices (an earlier change, from
    # the upload or the join, may come first), then looks at what B now serves.
    seen: dict[str, Any] = {}
    for _ in range(3):
        token = wait_for_device_list_change(bob, token, alice.user_id)
        device = query(bob, alice.user_id)["device_keys"][alice.user_id][alice.device_id]
        seen = device["signatures"][alice.user_id]
        if seen == expected:
            break
    assert seen == expected
