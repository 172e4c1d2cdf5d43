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


def _shared_room(ours: NodeProcess, synapse: SynapseProcess) -> tuple[Any, Any, str]:
    olga, sam = ours.register(), synapse.register()
    room_id = create_room(sam, preset="public_chat")
    olga.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": synapse.server_name})
    assert olga.status == 200
    wait_for(sam, room_id, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == olga.user_id)
    return olga, sam, room_id


def _wait_ephemeral(client: Any, room_id: str, event_type: str, predicate: Any,
                    timeout: float = 15.0) -> dict:
    import time

    from tests.room_helpers import sync

    deadline = time.monotonic() + timeout
    token = None
    while time.monotonic() < deadline:
        body = sync(client, token, timeout=1000)
        token = body["next_batch"]
        room = body["rooms"]["join"].get(room_id) or {}
        for event in room.get("ephemeral", {}).get("events", []):
            if event["type"] == event_type and predicate(event["content"]):
                return dict(event)
    raise AssertionError(f"no matching {event_type} in {room_id}")


def test_typing_flows_both_ways(with_synapse: tuple[NodeProcess, SynapseProcess]) -> None:
    olga, sam, room_id = _shared_room(*with_synapse)
    olga.put(room_path(room_id, f"typing/{quote(olga.user_id)}"), {"typing": True,
                                                                    "timeout": 10000})
    _wait_ephemeral(sam, room_id, "m.typing", lambda c: olga.user_id in c["user_ids"])
    sam.put(room_path(room_id, f"typing/{quote(sam.user_id)}"), {"typing": True,
                                                                  "timeout": 10000})
    _wait_ephemeral(olga, room_id, "m.typing", lambda c: sam.user_id in c["user_ids"])


def test_read_receipts_flow_both_ways(with_synapse: tuple[NodeProcess, SynapseProcess]) -> None:
    olga, sam, room_id = _shared_room(*with_synapse)
    event_id = send_text(sam, room_id, "please read")
    wait_for(olga, room_id, lambda e: e["event_id"] == event_id)
    olga.post(room_path(room_id, f"receipt/m.read/{quote(event_id)}"), {})
    assert olga.status == 200
    _wait_ephemeral(sam, room_id, "m.receipt",
                    lambda c: olga.user_id in c.get(event_id, {}).get("m.read", {}))
    reply = send_text(olga, room_id, "read it")
    wait_for(sam, room_id, lambda e: e["event_id"] == reply)
    sam.post(room_path(room_id, f"receipt/m.read/{quote(reply)}"), {})
    _wait_ephemeral(olga, room_id, "m.receipt",
                    lambda c: sam.user_id in c.get(reply, {}).get("m.read", {}))


def test_leaving_is_seen_on_the_other_server(with_synapse: tuple[NodeProcess, SynapseProcess]
                                             ) -> None:
    olga, sam, room_id = _shared_room(*with_synapse)
    olga.post(room_path(room_id, "leave"), {})
    assert olga.status == 200
    wait_for(sam, room_id, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == olga.user_id and e["content"]["membership"] == "leave")


def test_concurrent_state_changes_converge(with_synapse: tuple[NodeProcess, SynapseProcess]
                                          ) -> None:
    import threading

    olga, sam, room_id = _shared_room(*with_synapse)
    levels = sam.get(room_path(room_id, "state/m.room.power_levels"))
    levels.setdefault("users", {})[olga.user_id] = 50
    sam.put(room_path(room_id, "state/m.room.power_levels"), levels)
    wait_for(olga, room_id, lambda e: e["type"] == "m.room.power_levels"
             and e["content"].get("users", {}).get(olga.user_id) == 50)
    threads = [threading.Thread(target=c.put, args=(room_path(room_id, "state/m.room.topic"),
                                                    {"topic": f"set by {c.user_id}"}))
               for c in (olga, sam)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each side has both topics (its sync long-poll shows them), then each sends an event
    # whose prev_events join the two branches and waits to see the other's: both resolve the
    # same graph, so they must agree.
    for client in (olga, sam):
        for setter in (olga, sam):
            wait_for(client, room_id, lambda e, s=setter: e["type"] == "m.room.topic"
                     and e["content"].get("topic") == f"set by {s.user_id}")
    for sender, receiver in ((sam, olga), (olga, sam)):
        merge = send_text(sender, room_id, "merge")
        wait_for(receiver, room_id, lambda e, m=merge: e["event_id"] == m)
    ours_topic = olga.get(room_path(room_id, "state/m.room.topic"))
    assert ours_topic == sam.get(room_path(room_id, "state/m.room.topic"))
