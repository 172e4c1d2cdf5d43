"""User directory search through the Client-Server API."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, join

SEARCH = f"{V3}/user_directory/search"


def _named(node: NodeProcess, display_name: str, localpart: str | None = None) -> Client:
    client = node.register(localpart)
    client.put(f"{V3}/profile/{quote(client.user_id)}/displayname",
               {"displayname": display_name})
    assert client.status == 200
    return client


def _ids(body: dict[str, Any]) -> list[str]:
    return [result["user_id"] for result in body["results"]]


def test_room_mates_are_found_by_display_name_word(node: NodeProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    alice = node.register()
    bob = _named(node, f"Bob {tag}")
    room_id = create_room(alice)
    alice.post(f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": bob.user_id})
    join(bob, room_id)
    body = alice.post(SEARCH, {"search_term": tag.upper()})
    assert alice.status == 200 and body == {
        "limited": False, "results": [{"user_id": bob.user_id, "display_name": f"Bob {tag}"}]}


def test_members_of_public_rooms_are_found_by_localpart(node: NodeProcess) -> None:
    localpart = "pub" + uuid.uuid4().hex[:8]
    carol = node.register(localpart)
    create_room(carol, visibility="public", preset="public_chat")
    searcher = node.register()
    assert _ids(searcher.post(SEARCH, {"search_term": localpart})) == [carol.user_id]


def test_users_sharing_nothing_are_not_found(node: NodeProcess) -> None:
    localpart = "hid" + uuid.uuid4().hex[:8]
    dave = node.register(localpart)
    create_room(dave)
    searcher = node.register()
    assert searcher.post(SEARCH, {"search_term": localpart}) == {"results": [], "limited": False}


def test_limit_caps_results_and_sets_limited(node: NodeProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    owner = _named(node, f"{tag} owner")
    room_id = create_room(owner, visibility="public", preset="public_chat")
    for i in range(2):
        join(_named(node, f"{tag} member{i}"), room_id)
    searcher = node.register()
    body = searcher.post(SEARCH, {"search_term": tag, "limit": 2})
    assert len(body["results"]) == 2 and body["limited"] is True
    body = searcher.post(SEARCH, {"search_term": tag})
    assert len(body["results"]) == 3 and body["limited"] is False


def test_bad_search_requests_are_refused(node: NodeProcess) -> None:
    searcher = node.register()
    body = searcher.post(SEARCH, {})
    assert searcher.status == 400 and body["errcode"] == "M_MISSING_PARAM"
    body = searcher.post(SEARCH, {"search_term": 5})
    assert searcher.status == 400 and body["errcode"] == "M_BAD_JSON"
    body = searcher.post(SEARCH, {"search_term": "x", "limit": 0})
    assert searcher.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_search_needs_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.post(SEARCH, {"search_term": "x"})
    assert anonymous.status == 401 and body["errcode"] == "M_MISSING_TOKEN"


def test_search_works_on_both_engines(any_node: NodeProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    erin = _named(any_node, f"Erin {tag}")
    create_room(erin, visibility="public", preset="public_chat")
    searcher = any_node.register()
    body = searcher.post(SEARCH, {"search_term": f"eri {tag[:4]}"})
    assert _ids(body) == [erin.user_id]
