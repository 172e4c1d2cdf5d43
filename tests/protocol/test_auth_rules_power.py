"""Auth rules for ordinary events and m.room.power_levels, including v12 creators."""

from __future__ import annotations

import pytest

from protocol.events import Event
from protocol.power_levels import get_named_level, get_required_level
from protocol.room_versions import RoomVersion, RoomVersions

from .roomhelper import Room

V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12
ALL = pytest.mark.parametrize("rv", [V10, V11, V12], ids=lambda v: v.identifier)
ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"


def _admins(rv: RoomVersion, **users: int) -> dict[str, int]:
    """Power users map: the creator is listed with 100 only before room v12."""
    result = {} if rv.privileged_creators else {ALICE: 100}
    result.update(users)
    return result


def test_required_level_defaults() -> None:
    assert get_required_level("m.room.topic", True, None) == 0
    assert get_required_level("m.room.topic", True, {}) == 50
    assert get_required_level("m.room.message", False, {}) == 0
    pl = {"events": {"m.room.topic": 10}, "state_default": 70, "events_default": 5}
    assert get_required_level("m.room.topic", True, pl) == 10
    assert get_required_level("m.room.name", True, pl) == 70
    assert get_required_level("m.custom", False, pl) == 5


def test_named_level_defaults() -> None:
    assert get_named_level(None, "kick", 50) == 50
    assert get_named_level({"kick": 20}, "kick", 50) == 20


@ALL
def test_message_from_non_member_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    assert "not in the room" in (room.refused(BOB, "m.room.message", {"body": "x"}) or "")


@ALL
def test_message_from_member_is_allowed(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.send(BOB, "m.room.message", {"body": "x"})


@ALL
def test_state_event_below_required_level_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    assert room.refused(BOB, "m.room.topic", {"topic": "t"}, "")
    room.send(ALICE, "m.room.topic", {"topic": "t"}, "")


@ALL
def test_events_default_applies_to_messages(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv), events_default=10)
    assert room.refused(BOB, "m.room.message", {"body": "x"})


@ALL
def test_state_key_impersonation_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv), state_default=0)
    assert "state_key" in (room.refused(BOB, "m.custom.state", {}, ALICE) or "")
    room.send(BOB, "m.custom.state", {}, BOB)


@ALL
def test_redaction_event_follows_event_power_not_redact_level(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    message = room.send(ALICE, "m.room.message", {"body": "x"})
    # Any member may send a redaction; whether it applies is decided separately.
    content = {"redacts": message.event_id} if rv.redacts_in_content else {}
    room.send(BOB, "m.room.redaction", content)
    room.set_power(_admins(rv), events={"m.room.redaction": 50})
    assert room.refused(BOB, "m.room.redaction", content)


@ALL
def test_redaction_applies_for_redact_level_or_same_server(rv: RoomVersion) -> None:
    from protocol.auth_rules import check_redaction_applies
    from protocol.events import build_pdu, finalize_pdu

    from .roomhelper import key_for

    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    target = room.send(ALICE, "m.room.message", {"body": "x"})

    def redaction(sender: str) -> Event:
        pdu = build_pdu(
            rv,
            room_id=room.room_id,
            sender=sender,
            type="m.room.redaction",
            content={},
            redacts=target.event_id,
            prev_event_ids=[room.events[-1].event_id],
            auth_event_ids=[],
            depth=99,
            origin_server_ts=99,
        )
        server = sender.split(":")[1]
        return finalize_pdu(pdu, server, key_for(server), rv)

    pl = room.state[("m.room.power_levels", "")]
    assert check_redaction_applies(rv, redaction(ALICE), target, pl, room.create)
    assert check_redaction_applies(rv, redaction(CAROL), target, pl, room.create)  # same server
    assert not check_redaction_applies(rv, redaction(BOB), target, pl, room.create)


@ALL
def test_third_party_invite_event_requires_invite_level(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv), invite=50)
    assert room.refused(BOB, "m.room.third_party_invite", {"display_name": "x"}, "tok")
    room.send(ALICE, "m.room.third_party_invite", {"display_name": "x"}, "tok")


