"""Message tags across two nodes of ours (real processes): tags travel with the message and
filter history on the other node too, a tag only the sending node knows is taken as sent, and an
auto-delete message is redacted on the other node as well, its content gone there."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from broker.filtering import TAGS_FILTER
from broker.message_tags import LIFETIME_FIELD, TAGS_FIELD
from tests.node_harness import Client, NodeProcess
from tests.peer_env import two_nodes
from tests.room_helpers import V3, create_room, room_path
from tests.test_federation_rooms import wait_for

# Node a: its own tag, and lifetimes from one second, checked every second.
A_CONFIG = {"tags.custom": ["a-only"],
            "tags.auto_delete": {"min_seconds": 1, "default_seconds": 1, "check_seconds": 1}}


@pytest.fixture(scope="module")
def tagged_pair(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Node a with A_CONFIG, node b with the defaults, federating with each other."""
    with two_nodes("sqlite", tmp_path_factory, "tags", A_CONFIG, b_overrides={}) as pair:
        yield pair


def shared_room(a: NodeProcess, b: NodeProcess) -> tuple[Client, Client, str]:
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="public_chat")
    bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200
    return alice, bob, room_id


def send(client: Client, room_id: str, body: str, *tags: str, **fields: Any) -> str:
    answer = client.put(room_path(room_id, f"send/m.room.message/{uuid.uuid4().hex}"),
                        {"msgtype": "m.text", "body": body, TAGS_FIELD: list(tags), **fields})
    assert client.status == 200, answer
    return str(answer["event_id"])


def test_tags_travel_with_the_message_and_filter_history_on_the_other_node(
        tagged_pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = shared_room(*tagged_pair)
    send(alice, room_id, "routine", "for_information")
    send(alice, room_id, "act now", "action_required")
    wait_for(bob, room_id, lambda e: e["content"].get("body") == "act now")
    flt = json.dumps({TAGS_FILTER: ["action_required"]})
    chunk = bob.get(room_path(room_id, "messages"), params={"dir": "b", "filter": flt})["chunk"]
    assert [e["content"]["body"] for e in chunk] == ["act now"]
    assert chunk[0]["content"][TAGS_FIELD] == ["action_required"]


def test_a_tag_only_the_sending_node_knows_is_taken_as_sent(
        tagged_pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = shared_room(*tagged_pair)
    send(alice, room_id, "local mark", "a-only")
    seen = wait_for(bob, room_id, lambda e: e["content"].get("body") == "local mark")
    assert [e["content"][TAGS_FIELD] for e in seen
            if e["content"].get("body") == "local mark"] == [["a-only"]]
    refused = bob.put(room_path(room_id, f"send/m.room.message/{uuid.uuid4().hex}"),
                      {"msgtype": "m.text", "body": "x", TAGS_FIELD: ["a-only"]})
    assert bob.status == 400 and refused["errcode"] == "M_INVALID_PARAM"


def test_an_auto_delete_message_is_redacted_on_the_other_node_too(
        tagged_pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = shared_room(*tagged_pair)
    event_id = send(alice, room_id, "ephemeral", "auto_delete", **{LIFETIME_FIELD: 1000})
    wait_for(bob, room_id, lambda e: e["type"] == "m.room.redaction"
             and event_id in (e.get("redacts"), e["content"].get("redacts")))
    seen = bob.get(room_path(room_id, f"event/{quote(event_id)}"))
    assert bob.status == 200 and seen["content"] == {}
