"""A room shared between a Synapse homeserver and one of our nodes, in both directions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room, room_path, send_text
from tests.synapse_harness import SYNAPSE_ENV, SYNAPSE_SKIP, SynapseProcess
from tests.test_federation_rooms import wait_for


@pytest.fixture(scope="module")
def with_synapse(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, SynapseProcess]]:
    python = os.environ.get(SYNAPSE_ENV)
    if not python:
        pytest.skip(SYNAPSE_SKIP)
    synapse = SynapseProcess(Path(tmp_path_factory.mktemp("synapse")), python)
    ours = NodeProcess(Path(tmp_path_factory.mktemp("ours")), federation=True)
    ours.allow_servers(synapse.server_name)
    synapse.allow(ours.server_name)
    synapse.start()
    ours.start()
    try:
        yield ours, synapse
    finally:
        ours.stop()
        synapse.stop()


def test_our_user_joins_a_synapse_room(with_synapse: tuple[NodeProcess, SynapseProcess]
                                       ) -> None:
    ours, synapse = with_synapse
    sam, olga = synapse.register(), ours.register()
    room_id = create_room(sam, preset="public_chat", name="Made on Synapse")
    body = olga.post(f"{V3}/join/{quote(room_id)}", {},
                     params={"server_name": synapse.server_name})
    assert olga.status == 200, (body, synapse.log()[-5000:])
    assert olga.get(room_path(room_id, "state/m.room.name")) == {"name": "Made on Synapse"}
    send_text(sam, room_id, "hello from synapse")
    wait_for(olga, room_id, lambda e: e["content"].get("body") == "hello from synapse")
    send_text(olga, room_id, "hello from the broker")
    wait_for(sam, room_id, lambda e: e["content"].get("body") == "hello from the broker")


def test_synapse_user_joins_our_room(with_synapse: tuple[NodeProcess, SynapseProcess]) -> None:
    ours, synapse = with_synapse
    olga, sam = ours.register(), synapse.register()
    room_id = create_room(olga, preset="public_chat", name="Made here")
    body = sam.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": ours.server_name})
    assert sam.status == 200, (body, synapse.log()[-5000:])
    send_text(olga, room_id, "ping")
    wait_for(sam, room_id, lambda e: e["content"].get("body") == "ping")
    send_text(sam, room_id, "pong")
    wait_for(olga, room_id, lambda e: e["content"].get("body") == "pong")
