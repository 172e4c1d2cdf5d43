"""Auth rules: create events, auth events selection, room binding, v12 creators."""

from __future__ import annotations

import math

import pytest

from protocol.auth_rules import auth_types_for_event, check_auth, check_auth_events_selection
from protocol.errors import AuthError
from protocol.events import build_pdu, finalize_pdu
from protocol.power_levels import get_user_power_level
from protocol.room_versions import RoomVersion, RoomVersions

from .roomhelper import Room, key_for

V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12
ALL = [V10, V11, V12]
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"


def _create(rv: RoomVersion, **overrides):  # type: ignore[no-untyped-def]
    args = dict(
        room_id=None if rv.room_id_is_create_event_hash else "!room:a.test",
        sender=ALICE,
        type="m.room.create",
        content={"room_version": rv.identifier},
        state_key="",
        prev_event_ids=[],
        auth_event_ids=[],
        depth=1,
        origin_server_ts=1,
    )
    args.update(overrides)
    pdu = build_pdu(rv, **args)
    return pdu


def _check_create(rv: RoomVersion, pdu: dict) -> None:
    event = finalize_pdu(pdu, "a.test", key_for("a.test"), rv)
    check_auth(rv, event, {}, event)


@pytest.mark.parametrize("rv", ALL, ids=lambda v: v.identifier)
def test_valid_create_is_allowed(rv: RoomVersion) -> None:
    _check_create(rv, _create(rv))


@pytest.mark.parametrize("rv", ALL, ids=lambda v: v.identifier)
def test_create_with_prev_events_is_refused(rv: RoomVersion) -> None:
    with pytest.raises(AuthError):
        _check_create(rv, _create(rv, prev_event_ids=["$x"]))


@pytest.mark.parametrize("rv", ALL, ids=lambda v: v.identifier)
def test_create_with_unknown_room_version_is_refused(rv: RoomVersion) -> None:
    with pytest.raises(AuthError):
        _check_create(rv, _create(rv, content={"room_version": "999"}))


@pytest.mark.parametrize("rv", [V10, V11], ids=lambda v: v.identifier)
def test_create_room_id_domain_must_match_sender(rv: RoomVersion) -> None:
    with pytest.raises(AuthError):
        _check_create(rv, _create(rv, room_id="!room:evil.test"))


def test_v10_create_without_creator_is_refused() -> None:
    pdu = _create(V10)
    del pdu["content"]["creator"]
    with pytest.raises(AuthError):
        _check_create(V10, pdu)


def test_v11_create_without_creator_is_allowed() -> None:
    pdu = _create(V11)
    assert "creator" not in pdu["content"]
    _check_create(V11, pdu)


def test_v12_create_with_room_id_is_refused() -> None:
    pdu = _create(V12)
    pdu["room_id"] = "!room:a.test"
    with pytest.raises(AuthError):
        _check_create(V12, pdu)


@pytest.mark.parametrize("extra", ["@bob:b.test", ["bob"], [1], ["@bob:b.test", "nope"]], ids=repr)
def test_v12_invalid_additional_creators_are_refused(extra: object) -> None:
    with pytest.raises(AuthError):
        _check_create(V12, _create(V12, content={"additional_creators": extra}))


def test_v12_valid_additional_creators_are_allowed() -> None:
    _check_create(V12, _create(V12, content={"additional_creators": [BOB]}))


def test_auth_types_include_create_before_v12_only() -> None:
    args = ("m.room.message", ALICE, None, {})
    assert ("m.room.create", "") in auth_types_for_event(V11, *args)
    assert ("m.room.create", "") not in auth_types_for_event(V12, *args)
    assert auth_types_for_event(V12, "m.room.create", ALICE, "", {}) == []


def test_auth_types_for_member_events() -> None:
    join = auth_types_for_event(
        V11,
        "m.room.member",
        BOB,
        BOB,
        {"membership": "join", "join_authorised_via_users_server": ALICE},
    )
    assert join == [
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", BOB),
        ("m.room.join_rules", ""),
        ("m.room.member", ALICE),
    ]
    invite = auth_types_for_event(
        V12,
        "m.room.member",
        ALICE,
        BOB,
        {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}},
    )
    assert ("m.room.third_party_invite", "tok") in invite and ("m.room.member", BOB) in invite
    leave = auth_types_for_event(V11, "m.room.member", ALICE, BOB, {"membership": "leave"})
    assert ("m.room.join_rules", "") not in leave