@ALL
@pytest.mark.parametrize(
    "content",
    [
        {"users_default": "0"},
        {"ban": 50.5},
        {"kick": True},
        {"events": {"m.room.name": "50"}},
        {"notifications": {"room": None}},
        {"events": []},
        {"users": {"not-a-user": 10}},
        {"users": {"@x:a.test": "10"}},
    ],
    ids=repr,
)
def test_power_levels_values_must_be_integers(rv: RoomVersion, content: dict) -> None:
    room = Room(rv)
    reason = room.refused(ALICE, "m.room.power_levels", {"users": _admins(rv)} | content, "")
    assert reason is not None and ("integer" in reason or "user IDs" in reason)


@ALL
def test_power_level_escalation_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv, **{BOB: 50}), state_default=50, events={"m.room.power_levels": 50})
    assert room.refused(BOB, "m.room.power_levels", {"users": _admins(rv, **{BOB: 75})}, "")


@ALL
def test_granting_up_to_own_level_is_allowed(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    room.set_power(_admins(rv, **{BOB: 50}), events={"m.room.power_levels": 50})
    room.send(BOB, "m.room.power_levels", {"users": _admins(rv, **{BOB: 50, CAROL: 50})}, "")


@ALL
def test_demoting_an_equal_user_is_refused_but_self_demotion_allowed(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    room.set_power(_admins(rv, **{BOB: 50, CAROL: 50}), events={"m.room.power_levels": 50})
    assert room.refused(BOB, "m.room.power_levels", {"users": _admins(rv, **{BOB: 50})}, "")
    room.send(BOB, "m.room.power_levels", {"users": _admins(rv, **{BOB: 10, CAROL: 50})}, "")


@ALL
def test_changing_a_level_above_own_power_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.set_power(_admins(rv, **{BOB: 50}), events={"m.room.power_levels": 50}, ban=80)
    assert room.refused(BOB, "m.room.power_levels", {"users": _admins(rv, **{BOB: 50})}, "")
    assert room.refused(
        BOB,
        "m.room.power_levels",
        {"users": _admins(rv, **{BOB: 50}), "ban": 80, "events": {"m.room.power_levels": 60}},
        "",
    )


@ALL
def test_creator_can_set_initial_power_levels(rv: RoomVersion) -> None:
    room = Room(rv, join_rule=None)
    room.set_power(_admins(rv), ban=10, events={"m.room.name": 100})


def test_v10_v11_admin_cannot_demote_another_admin() -> None:
    for rv in (V10, V11):
        room = Room(rv)
        room.join(BOB)
        room.set_power({ALICE: 100, BOB: 100})
        assert room.refused(BOB, "m.room.power_levels", {"users": {ALICE: 0, BOB: 100}}, "")


def test_v12_creator_can_demote_any_admin() -> None:
    room = Room(V12)
    room.join(BOB)
    room.set_power({BOB: 9000})
    room.set_power({BOB: 0})


def test_v12_creator_cannot_be_listed_in_power_levels_users() -> None:
    room = Room(V12, create_content={"additional_creators": [BOB]})
    assert "creators" in (
        room.refused(ALICE, "m.room.power_levels", {"users": {ALICE: 100}}, "") or ""
    )
    assert room.refused(ALICE, "m.room.power_levels", {"users": {BOB: 100}}, "")


def test_v12_additional_creator_has_creator_power() -> None:
    room = Room(V12, create_content={"additional_creators": [BOB]})
    room.join(BOB)
    room.join(CAROL)
    room.send(BOB, "m.room.power_levels", {"users": {CAROL: 100}}, "")
    room.send(BOB, "m.room.member", {"membership": "ban"}, CAROL)


def test_v12_admins_cannot_kick_creators() -> None:
    room = Room(V12, create_content={"additional_creators": [BOB]})
    room.join(BOB)
    room.join(CAROL)
    room.set_power({CAROL: 100})
    assert room.refused(CAROL, "m.room.member", {"membership": "leave"}, BOB)
    assert room.refused(ALICE, "m.room.member", {"membership": "ban"}, BOB)  # equal (infinite)
