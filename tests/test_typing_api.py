"""Typing notifications through the Client-Server API and /sync."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import create_room, join, room_path, sync


def _typing(client: Client, room_id: str, body: Any, user_id: str | None = None) -> Any:
    return client.put(room_path(room_id, f"typing/{quote(user_id or client.user_id)}"), body)


def _typing_users(response: dict[str, Any], room_id: str) -> list[str] | None:
    room = response.get("rooms", {}).get("join", {}).get(room_id, {})
    for event in room.get("ephemeral", {}).get("events", []):
        if event["type"] == "m.typing":
            return list(event["content"]["user_ids"])
    return None


def _pair(node: NodeProcess) -> tuple[Client, Client, str]:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    return alice, bob, room_id


def test_typing_reaches_other_members_and_stops(node: NodeProcess) -> None:
    alice, bob, room_id = _pair(node)
    since = sync(alice)["next_batch"]
    assert _typing(bob, room_id, {"typing": True, "timeout": 30000}) == {}
    first = sync(alice, since, timeout=5000)
    assert _typing_users(first, room_id) == [bob.user_id]
    _typing(bob, room_id, {"typing": False})
    assert bob.status == 200
    second = sync(alice, first["next_batch"], timeout=5000)
    assert _typing_users(second, room_id) == []


def test_typing_expires_after_its_timeout(node: NodeProcess) -> None:
    alice, bob, room_id = _pair(node)
    _typing(bob, room_id, {"typing": True, "timeout": 200})
    since = sync(alice)["next_batch"]
    later = sync(alice, since, timeout=5000)
    assert _typing_users(later, room_id) == []


def test_typing_for_someone_else_is_forbidden(node: NodeProcess) -> None:
    alice, bob, room_id = _pair(node)
    body = _typing(bob, room_id, {"typing": True}, user_id=alice.user_id)
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_typing_outside_the_room_is_forbidden(node: NodeProcess) -> None:
    _alice, _bob, room_id = _pair(node)
    carol = node.register()
    body = _typing(carol, room_id, {"typing": True})
    assert carol.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_typing_flag_is_required_and_boolean(node: NodeProcess) -> None:
    _alice, bob, room_id = _pair(node)
    body = _typing(bob, room_id, {"timeout": 1000})
    assert bob.status == 400 and body["errcode"] == "M_MISSING_PARAM"
    body = _typing(bob, room_id, {"typing": "yes"})
    assert bob.status == 400 and body["errcode"] == "M_BAD_JSON"
    body = _typing(bob, room_id, {"typing": True, "timeout": "soon"})
    assert bob.status == 400 and body["errcode"] == "M_BAD_JSON"
    body = _typing(bob, room_id, {"typing": True, "timeout": -5})
    assert bob.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_typing_needs_an_access_token(node: NodeProcess) -> None:
    alice, _bob, room_id = _pair(node)
    anonymous = node.client()
    body = _typing(anonymous, room_id, {"typing": True}, user_id=alice.user_id)
    assert anonymous.status == 401 and body["errcode"] == "M_MISSING_TOKEN"
