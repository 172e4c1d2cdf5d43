"""Device-list tracking on one node: /sync ``device_lists.changed`` / ``left`` and
``GET /keys/changes``."""

from __future__ import annotations

import pytest

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, join, room_path, sync
from tests.test_e2ee_keys_api import login, upload_device_keys


@pytest.fixture
def node(any_node: NodeProcess) -> NodeProcess:
    """Every test here runs against a node on each database engine."""
    return any_node


def _sharing_pair(node: NodeProcess) -> tuple[Client, Client, str]:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    return alice, bob, room_id


def _device_lists(body: dict) -> tuple[list[str], list[str]]:
    lists = body.get("device_lists", {})
    return lists.get("changed", []), lists.get("left", [])


def test_new_device_keys_of_a_room_member_appear_in_sync(node: NodeProcess) -> None:
    alice, bob, _ = _sharing_pair(node)
    since = sync(bob)["next_batch"]
    upload_device_keys(login(node, alice))
    changed, _ = _device_lists(sync(bob, since))
    assert alice.user_id in changed


def test_own_new_device_appears_in_own_sync(node: NodeProcess) -> None:
    alice = node.register()
    since = sync(alice)["next_batch"]
    upload_device_keys(login(node, alice))
    assert alice.user_id in _device_lists(sync(alice, since))[0]


def test_device_change_of_a_user_sharing_no_room_is_not_reported(node: NodeProcess) -> None:
    alice, stranger = node.register(), node.register()
    since = sync(stranger)["next_batch"]
    upload_device_keys(alice)
    assert alice.user_id not in _device_lists(sync(stranger, since))[0]


def test_deleted_device_of_a_room_member_appears_in_sync(node: NodeProcess) -> None:
    alice, bob, _ = _sharing_pair(node)
    second = login(node, alice)
    upload_device_keys(second)
    since = sync(bob)["next_batch"]
    second.post(f"{V3}/logout")
    assert alice.user_id in _device_lists(sync(bob, since))[0]


def test_long_poll_is_woken_by_a_device_list_change(node: NodeProcess) -> None:
    alice, bob, _ = _sharing_pair(node)
    since = sync(bob)["next_batch"]
    second = login(node, alice)
    waiting = bob.begin_get(f"{V3}/sync", {"since": since, "timeout": 30_000})
    assert not waiting.answered()
    upload_device_keys(second)
    # Woken, not timed out: the answer comes well inside the long-poll's 30 s.
    body = waiting.body(timeout=10)
    assert alice.user_id in _device_lists(body)[0]


def test_user_newly_sharing_a_room_appears_in_changed(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    since = sync(alice)["next_batch"]
    join(bob, room_id)
    assert bob.user_id in _device_lists(sync(alice, since))[0]


def test_user_leaving_the_last_shared_room_appears_in_left(node: NodeProcess) -> None:
    alice, bob, room_id = _sharing_pair(node)
    since = sync(alice)["next_batch"]
    bob.post(room_path(room_id, "leave"), {})
    assert bob.status == 200
    changed, left = _device_lists(sync(alice, since))
    assert bob.user_id in left and bob.user_id not in changed


def test_leaving_the_room_lists_its_members_in_left(node: NodeProcess) -> None:
    alice, bob, room_id = _sharing_pair(node)
    since = sync(bob)["next_batch"]
    bob.post(room_path(room_id, "leave"), {})
    assert alice.user_id in _device_lists(sync(bob, since))[1]


def test_member_still_sharing_another_room_is_not_in_left(node: NodeProcess) -> None:
    alice, bob, room_id = _sharing_pair(node)
    other = create_room(alice, preset="public_chat")
    join(bob, other)
    since = sync(alice)["next_batch"]
    bob.post(room_path(room_id, "leave"), {})
    assert bob.user_id not in _device_lists(sync(alice, since))[1]


def test_keys_changes_lists_users_whose_devices_changed_between_tokens(
        node: NodeProcess) -> None:
    alice, bob, _ = _sharing_pair(node)
    start = sync(bob)["next_batch"]
    upload_device_keys(alice)
    end = sync(bob, start)["next_batch"]
    body = bob.get(f"{V3}/keys/changes", params={"from": start, "to": end})
    assert bob.status == 200 and alice.user_id in body["changed"]
    later = bob.get(f"{V3}/keys/changes", params={"from": end, "to": end})
    assert later == {"changed": [], "left": []}


def test_keys_changes_needs_both_tokens(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"{V3}/keys/changes", params={"from": "s1_0"})
    assert alice.status == 400 and body["errcode"] == "M_MISSING_PARAM"


def test_keys_changes_refuses_a_malformed_token(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"{V3}/keys/changes", params={"from": "nonsense", "to": "s1_0"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"
