"""State resolution v2.1 (room v12, MSC4297) against v2 (room v11) on the MSC's problems.

Both problems need a state set that disagrees with the auth chains (an outdated event,
as a faulty /state response can give); v2 then resets state and v2.1 does not.
"""

from __future__ import annotations

from protocol.room_versions import RoomVersion, RoomVersions
from protocol.state_res import resolve_state

from .roomhelper import Room, events_by_id, state_ids

V11, V12 = RoomVersions.V11, RoomVersions.V12
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
MEMBER = "m.room.member"


def _admins(rv: RoomVersion, users: dict[str, int]) -> dict[str, int]:
    return {**({} if rv.privileged_creators else {ALICE: 100}), **users}


def _problem_a(rv: RoomVersion) -> tuple[Room, dict[tuple[str, str], str], str]:
    """Alice changes the join rules twice, then leaves; one state set has the older rules."""
    room = Room(rv, join_rule="public")
    room.join(BOB)
    room.send(ALICE, "m.room.join_rules", {"join_rule": "invite"}, "")
    older = room.state[JR].event_id
    latest = room.send(ALICE, "m.room.join_rules", {"join_rule": "knock"}, "")
    room.send(ALICE, MEMBER, {"membership": "leave"}, ALICE)
    stale = {**state_ids(room), JR: older}
    return room, stale, latest.event_id


def test_v2_drops_join_rules_whose_sender_left_in_unconflicted_state() -> None:
    room, stale, _ = _problem_a(V11)

    resolved = resolve_state(V11, [state_ids(room), stale], events_by_id(room))

    # Both join rules events fail against "Alice has left": the room loses its rules.
    assert JR not in resolved


def test_v21_replays_join_rules_against_their_auth_events_from_empty_state() -> None:
    room, stale, latest = _problem_a(V12)

    resolved = resolve_state(V12, [state_ids(room), stale], events_by_id(room))

    assert resolved[JR] == latest
    assert resolved[(MEMBER, ALICE)] == room.state[(MEMBER, ALICE)].event_id


def _problem_b(rv: RoomVersion) -> tuple[Room, dict[tuple[str, str], str], str, str]:
    """Alice promotes Bob, Bob promotes Carol, Carol sets the topic; one state set has the
    original power levels although its topic's auth chain cites the newest ones."""
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    original = room.state[PL].event_id
    room.set_power(_admins(rv, {BOB: 100}))
    bobs = room.send(BOB, "m.room.power_levels", {"users": _admins(rv, {BOB: 100, CAROL: 50})}, "")
    room.send(CAROL, "m.room.topic", {"topic": "agenda"}, "")
    stale = {**state_ids(room), PL: original}
    return room, stale, original, bobs.event_id


def test_v2_resets_power_levels_when_the_promotion_between_is_not_replayed() -> None:
    room, stale, original, _ = _problem_b(V11)

    resolved = resolve_state(V11, [state_ids(room), stale], events_by_id(room))

    assert resolved[PL] == original


def test_v21_replays_the_conflicted_subgraph_between_conflicted_power_levels() -> None:
    room, stale, _, bobs = _problem_b(V12)

    resolved = resolve_state(V12, [state_ids(room), stale], events_by_id(room))

    assert resolved[PL] == bobs
