"""Room aliases, directory visibility and /publicRooms through the Client-Server API."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, join, room_path


def _alias(node: NodeProcess, name: str = "") -> str:
    return f"#{name or 'a' + uuid.uuid4().hex[:10]}:{node.server_name}"


def _alias_path(alias: str) -> str:
    return f"{V3}/directory/room/{quote(alias)}"


# -- aliases ------------------------------------------------------------------------------------
def test_alias_can_be_created_resolved_and_deleted(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    alias = _alias(node)
    assert alice.put(_alias_path(alias), {"room_id": room_id}) == {} and alice.status == 200
    resolved = node.client().get(_alias_path(alias))
    assert resolved == {"room_id": room_id, "servers": [node.server_name]}
    assert alice.get(room_path(room_id, "aliases")) == {"aliases": [alias]}
    assert alice.delete(_alias_path(alias)) == {} and alice.status == 200
    body = alice.get(_alias_path(alias))
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_existing_alias_conflicts(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    alias = _alias(node)
    alice.put(_alias_path(alias), {"room_id": room_id})
    body = alice.put(_alias_path(alias), {"room_id": room_id})
    assert alice.status == 409 and body["errcode"] == "M_UNKNOWN"


def test_alias_of_another_server_or_malformed_is_invalid(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    for alias in ("#x:elsewhere.example", "nohash:" + node.server_name, "#a b:" + node.server_name):
        body = alice.put(_alias_path(alias), {"room_id": room_id})
        assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM", alias


def test_alias_needs_room_id_and_known_room(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(_alias_path(_alias(node)), {})
    assert alice.status == 400 and body["errcode"] == "M_MISSING_PARAM"
    body = alice.put(_alias_path(_alias(node)), {"room_id": "!nowhere:" + node.server_name})
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_alias_for_a_room_you_are_not_in_is_forbidden(node: NodeProcess) -> None:
    alice, mallory = node.register(), node.register()
    room_id = create_room(alice)
    body = mallory.put(_alias_path(_alias(node)), {"room_id": room_id})
    assert mallory.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_deleting_an_unknown_alias_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.delete(_alias_path(_alias(node)))
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_member_without_power_cannot_delete_someone_elses_alias(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    alias = _alias(node)
    alice.put(_alias_path(alias), {"room_id": room_id})
    body = bob.delete(_alias_path(alias))
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_alias_creator_may_delete_and_room_moderator_too(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    bobs, alices = _alias(node), _alias(node)
    bob.put(_alias_path(bobs), {"room_id": room_id})
    alice.put(_alias_path(alices), {"room_id": room_id})
    assert bob.delete(_alias_path(bobs)) == {} and bob.status == 200
    bob.put(_alias_path(bobs), {"room_id": room_id})
    assert alice.delete(_alias_path(bobs)) == {} and alice.status == 200


def test_deleting_the_canonical_alias_updates_the_room(node: NodeProcess) -> None:
    alice = node.register()
    name = "canon" + uuid.uuid4().hex[:8]
    room_id = create_room(alice, room_alias_name=name)
    alias = _alias(node, name)
    assert alice.get(room_path(room_id, "state/m.room.canonical_alias")) == {"alias": alias}
    alice.delete(_alias_path(alias))
    assert alice.status == 200
    assert alice.get(room_path(room_id, "state/m.room.canonical_alias")) == {}


def test_node_admin_may_delete_any_alias(node: NodeProcess) -> None:
    alice, admin = node.register(), node.admin()
    room_id = create_room(alice)
    alias = _alias(node)
    alice.put(_alias_path(alias), {"room_id": room_id})
    assert admin.delete(_alias_path(alias)) == {} and admin.status == 200
    assert alice.get(_alias_path(alias)) and alice.status == 404


def test_node_admin_may_publish_a_room_they_are_not_in(node: NodeProcess) -> None:
    alice, admin = node.register(), node.admin()
    room_id = create_room(alice)
    path = f"{V3}/directory/list/room/{quote(room_id)}"
    assert admin.put(path, {"visibility": "public"}) == {} and admin.status == 200
    assert node.client().get(path) == {"visibility": "public"}


def test_room_aliases_are_hidden_from_non_members(node: NodeProcess) -> None:
    alice, mallory = node.register(), node.register()
    room_id = create_room(alice)
    body = mallory.get(room_path(room_id, "aliases"))
    assert mallory.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_world_readable_room_aliases_are_visible_to_anyone(node: NodeProcess) -> None:
    alice, visitor = node.register(), node.register()
    room_id = create_room(alice, initial_state=[{
        "type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}])
    assert visitor.get(room_path(room_id, "aliases")) == {"aliases": []}


# -- directory visibility -----------------------------------------------------------------------
def test_visibility_follows_create_room_and_can_be_changed(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    path = f"{V3}/directory/list/room/{quote(room_id)}"
    assert node.client().get(path) == {"visibility": "private"}
    assert alice.put(path, {"visibility": "public"}) == {} and alice.status == 200
    assert node.client().get(path) == {"visibility": "public"}
    alice.put(path, {"visibility": "private"})
    assert node.client().get(path) == {"visibility": "private"}


def test_visibility_of_unknown_room_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    path = f"{V3}/directory/list/room/{quote('!nowhere:' + node.server_name)}"
    body = alice.get(path)
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"
    body = alice.put(path, {"visibility": "public"})
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_visibility_change_needs_power_and_a_valid_value(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    path = f"{V3}/directory/list/room/{quote(room_id)}"
    body = bob.put(path, {"visibility": "public"})
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"
    body = alice.put(path, {"visibility": "hidden"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


# -- /publicRooms -------------------------------------------------------------------------------
def _public_room(client: Client, name: str, **extra: Any) -> str:
    return create_room(client, visibility="public", preset="public_chat", name=name, **extra)


def _all_public(client: Client, **filters: Any) -> list[dict[str, Any]]:
    body = client.post(f"{V3}/publicRooms", {"filter": filters} if filters else {})
    assert client.status == 200, body
    return list(body["chunk"])


def test_public_room_chunk_has_the_spec_fields(node: NodeProcess) -> None:
    alice = node.register()
    tag = uuid.uuid4().hex[:8]
    name = "alias" + tag
    room_id = _public_room(alice, f"Budget {tag}", topic="FY27", room_alias_name=name)
    chunk = [c for c in _all_public(alice) if c["room_id"] == room_id][0]
    assert chunk == {
        "room_id": room_id, "name": f"Budget {tag}", "topic": "FY27",
        "canonical_alias": _alias(node, name), "num_joined_members": 1,
        "world_readable": False, "guest_can_join": False, "join_rule": "public"}


def test_private_rooms_are_not_listed(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice, name="secret")
    assert room_id not in [c["room_id"] for c in _all_public(alice)]


def test_search_term_matches_name_topic_and_alias(node: NodeProcess) -> None:
    alice = node.register()
    tag = uuid.uuid4().hex[:8]
    by_name = _public_room(alice, f"Harvest {tag}")
    by_topic = _public_room(alice, "x", topic=f"about {tag.upper()}")
    _public_room(alice, "unrelated")
    found = {c["room_id"] for c in _all_public(alice, generic_search_term=tag)}
    assert found == {by_name, by_topic}


def test_room_type_filter(node: NodeProcess) -> None:
    alice = node.register()
    tag = uuid.uuid4().hex[:8]
    space = _public_room(alice, f"space {tag}", creation_content={"type": "m.space"})
    plain = _public_room(alice, f"plain {tag}")
    spaces = _all_public(alice, generic_search_term=tag, room_types=["m.space"])
    assert [c["room_id"] for c in spaces] == [space] and spaces[0]["room_type"] == "m.space"
    plains = _all_public(alice, generic_search_term=tag, room_types=[None])
    assert [c["room_id"] for c in plains] == [plain]


def test_rooms_are_ordered_by_members_and_paginate_both_ways(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    tag = uuid.uuid4().hex[:8]
    rooms = [_public_room(alice, f"page {tag} {i}") for i in range(5)]
    join(bob, rooms[3])
    search = {"generic_search_term": tag}
    body = alice.post(f"{V3}/publicRooms", {"limit": 2, "filter": search})
    assert body["chunk"][0]["room_id"] == rooms[3] and body["total_room_count_estimate"] == 5
    assert "prev_batch" not in body
    seen = [c["room_id"] for c in body["chunk"]]
    page = body
    while "next_batch" in page:
        page = alice.post(f"{V3}/publicRooms",
                          {"limit": 2, "filter": search, "since": page["next_batch"]})
        seen += [c["room_id"] for c in page["chunk"]]
    assert len(seen) == 5 and set(seen) == set(rooms)
    back = alice.post(f"{V3}/publicRooms",
                      {"limit": 2, "filter": search, "since": page["prev_batch"]})
    assert [c["room_id"] for c in back["chunk"]] == seen[2:4]


def test_get_public_rooms_takes_limit_and_since(node: NodeProcess) -> None:
    alice = node.register()
    _public_room(alice, "one")
    _public_room(alice, "two")
    first = alice.get(f"{V3}/publicRooms", params={"limit": "1"})
    assert alice.status == 200 and len(first["chunk"]) == 1 and "next_batch" in first
    second = alice.get(f"{V3}/publicRooms", params={"limit": "1", "since": first["next_batch"]})
    assert second["chunk"][0]["room_id"] != first["chunk"][0]["room_id"]


def test_bad_public_rooms_queries_are_refused(node: NodeProcess) -> None:
    alice = node.register()
    for params in ({"limit": "many"}, {"limit": "0"}, {"since": "garbage"}):
        body = alice.get(f"{V3}/publicRooms", params=params)
        assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM", params
    body = alice.get(f"{V3}/publicRooms", params={"server": "elsewhere.example"})
    assert alice.status == 403 and body["errcode"] == "M_FORBIDDEN"  # not a federation peer
    body = alice.post(f"{V3}/publicRooms", {"limit": "ten"})
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"
    body = alice.post(f"{V3}/publicRooms", {"include_all_networks": True,
                                            "third_party_instance_id": "irc"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_no_bridged_network_has_rooms(node: NodeProcess) -> None:
    alice = node.register()
    _public_room(alice, "local")
    body = alice.post(f"{V3}/publicRooms", {"third_party_instance_id": "irc"})
    assert alice.status == 200 and body["chunk"] == []


def test_public_rooms_need_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.get(f"{V3}/publicRooms")
    assert anonymous.status == 401 and body["errcode"] == "M_MISSING_TOKEN"


def test_directory_works_on_both_engines(any_node: NodeProcess) -> None:
    alice = any_node.register()
    tag = uuid.uuid4().hex[:8]
    room_id = _public_room(alice, f"engine {tag}")
    alias = _alias(any_node)
    alice.put(_alias_path(alias), {"room_id": room_id})
    assert alice.get(_alias_path(alias))["room_id"] == room_id
    assert [c["room_id"] for c in _all_public(alice, generic_search_term=tag)] == [room_id]
    alice.put(f"{V3}/directory/list/room/{quote(room_id)}", {"visibility": "private"})
    assert _all_public(alice, generic_search_term=tag) == []
