"""An incremental /sync timeline counts only the events a client may still read: a timeline
whose older events expired is not ``limited`` for them, nor one whose messages all expired, and one with more readable events than its limit still is; both engines."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.node_engines import Engine, engines, run_for
from tests.retention_room import V3, Room

HOUR_S = 3600
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": "2h"},
             "allowed_lifetime_min": "1h", "allowed_lifetime_max": "30d"}
LIMIT = 3
FILTER = quote(json.dumps({"room": {"timeline": {"limit": LIMIT}}}))

engine = engines({"retention": RETENTION})


class SyncRoom(Room):
    def since_now(self) -> str:
        return str(self.ok("GET", f"{V3}/sync?filter={FILTER}")["next_batch"])

    def timeline(self, since: str) -> dict[str, Any]:
        answer = self.ok("GET", f"{V3}/sync?filter={FILTER}&since={since}&timeout=0")
        room = answer["rooms"]["join"].get(self.room_id)
        return dict(room["timeline"]) if room else {"events": [], "limited": False}


def expired_then_kept(engine: Engine, expired: list[str], kept: list[str]
                      ) -> dict[str, Any]:
    """The incremental timeline of a room where ``expired`` messages were sent 2.5 h ago
    (past the 2 h lifetime) and ``kept`` 1 h ago, since before them all."""
    local = engine.node()
    room = SyncRoom(local)
    since = room.since_now()
    for body in expired:
        room.send(body)
    run_for(local, 1.5 * HOUR_S)
    for body in kept:
        room.send(body)
    run_for(local, HOUR_S)
    return room.timeline(since)


def bodies(timeline: dict[str, Any]) -> list[str]:
    return [e["content"]["body"] for e in timeline["events"] if e["type"] == "m.room.message"]


def test_expired_events_past_the_limit_do_not_make_the_timeline_limited(
        engine: Engine) -> None:
    timeline = expired_then_kept(engine, ["old 1", "old 2"], ["new 1", "new 2"])
    assert (bodies(timeline), timeline["limited"]) == (["new 1", "new 2"], False)


def test_a_timeline_whose_messages_all_expired_is_not_limited(engine: Engine) -> None:
    local = engine.node()
    room = SyncRoom(local)
    since = room.since_now()
    for i in range(LIMIT + 2):
        room.send(f"gone {i}")
    run_for(local, 2 * HOUR_S + 1)
    room.ok("PUT", f"{room.path}/state/m.room.name/", {"name": "Renamed"})
    timeline = room.timeline(since)
    assert ([e["type"] for e in timeline["events"]], timeline["limited"]) == (
        ["m.room.name"], False)


def test_a_timeline_with_more_readable_events_than_its_limit_is_limited(
        engine: Engine) -> None:
    timeline = expired_then_kept(engine, ["expired"], [f"kept {i}" for i in range(LIMIT + 1)])
    assert (bodies(timeline), timeline["limited"]) == (["kept 1", "kept 2", "kept 3"], True)


def test_the_timeline_of_a_room_left_is_not_limited_by_expired_events(engine: Engine) -> None:
    local = engine.node()
    room = SyncRoom(local)
    bob, token = local.register("bob")
    room.ok("POST", f"{room.path}/invite", {"user_id": bob.user_id})
    assert local.call("POST", f"{room.path}/join", token, {})[0] == 200
    status, first = local.call("GET", f"{V3}/sync?filter={FILTER}", token)
    assert status == 200
    room.send("old 1")
    room.send("old 2")
    run_for(local, 1.5 * HOUR_S)
    room.send("new 1")
    assert local.call("POST", f"{room.path}/leave", token, {})[0] == 200
    run_for(local, HOUR_S)
    status, answer = local.call(
        "GET", f"{V3}/sync?filter={FILTER}&since={first['next_batch']}&timeout=0", token)
    timeline = answer["rooms"]["leave"][room.room_id]["timeline"]
    assert (bodies(timeline), timeline["limited"]) == (["new 1"], False)
