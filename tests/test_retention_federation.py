"""Other servers get an expired event's content no more than clients do: the events the room's
history is served to servers through (/event, /backfill, /get_missing_events) come pruned, as
a redaction prunes them, once expired on the node's clock, before any purge ran, and so do
queued copies as they leave; younger events and state events come whole; both engines."""

from __future__ import annotations

from typing import Any

from protocol.hashing import compute_event_id
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for
from tests.retention_room import Room

LIFETIME_S = 3600
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": f"{LIFETIME_S}s"},
             "purge_interval": "10m"}
PEER = "peer.test"

engine = engines({"retention": RETENTION})


def served(local: InProcessNode, room: Room, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The PDUs a server is sent of these events, by event ID."""
    live = local.run(local.node.rooms.get_room(room.room_id))
    found = local.run(local.node.stores.events.get_events(event_ids))
    pdus = local.run(local.node.visibility.pdus_for_server(
        live, PEER, [found[e] for e in event_ids]))
    return dict(zip(event_ids, pdus, strict=True))


def name_event(local: InProcessNode, room: Room) -> str:
    live = local.run(local.node.rooms.get_room(room.room_id))
    return str(live.state[("m.room.name", "")].event_id)


def test_an_expired_message_is_served_to_servers_pruned_before_the_purge(
        engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    old = room.send("expired minutes")
    run_for(local, LIFETIME_S + 1)
    pdu = served(local, room, [old])[old]
    assert (pdu["content"], local.node.retention_purge.counts.runs) == ({}, 0)


def test_a_pruned_expired_message_keeps_its_event_id(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    old = room.send("expired minutes")
    run_for(local, LIFETIME_S + 1)
    pdu = served(local, room, [old])[old]
    live = local.run(local.node.rooms.get_room(room.room_id))
    assert compute_event_id(pdu, live.room_version) == old


def test_a_young_message_and_an_old_state_event_are_served_whole(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    run_for(local, LIFETIME_S + 1)  # the room's state events are past the lifetime
    young = room.send("still young")
    name = name_event(local, room)
    pdus = served(local, room, [young, name])
    assert (pdus[young]["content"]["body"], pdus[name]["content"]) == (
        "still young", {"name": "Kept"})


def test_servers_get_an_expired_message_whole_while_retention_is_disabled(
        tmp_path: Any) -> None:
    local = InProcessNode(tmp_path, config={"retention": {**RETENTION, "enabled": False}})
    try:
        room = Room(local)
        old = room.send("kept for ever")
        run_for(local, LIFETIME_S + 1)
        assert served(local, room, [old])[old]["content"]["body"] == "kept for ever"
    finally:
        local.close()


def test_an_expired_message_still_queued_is_pruned_as_it_leaves(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    old = room.send("expired minutes")
    run_for(local, LIFETIME_S + 1)
    young = room.send("just sent")
    found = local.run(local.node.stores.events.get_events([old, young]))
    sent = local.node.retention.prune_expired(
        [found[old].pdu, found[young].pdu], local.node.rooms.registry.cached)
    assert (sent[0]["content"], sent[1]["content"]["body"]) == ({}, "just sent")
