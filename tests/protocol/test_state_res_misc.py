"""State resolution: inputs, errors, the auth chain accelerator, and a large room."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from protocol.errors import StateResolutionError
from protocol.room_versions import RoomVersion, RoomVersions
from protocol.state_res import full_conflicted_set, is_power_event, resolve_state

from .roomhelper import Room, auth_chain_index, events_by_id, fork, state_ids

V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12
ALL = pytest.mark.parametrize("rv", [V10, V11, V12], ids=lambda v: v.identifier)
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"
PL = ("m.room.power_levels", "")
MEMBER = "m.room.member"


def _admins(rv: RoomVersion, users: dict[str, int] | None = None) -> dict[str, int]:
    return {**({} if rv.privileged_creators else {ALICE: 100}), **(users or {})}


def _ban_vs_demotion(rv: RoomVersion) -> tuple[Room, Room]:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    room.set_power(_admins(rv, {BOB: 50}))
    branch = fork(room)
    room.set_power(_admins(rv))
    branch.send(BOB, MEMBER, {"membership": "ban"}, CAROL)
    return room, branch


def test_no_state_sets_resolve_to_empty_state() -> None:
    assert resolve_state(V12, [], {}) == {}


@ALL
def test_identical_state_sets_need_no_events(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    current = state_ids(room)

    assert resolve_state(rv, [current, dict(current)], {}) == current


@ALL
def test_missing_conflicted_event_raises_state_resolution_error(rv: RoomVersion) -> None:
    room, branch = _ban_vs_demotion(rv)
    events = events_by_id(room, branch)
    del events[branch.events[-1].event_id]

    with pytest.raises(StateResolutionError, match=re.escape(branch.events[-1].event_id)):
        resolve_state(rv, [state_ids(room), state_ids(branch)], events)


@ALL
def test_missing_auth_chain_event_raises_state_resolution_error(rv: RoomVersion) -> None:
    room, branch = _ban_vs_demotion(rv)
    events = events_by_id(room, branch)
    bob_join = room.state[(MEMBER, BOB)].event_id
    del events[bob_join]

    with pytest.raises(StateResolutionError, match=re.escape(bob_join)):
        resolve_state(rv, [state_ids(room), state_ids(branch)], events)


@ALL
def test_event_from_another_room_raises_state_resolution_error(rv: RoomVersion) -> None:
    room, branch = _ban_vs_demotion(rv)
    other = Room(rv, room_id="!other:a.test", creator=CAROL)
    intruder = other.send(CAROL, "m.room.topic", {"topic": "x"}, "")
    events = {**events_by_id(room, branch), intruder.event_id: intruder}
    theirs = {**state_ids(branch), ("m.room.topic", ""): intruder.event_id}

    with pytest.raises(StateResolutionError, match="room"):
        resolve_state(rv, [state_ids(room), theirs], events)


@ALL
def test_state_sets_with_different_create_events_raise(rv: RoomVersion) -> None:
    room, branch = _ban_vs_demotion(rv)
    other = Room(rv, room_id="!other:a.test", creator=CAROL)
    theirs = {**state_ids(branch), ("m.room.create", ""): other.create.event_id}
    events = {**events_by_id(room, branch), other.create.event_id: other.create}

    with pytest.raises(StateResolutionError, match="create"):
        resolve_state(rv, [state_ids(room), theirs], events)


@ALL
def test_auth_chain_accelerator_gives_the_same_result(rv: RoomVersion) -> None:
    room, branch = _ban_vs_demotion(rv)
    events = events_by_id(room, branch)
    sets = [state_ids(room), state_ids(branch)]
    index = auth_chain_index(events)

    assert resolve_state(rv, sets, events, index.__getitem__) == resolve_state(rv, sets, events)


def test_auth_chain_accelerator_is_asked_once_per_event_and_finds_the_subgraph() -> None:
    room = Room(V12)
    room.join(BOB)
    room.join(CAROL)
    original = room.state[PL].event_id
    room.set_power({BOB: 100})
    bobs = room.send(BOB, "m.room.power_levels", {"users": {BOB: 100, CAROL: 50}}, "")
    room.send(CAROL, "m.room.topic", {"topic": "agenda"}, "")
    events = events_by_id(room)
    index = auth_chain_index(events)
    calls: Counter[str] = Counter()

    def auth_chain_of(event_id: str) -> set[str]:
        calls[event_id] += 1
        return index[event_id]

    stale = {**state_ids(room), PL: original}
    resolved = resolve_state(V12, [state_ids(room), stale], events, auth_chain_of)

    assert resolved[PL] == bobs.event_id
    assert calls and max(calls.values()) == 1


@ALL
def test_power_events_are_power_levels_join_rules_and_removals_by_others(
    rv: RoomVersion,
) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    kick = room.send(ALICE, MEMBER, {"membership": "leave"}, BOB)
    own_leave = room.send(CAROL, MEMBER, {"membership": "leave"}, CAROL)
    topic = room.send(ALICE, "m.room.topic", {"topic": "t"}, "")

    assert is_power_event(room.state[PL])
    assert is_power_event(room.state[("m.room.join_rules", "")])
    assert is_power_event(kick)
    assert not is_power_event(own_leave)
    assert not is_power_event(topic)
    assert not is_power_event(room.create)


@ALL
def test_two_forks_of_a_2000_member_room_resolve(rv: RoomVersion) -> None:
    room = Room(rv)
    members = [f"@user{i}:b.test" for i in range(2000)]
    for user in members:
        room.join(user)
    room.set_power(_admins(rv, {members[0]: 50}))
    branch = fork(room)
    demotion = room.set_power(_admins(rv))
    kick = room.send(ALICE, MEMBER, {"membership": "leave"}, members[5])
    topic = room.send(ALICE, "m.room.topic", {"topic": "big"}, "")
    branch.send(members[0], MEMBER, {"membership": "ban"}, members[9])
    late = branch.join("@late:c.test")
    branch.send(members[7], MEMBER, {"membership": "leave"}, members[7])

    resolved = resolve_state(rv, [state_ids(room), state_ids(branch)], events_by_id(room, branch))

    assert resolved[PL] == demotion.event_id
    assert resolved[(MEMBER, members[5])] == kick.event_id
    assert resolved[(MEMBER, members[9])] == room.state[(MEMBER, members[9])].event_id
    assert resolved[(MEMBER, "@late:c.test")] == late.event_id
    assert resolved[(MEMBER, members[7])] == branch.state[(MEMBER, members[7])].event_id
    assert resolved[("m.room.topic", "")] == topic.event_id
    assert len(resolved) == len(room.state) + 1


@pytest.mark.parametrize("rv", [V10, V11], ids=lambda v: v.identifier)
def test_full_conflicted_set_includes_auth_difference(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    branch = fork(room)
    room.send(ALICE, "m.room.topic", {"topic": "main"}, "")
    bob_join = branch.join(CAROL)
    promotion = branch.set_power(_admins(rv, {CAROL: 10}))
    final = branch.set_power(_admins(rv, {CAROL: 20}))
    main_topic = room.state[("m.room.topic", "")].event_id

    found = full_conflicted_set(
        rv, [state_ids(room), state_ids(branch)], events_by_id(room, branch)
    )

    # Conflicted: the topic, Carol's join and both power levels (original and final).
    # Auth difference: the intermediate promotion, only in the branch's auth chains.
    original = room.state[PL].event_id
    assert found == {main_topic, bob_join.event_id, original, final.event_id, promotion.event_id}


def test_full_conflicted_set_v21_adds_conflicted_subgraph_v2_does_not() -> None:
    found, expected = {}, {}
    for rv in (V11, V12):
        room = Room(rv)
        room.join(BOB)
        bob_join = room.state[(MEMBER, BOB)].event_id
        join_rules = room.state[("m.room.join_rules", "")].event_id
        original = room.state[PL].event_id
        promotion = room.set_power(_admins(rv, {BOB: 100}))
        bobs = room.send(
            BOB, "m.room.power_levels", {"users": _admins(rv, {BOB: 100, CAROL: 5})}, ""
        )
        room.send(BOB, "m.room.topic", {"topic": "cites the newest power levels"}, "")
        stale = {**state_ids(room), PL: original}
        found[rv.identifier] = full_conflicted_set(rv, [state_ids(room), stale], events_by_id(room))
        # v2.1 adds what lies between the two conflicted power levels on auth_events
        # paths: the promotion, Bob's join and the join rules it cites (both cite the
        # original power levels).
        between = {promotion.event_id, bob_join, join_rules} if rv.state_res == "v2.1" else set()
        expected[rv.identifier] = {original, bobs.event_id} | between

    assert found == expected
