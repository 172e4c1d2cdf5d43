"""The retention purge on the node's clock, both engines: the content of expired non-state
events leaves the database (and the live room's memory) in bounded batches, state events and
younger events stay, the room's DAG stays valid so the room keeps working, a purge stopped
midway goes on after a restart, and admins read what was purged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from broker.admin.statistics import rows_of
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for, stored_json
from tests.retention_room import Room
from tests.storage_helpers import result_of

LIFETIME_S = 3600
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": f"{LIFETIME_S}s"},
             "purge_interval": "10m"}


engine = engines({"retention": RETENTION})


def purge(local: InProcessNode) -> int:
    return local.settle(local.node.retention_purge.purge(), turns=200)


def stored_content(local: InProcessNode, event_id: str) -> Any:
    return json.loads(stored_json(local, event_id))["content"]


def extremities(local: InProcessNode, room_id: str) -> list[str]:
    rows = result_of(local.node.db.run_interaction(
        "test_extremities", lambda cur: cur.select_all(
            "SELECT event_id FROM forward_extremities WHERE room_id = ?", (room_id,))))
    return [row[0] for row in rows]


def record_batches(local: InProcessNode, fail_after: int | None = None) -> list[int]:
    """The sizes of the purge's batches from now on (``fail_after``: the store fails every
    batch after that many, as a crash would end the purge there)."""
    store = local.node.stores.retention
    real = store.purge_batch
    sizes: list[int] = []

    def recorded(room_id: str, before_ts: int, limit: int, *rest: Any) -> Any:
        if fail_after is not None and len(sizes) >= fail_after:
            raise RuntimeError("the node stops here")
        d = real(room_id, before_ts, limit, *rest)
        d.addCallback(lambda ids: (sizes.append(len(ids)), ids)[1])
        return d

    store.purge_batch = recorded  # type: ignore[method-assign]
    return sizes


def test_the_purge_removes_the_content_of_expired_events_only(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    old = room.send("secret minutes")
    run_for(local, LIFETIME_S / 2)
    young = room.send("still young")
    run_for(local, LIFETIME_S / 2 + 1)
    assert purge(local) == 1
    assert "secret minutes" not in stored_json(local, old)
    assert "still young" in stored_json(local, young)
    assert room.ok("GET", f"{room.path}/state/m.room.name/") == {"name": "Kept"}


def purged_room(engine: Engine, body: str) -> tuple[InProcessNode, Room, str]:
    """A room whose one message (``body``) has expired and been purged: node, room, event."""
    local = engine.node()
    room = Room(local)
    event_id = room.send(body)
    run_for(local, LIFETIME_S + 1)
    assert purge(local) == 1
    return local, room, event_id


def test_the_purge_removes_the_content_from_the_live_rooms_memory(engine: Engine) -> None:
    local, room, old = purged_room(engine, "secret minutes")
    live = local.run(local.node.rooms.get_room(room.room_id))
    assert [e.content for e in live.recent if e.event_id == old] == [{}]


def five_expired(engine: Engine) -> tuple[InProcessNode, list[str]]:
    """A node with five expired messages in a room, purged two at a time: node, events."""
    local = engine.node()
    room = Room(local)
    sent = [room.send(f"message {i}") for i in range(5)]
    run_for(local, LIFETIME_S + 1)
    local.node.retention_purge.batch = 2
    return local, sent


def test_the_purge_works_in_batches(engine: Engine) -> None:
    local, sent = five_expired(engine)
    sizes = record_batches(local)
    assert purge(local) == 5
    assert sizes == [2, 2, 1]
    assert all(stored_content(local, event_id) == {} for event_id in sent)


def test_a_second_purge_finds_nothing_left_to_do(engine: Engine) -> None:
    local, _, _ = purged_room(engine, "once")
    assert purge(local) == 0


def test_the_room_keeps_working_after_its_newest_event_is_purged(engine: Engine) -> None:
    local, room, last = purged_room(engine, "the last word")
    assert extremities(local, room.room_id) == [last]
    new = room.send("a new day")
    event = room.ok("GET", f"{room.path}/event/{quote(new)}")
    assert event["content"]["body"] == "a new day"
    assert room.bodies() == ["a new day"]
    stored = local.run(local.node.stores.events.get_events([new]))[new]
    assert stored.prev_event_ids == [last]


def test_the_scheduled_purge_runs_every_purge_interval(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    old = room.send("on a timer")
    local.node.retention_purge.start(local.reactor)
    run_for(local, LIFETIME_S - 1)
    run_for(local, 1)  # a run at the lifetime's end: not yet past it
    run_for(local, 1)
    assert "on a timer" in stored_json(local, old)  # expired; the next run is not yet due
    run_for(local, 599)
    assert "on a timer" not in stored_json(local, old)
    local.node.retention_purge.stop()


def test_a_purge_stopped_midway_goes_on_after_a_restart(engine: Engine) -> None:
    first, sent = five_expired(engine)
    record_batches(first, fail_after=1)
    first.node.retention_purge.start(first.reactor)
    run_for(first, 0)
    assert first.node.retention_purge.counts.failed_runs == 1
    assert sum(stored_content(first, e) != {} for e in sent) == 3
    again = engine.restart(first)
    again.advance(LIFETIME_S + 1)  # its clock starts where the first node's did
    again.node.retention_purge.batch = 2
    again.node.retention_purge.start(again.reactor)
    run_for(again, 0)
    assert all(stored_content(again, e) == {} for e in sent)
    assert again.node.retention_purge.counts.events == 3
    again.node.retention_purge.stop()


def test_admins_read_what_the_purge_did_in_the_policy_document(engine: Engine) -> None:
    local, _, _ = purged_room(engine, "counted")
    section = local.node.policy_document.document()["retention"]
    assert section["purge"] == {"events_purged": 1, "media_deleted": 0,
                                "media_bytes_freed": 0, "runs": 1, "failed_runs": 0,
                                "last_run_ts": local.node.clock.time_ms()}
    assert section["default_max_lifetime"] == LIFETIME_S * 1000


def test_admins_read_the_limits_of_undelivered_data_in_the_policy_document(
        engine: Engine) -> None:
    local = engine.node()
    undelivered = local.node.policy_document.document()["retention"]["undelivered"]
    assert undelivered == {
        "to_device": {"max_age": 7 * 86_400_000, "deleted_expired": 0, "deleted_orphaned": 0},
        "federation_queue": {"max_age": 7 * 86_400_000, "deleted_pdus": 0, "deleted_edus": 0}}


def test_nothing_is_purged_while_retention_is_disabled(tmp_path: Path) -> None:
    local = InProcessNode(tmp_path, config={"retention": {**RETENTION, "enabled": False}})
    try:
        room = Room(local)
        old = room.send("kept for ever")
        local.node.retention_purge.start(local.reactor)
        run_for(local, LIFETIME_S * 10)
        assert "kept for ever" in stored_json(local, old)
        assert local.node.retention_purge.counts.runs == 0
    finally:
        local.close()


def test_the_events_purged_are_counted_in_the_days_statistics(engine: Engine) -> None:
    local, _ = five_expired(engine)
    purge(local)
    local.run(local.node.statistics.flush())
    counts = result_of(local.node.stores.statistics.between("2026-01-01", "2026-01-01"))
    assert [row["retention_purged_events"] for row in rows_of(counts)
            if row["organisation"] is None] == [5]
