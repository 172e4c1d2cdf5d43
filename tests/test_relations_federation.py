"""Relations across two nodes of ours (real processes): the relations of another server's
events are indexed as they arrive, so /relations and /threads on the receiving node list them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import Client, NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.room_helpers import room_path
from tests.test_federation_rooms import wait_for
from tests.test_message_tags_federation import shared_room

V1 = "/_matrix/client/v1"


@pytest.fixture(scope="module", params=ENGINES)
def pair(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with two_nodes(request.param, tmp_path_factory, "relations", {}) as nodes:
        yield nodes


def _send(client: Client, room_id: str, content: dict[str, Any],
          event_type: str = "m.room.message") -> str:
    answer = client.put(room_path(room_id, f"send/{event_type}/{uuid.uuid4().hex}"), content)
    assert client.status == 200, answer
    return str(answer["event_id"])


def test_relations_sent_on_one_node_are_listed_on_the_other(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = shared_room(*pair)
    root = _send(alice, room_id, {"msgtype": "m.text", "body": "root"})
    reply = _send(alice, room_id, {"msgtype": "m.text", "body": "reply", "m.relates_to": {
        "rel_type": "m.thread", "event_id": root}})
    reaction = _send(alice, room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": root, "key": "👍"}}, "m.reaction")
    wait_for(bob, room_id, lambda e: e["event_id"] == reaction)
    listed = bob.get(f"{V1}/rooms/{quote(room_id)}/relations/{quote(root)}")
    assert bob.status == 200, listed
    assert [e["event_id"] for e in listed["chunk"]] == [reaction, reply]
    threads = bob.get(f"{V1}/rooms/{quote(room_id)}/threads")
    assert bob.status == 200, threads
    assert [e["event_id"] for e in threads["chunk"]] == [root]
    summary = threads["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["latest_event"]["event_id"] == reply and summary["count"] == 1
    assert summary["current_user_participated"] is False
