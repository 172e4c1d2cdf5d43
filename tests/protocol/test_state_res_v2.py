"""State resolution: the classic fork scenarios, for room v10/v11 (v2) and v12 (v2.1)."""

from __future__ import annotations

import pytest

from protocol.room_versions import RoomVersion, RoomVersions
from protocol.state_res import resolve_state

from .roomhelper import Room, events_by_id, fork, send_at, state_ids

V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12
ALL = pytest.mark.parametrize("rv", [V10, V11, V12], ids=lambda v: v.identifier)
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")
MEMBER = "m.room.member"


def _admins(rv: RoomVersion, users: dict[str, int] | None = None) -> dict[str, int]:
    """Power users map: the creator is listed with 100 only before room v12."""
    result = {} if rv.privileged_creators else {ALICE: 100}
    result.update(users or {})
    return result


def _resolve(rv: RoomVersion, *branches: Room) -> dict[tuple[str, str], str]:
    return resolve_state(rv, [state_ids(b) for b in branches], events_by_id(*branches))


@ALL
def test_ban_by_concurrently_demoted_moderator_is_dropped(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    carol_join = room.join(CAROL)
    room.set_power(_admins(rv, {BOB: 50}))
    branch = fork(room)
    demotion = room.set_power(_admins(rv))
    branch.send(BOB, MEMBER, {"membership": "ban"}, CAROL)

    resolved = _resolve(rv, room, branch)

    assert resolved[PL] == demotion.event_id
    assert resolved[(MEMBER, CAROL)] == carol_join.event_id


@ALL
def test_topic_from_concurrently_banned_user_is_dropped(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv, {BOB: 50}))
    old_topic = room.send(ALICE, "m.room.topic", {"topic": "old"}, "")
    branch = fork(room)
    ban = room.send(ALICE, MEMBER, {"membership": "ban"}, BOB)
    branch.send(BOB, "m.room.topic", {"topic": "bob's"}, "")

    resolved = _resolve(rv, room, branch)

    assert resolved[(MEMBER, BOB)] == ban.event_id
    assert resolved[TOPIC] == old_topic.event_id


@ALL
def test_join_concurrent_with_room_becoming_invite_only_is_dropped(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="public")
    branch = fork(room)
    invite_only = room.send(ALICE, "m.room.join_rules", {"join_rule": "invite"}, "")
    branch.join(CAROL)

    resolved = _resolve(rv, room, branch)

    assert resolved[JR] == invite_only.event_id
    assert (MEMBER, CAROL) not in resolved


@ALL
def test_concurrent_joins_to_public_room_are_both_kept(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="public")
    branch = fork(room)
    bob_join = room.join(BOB)
    carol_join = branch.join(CAROL)

    resolved = _resolve(rv, room, branch)

    assert resolved[(MEMBER, BOB)] == bob_join.event_id
    assert resolved[(MEMBER, CAROL)] == carol_join.event_id


@ALL
def test_concurrent_power_levels_of_equal_power_order_by_origin_server_ts(
    rv: RoomVersion,
) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    branch = fork(room)
    later = send_at(
        room, 50_000, ALICE, "m.room.power_levels", {"users": _admins(rv, {BOB: 10})}, ""
    )
    send_at(branch, 40_000, ALICE, "m.room.power_levels", {"users": _admins(rv, {CAROL: 20})}, "")

    assert _resolve(rv, room, branch)[PL] == later.event_id
    assert _resolve(rv, branch, room)[PL] == later.event_id


