"""Other servers' profiles are remembered, across two real nodes of ours (both engines): node
B answers a profile of node A's user from memory for five minutes, and forgets it as soon as a
membership event of that user arrives restating their profile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import Client, NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.test_federation_rooms import wait_for
from tests.test_message_tags_federation import shared_room

PROFILE = "/_matrix/client/v3/profile"


@pytest.fixture(scope="module", params=ENGINES)
def pair(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with two_nodes(request.param, tmp_path_factory, "remote_profiles", {}) as nodes:
        yield nodes


def _name(reader: Client, user_id: str) -> Any:
    answer = reader.get(f"{PROFILE}/{quote(user_id)}")
    assert reader.status == 200, answer
    return answer.get("displayname")


def _rename(user: Client, name: str) -> None:
    user.put(f"{PROFILE}/{quote(user.user_id)}/displayname", {"displayname": name})
    assert user.status == 200


def test_a_remote_profile_is_answered_from_memory(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    _rename(alice, "Alice One")
    assert _name(bob, alice.user_id) == "Alice One"
    _rename(alice, "Alice Two")  # in no room: no membership event tells node B
    assert _name(bob, alice.user_id) == "Alice One"


def _membership_named(name: str) -> Any:
    return lambda e: e["type"] == "m.room.member" and e["content"].get("displayname") == name


def test_a_membership_restating_the_profile_makes_it_read_again(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = shared_room(*pair)
    _rename(alice, "Before")
    wait_for(bob, room_id, _membership_named("Before"))
    assert _name(bob, alice.user_id) == "Before"
    _rename(alice, "After")
    wait_for(bob, room_id, _membership_named("After"))
    assert _name(bob, alice.user_id) == "After"


@pytest.fixture(scope="module")
def unremembering(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with two_nodes("sqlite", tmp_path_factory, "remote_profiles_ttl", {},
                   b_overrides={"remote_caches.profile_ttl_ms": 0}) as nodes:
        yield nodes


def test_a_profile_ttl_of_zero_asks_each_time(
        unremembering: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = unremembering
    alice, bob = a.register(), b.register()
    _rename(alice, "Alice One")
    assert _name(bob, alice.user_id) == "Alice One"
    _rename(alice, "Alice Two")
    assert _name(bob, alice.user_id) == "Alice Two"