@pytest.mark.parametrize("rv", ALL, ids=lambda v: v.identifier)
def test_auth_events_selection_accepts_built_events(rv: RoomVersion) -> None:
    room = Room(rv)
    event = room.build(ALICE, "m.room.message", {"body": "x"})
    by_id = {e.event_id: e for e in room.events}
    check_auth_events_selection(rv, event, [by_id[i] for i in event.auth_event_ids])


def test_auth_events_selection_refuses_unexpected_entry() -> None:
    room = Room(V11)
    event = room.build(ALICE, "m.room.message", {"body": "x"})
    join_rules = room.state[("m.room.join_rules", "")]
    with pytest.raises(AuthError, match="unexpected"):
        check_auth_events_selection(V11, event, [room.create, join_rules])


def test_auth_events_selection_refuses_duplicates() -> None:
    room = Room(V11)
    event = room.build(ALICE, "m.room.message", {"body": "x"})
    with pytest.raises(AuthError, match="duplicate"):
        check_auth_events_selection(V11, event, [room.create, room.create])


def test_auth_events_selection_requires_create_before_v12() -> None:
    room = Room(V11)
    event = room.build(ALICE, "m.room.message", {"body": "x"})
    with pytest.raises(AuthError, match="create"):
        check_auth_events_selection(V11, event, [room.state[("m.room.power_levels", "")]])


def test_v12_auth_events_selection_refuses_the_create_event() -> None:
    room = Room(V12)
    event = room.build(ALICE, "m.room.message", {"body": "x"})
    with pytest.raises(AuthError):
        check_auth_events_selection(V12, event, [room.create])


def test_auth_events_selection_refuses_rejected_auth_event() -> None:
    room = Room(V12)
    event = room.build(ALICE, "m.room.message", {"body": "x"})
    pl = room.state[("m.room.power_levels", "")]
    pl.rejected_reason = "test"
    with pytest.raises(AuthError, match="rejected"):
        check_auth_events_selection(V12, event, [pl])


@pytest.mark.parametrize("rv", ALL, ids=lambda v: v.identifier)
def test_event_for_another_room_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    other = Room(rv, room_id="!other:a.test", create_content={"topic_hint": 1})
    event = other.build(ALICE, "m.room.message", {"body": "x"})
    with pytest.raises(AuthError, match="room_id"):
        check_auth(rv, event, room.state, room.create)


def test_v12_room_id_not_matching_create_hash_is_refused() -> None:
    room = Room(V12)
    pdu = build_pdu(
        V12,
        room_id="!" + "Z" * 43,
        sender=ALICE,
        type="m.room.message",
        content={},
        prev_event_ids=[room.events[-1].event_id],
        auth_event_ids=[],
        depth=9,
        origin_server_ts=9,
    )
    event = finalize_pdu(pdu, "a.test", key_for("a.test"), V12)
    with pytest.raises(AuthError):
        room.check(event)


def test_event_not_signed_by_sender_server_is_refused() -> None:
    room = Room(V11)
    event = room.build(ALICE, "m.room.message", {"body": "x"}, server="b.test")
    with pytest.raises(AuthError, match="signed"):
        room.check(event)


def test_m_federate_false_refuses_remote_senders() -> None:
    room = Room(V11, create_content={"m.federate": False})
    assert room.refused(BOB, "m.room.member", {"membership": "join"}, BOB)
    room.join(CAROL)


def test_v12_creators_have_infinite_power() -> None:
    room = Room(V12, create_content={"additional_creators": [BOB]})
    pl = room.state[("m.room.power_levels", "")]
    for creator in (ALICE, BOB):
        assert get_user_power_level(creator, pl, room.create, V12) == math.inf
    assert get_user_power_level(CAROL, pl, room.create, V12) == 0


def test_v11_creator_without_power_levels_has_100() -> None:
    room = Room(V11, join_rule=None)
    assert get_user_power_level(ALICE, None, room.create, V11) == 100
    assert get_user_power_level(BOB, None, room.create, V11) == 0
