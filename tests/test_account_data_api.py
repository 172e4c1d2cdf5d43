"""Account data and room tag endpoints against a running node."""

from __future__ import annotations

from typing import Any

import pytest

from tests.node_harness import Client, NodeProcess

V3 = "/_matrix/client/v3"
ROOM = "!someroom:example.org"


def global_path(client: Client, data_type: str, user_id: str | None = None) -> str:
    return f"{V3}/user/{user_id or client.user_id}/account_data/{data_type}"


def room_path(client: Client, data_type: str, room_id: str = ROOM) -> str:
    return f"{V3}/user/{client.user_id}/rooms/{room_id}/account_data/{data_type}"


def tags_path(client: Client, room_id: str = ROOM, user_id: str | None = None) -> str:
    return f"{V3}/user/{user_id or client.user_id}/rooms/{room_id}/tags"


# -- account data -------------------------------------------------------------------------------

def test_global_account_data_round_trips(any_node: NodeProcess) -> None:
    alice = any_node.register()
    assert alice.put(global_path(alice, "org.example.cfg"), {"theme": "dark"}) == {}
    assert alice.status == 200
    assert alice.get(global_path(alice, "org.example.cfg")) == {"theme": "dark"}


def test_room_account_data_round_trips_and_is_separate(any_node: NodeProcess) -> None:
    alice = any_node.register()
    alice.put(room_path(alice, "org.example.cfg"), {"room": True})
    assert alice.status == 200
    assert alice.get(room_path(alice, "org.example.cfg")) == {"room": True}
    alice.get(global_path(alice, "org.example.cfg"))
    assert alice.status == 404


def test_overwriting_account_data_replaces_it(node: NodeProcess) -> None:
    alice = node.register()
    alice.put(global_path(alice, "t"), {"a": 1})
    alice.put(global_path(alice, "t"), {"b": 2})
    assert alice.get(global_path(alice, "t")) == {"b": 2}


def test_unset_account_data_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(global_path(alice, "org.example.never"))
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")
    body = alice.get(room_path(alice, "org.example.never"))
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_other_users_account_data_is_forbidden(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    alice.put(global_path(alice, "t"), {"secret": 1})
    body = bob.get(global_path(bob, "t", alice.user_id))
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")
    body = bob.put(global_path(bob, "t", alice.user_id), {"x": 1})
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert alice.get(global_path(alice, "t")) == {"secret": 1}


def test_account_data_needs_an_access_token(node: NodeProcess) -> None:
    alice = node.register()
    anonymous = node.client()
    body = anonymous.get(global_path(alice, "t"))
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"\"text\"", b"not json", b""])
def test_account_data_content_must_be_a_json_object(node: NodeProcess, raw: bytes) -> None:
    alice = node.register()
    body = alice.put(global_path(alice, "t"), raw=raw,
                     headers={"Content-Type": "application/json"})
    assert (alice.status, body["errcode"]) == (400, "M_NOT_JSON")


@pytest.mark.parametrize("data_type", ["m.fully_read", "m.push_rules"])
def test_server_controlled_types_are_refused(node: NodeProcess, data_type: str) -> None:
    alice = node.register()
    body = alice.put(global_path(alice, data_type), {"event_id": "$x"})
    assert (alice.status, body["errcode"]) == (405, "M_BAD_JSON")
    body = alice.put(room_path(alice, data_type), {"event_id": "$x"})
    assert (alice.status, body["errcode"]) == (405, "M_BAD_JSON")


def test_room_account_data_needs_a_room_id(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(room_path(alice, "t", "@notaroom:example.org"), {"a": 1})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")
    body = alice.get(room_path(alice, "t", "%23alias:example.org"))
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_overlong_account_data_type_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(global_path(alice, "x" * 300), {"a": 1})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


# -- tags ---------------------------------------------------------------------------------------

def test_room_without_tags_has_empty_tags(node: NodeProcess) -> None:
    alice = node.register()
    assert alice.get(tags_path(alice)) == {"tags": {}}


def test_add_list_and_remove_tags(any_node: NodeProcess) -> None:
    alice = any_node.register()
    assert alice.put(tags_path(alice) + "/m.favourite", {"order": 0.25}) == {}
    alice.put(tags_path(alice) + "/u.work", {})
    assert alice.get(tags_path(alice)) == {
        "tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
    assert alice.delete(tags_path(alice) + "/m.favourite") == {}
    assert alice.status == 200
    assert alice.get(tags_path(alice)) == {"tags": {"u.work": {}}}


def test_tags_are_room_account_data_m_tag(node: NodeProcess) -> None:
    alice = node.register()
    alice.put(tags_path(alice) + "/m.lowpriority", {"order": 1})
    assert alice.get(room_path(alice, "m.tag")) == {"tags": {"m.lowpriority": {"order": 1}}}


def test_tags_are_per_room(node: NodeProcess) -> None:
    alice = node.register()
    alice.put(tags_path(alice, "!one:example.org") + "/u.a", {})
    assert alice.get(tags_path(alice, "!two:example.org")) == {"tags": {}}


def test_deleting_an_absent_tag_succeeds(node: NodeProcess) -> None:
    alice = node.register()
    assert alice.delete(tags_path(alice) + "/u.never") == {}
    assert alice.status == 200


@pytest.mark.parametrize("order", [-0.1, 1.5, 2])
def test_tag_order_must_be_between_0_and_1(node: NodeProcess, order: Any) -> None:
    alice = node.register()
    body = alice.put(tags_path(alice) + "/u.x", {"order": order})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")
    assert alice.get(tags_path(alice)) == {"tags": {}}


@pytest.mark.parametrize("order", ["0.5", True, None, [0.5]])
def test_tag_order_must_be_a_number(node: NodeProcess, order: Any) -> None:
    alice = node.register()
    body = alice.put(tags_path(alice) + "/u.x", {"order": order})
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_overlong_tag_name_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(tags_path(alice) + "/u." + "x" * 260, {})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_other_users_tags_are_forbidden(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    body = bob.get(tags_path(bob, user_id=alice.user_id))
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")
    body = bob.put(tags_path(bob, user_id=alice.user_id) + "/u.x", {})
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")
    body = bob.delete(tags_path(bob, user_id=alice.user_id) + "/u.x")
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_tags_need_a_room_id(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(tags_path(alice, "notaroom") + "/u.x", {})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_account_data_change_appears_in_incremental_sync(node: NodeProcess) -> None:
    alice = node.register()
    since = alice.get(f"{V3}/sync", params={"timeout": 0})["next_batch"]
    alice.put(global_path(alice, "org.example.synced"), {"n": 1})
    body = alice.get(f"{V3}/sync", params={"timeout": 0, "since": since})
    assert alice.status == 200
    assert {"type": "org.example.synced", "content": {"n": 1}} in body["account_data"]["events"]