@ALL
def test_concurrent_power_levels_with_equal_ts_order_by_event_id(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    branch = fork(room)
    one = send_at(room, 50_000, ALICE, "m.room.power_levels", {"users": _admins(rv, {BOB: 10})}, "")
    two = send_at(
        branch, 50_000, ALICE, "m.room.power_levels", {"users": _admins(rv, {CAROL: 20})}, ""
    )

    # Sorted earliest first by event ID, so the larger ID is applied last and wins.
    assert _resolve(rv, room, branch)[PL] == max(one.event_id, two.event_id)


@ALL
def test_sender_power_level_orders_before_origin_server_ts(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    room.set_power(_admins(rv, {BOB: 50}))
    branch = fork(room)
    send_at(
        room, 40_000, ALICE, "m.room.power_levels", {"users": _admins(rv, {BOB: 50, CAROL: 20})}, ""
    )
    bobs = send_at(
        branch,
        30_000,
        BOB,
        "m.room.power_levels",
        {"users": _admins(rv, {BOB: 50}), "events": {"m.room.name": 50}},
        "",
    )

    # Alice (more power) is replayed first although Bob's change is older; Bob's change
    # is still allowed on top of hers, so it is the resolved power levels.
    assert _resolve(rv, room, branch)[PL] == bobs.event_id


@ALL
def test_unconflicted_state_passes_through_unchanged(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.send(ALICE, "m.room.name", {"name": "Cabinet"}, "")
    branch = fork(room)
    room.send(ALICE, "m.room.topic", {"topic": "budget"}, "")
    branch.join(CAROL)
    ours, theirs = state_ids(room), state_ids(branch)
    unconflicted = {k: v for k, v in ours.items() if theirs.get(k) == v}

    resolved = resolve_state(rv, [ours, theirs], events_by_id(room, branch))

    assert {k: resolved[k] for k in unconflicted} == unconflicted
    assert resolved == {**ours, **theirs}


@ALL
def test_linear_history_resolves_to_its_tip(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.send(ALICE, "m.room.topic", {"topic": "one"}, "")
    earlier = state_ids(room)
    room.send(ALICE, "m.room.topic", {"topic": "two"}, "")
    room.set_power(_admins(rv, {BOB: 60}))
    room.send(BOB, "m.room.topic", {"topic": "three"}, "")
    room.join(CAROL)

    resolved = resolve_state(rv, [earlier, state_ids(room)], events_by_id(room))

    assert resolved == state_ids(room)


@ALL
def test_result_does_not_depend_on_order_of_state_sets(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv, {BOB: 50}))
    branch = fork(room)
    third = fork(room)
    room.send(ALICE, "m.room.topic", {"topic": "a"}, "")
    branch.send(BOB, "m.room.topic", {"topic": "b"}, "")
    third.join(CAROL)
    events = events_by_id(room, branch, third)
    sets = [state_ids(room), state_ids(branch), state_ids(third)]

    first = resolve_state(rv, sets, events)

    assert resolve_state(rv, sets[::-1], events) == first
    assert resolve_state(rv, [sets[1], sets[2], sets[0]], events) == first


@ALL
def test_auth_dag_order_beats_sender_power(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    room.set_power(_admins(rv, {BOB: 50}))
    branch = fork(room)
    room.send(ALICE, "m.room.topic", {"topic": "meanwhile"}, "")
    branch.send(
        BOB,
        "m.room.power_levels",
        {"users": _admins(rv, {BOB: 50}), "events": {"m.room.name": 50}},
        "",
    )
    alices = branch.set_power(_admins(rv, {BOB: 50, CAROL: 10}))

    # Bob's change is an auth event of Alice's, so it is replayed first despite
    # Alice's greater power; replayed the other way round Bob's would win.
    assert _resolve(rv, room, branch)[PL] == alices.event_id


@ALL
def test_mainline_orders_events_on_older_power_levels_first(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    branch = fork(room)
    send_at(room, 40_000, ALICE, "m.room.power_levels", {"users": _admins(rv, {BOB: 10})}, "")
    on_newer = send_at(room, 41_000, ALICE, "m.room.topic", {"topic": "newer base"}, "")
    send_at(branch, 50_000, ALICE, "m.room.topic", {"topic": "older base, later ts"}, "")

    assert _resolve(rv, room, branch)[TOPIC] == on_newer.event_id
