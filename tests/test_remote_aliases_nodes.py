"""Another server's room aliases in ``GET /_matrix/client/v3/directory/room/{roomAlias}``,
across two real nodes of ours (both engines): node B asks node A through the federation
directory query and remembers the answer for a minute; an alias A does not have is 404."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.room_helpers import create_room

DIRECTORY = "/_matrix/client/v3/directory/room"


@pytest.fixture(scope="module", params=ENGINES)
def pair(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with two_nodes(request.param, tmp_path_factory, "remote_aliases", {}) as nodes:
        yield nodes


def test_a_remote_alias_resolves_through_its_server_and_is_remembered(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice = a.register()
    room_id = create_room(alice, preset="public_chat")
    alias = f"#room-{uuid.uuid4().hex[:8]}:{a.server_name}"
    alice.put(f"{DIRECTORY}/{quote(alias)}", {"room_id": room_id})
    assert alice.status == 200
    bob = b.register()
    answer = bob.get(f"{DIRECTORY}/{quote(alias)}")
    assert bob.status == 200, answer
    assert answer == {"room_id": room_id, "servers": [a.server_name]}
    alice.delete(f"{DIRECTORY}/{quote(alias)}")
    assert alice.status == 200
    assert bob.get(f"{DIRECTORY}/{quote(alias)}") == answer  # remembered, not asked again


def test_an_alias_its_server_does_not_have_is_not_found(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    bob = b.register()
    answer = bob.get(f"{DIRECTORY}/{quote(f'#nothing-here:{a.server_name}')}")
    assert (bob.status, answer["errcode"]) == (404, "M_NOT_FOUND")
