"""Auth rules for m.room.member: joins, invites, leaves, kicks, bans, knocks."""

from __future__ import annotations

import pytest

from protocol.room_versions import RoomVersion, RoomVersions

from .roomhelper import Room

V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12
ALL = pytest.mark.parametrize("rv", [V10, V11, V12], ids=lambda v: v.identifier)
ALICE, BOB, CAROL, DAVE = "@alice:a.test", "@bob:b.test", "@carol:a.test", "@dave:b.test"


def _member(membership: str, **extra: object) -> dict:
    return {"membership": membership, **extra}


@ALL
def test_creator_first_join_after_create_is_allowed(rv: RoomVersion) -> None:
    Room(rv)  # the helper authorises the creator's join against the create event


@ALL
def test_non_creator_cannot_use_the_first_join_exception(rv: RoomVersion) -> None:
    room = Room(rv)
    reason = room.refused(
        BOB, "m.room.member", _member("join"), BOB, prev_event_ids=[room.create.event_id]
    )
    assert reason is None  # public room: allowed by join rule, not by the exception
    invite_room = Room(rv, join_rule="invite")
    assert invite_room.refused(
        BOB, "m.room.member", _member("join"), BOB, prev_event_ids=[invite_room.create.event_id]
    )


@ALL
def test_joining_a_public_room_is_allowed(rv: RoomVersion) -> None:
    Room(rv).join(BOB)


@ALL
def test_joining_an_invite_only_room_without_invite_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="invite")
    assert room.refused(BOB, "m.room.member", _member("join"), BOB)


@ALL
def test_joining_without_join_rules_defaults_to_invite_only(rv: RoomVersion) -> None:
    room = Room(rv, join_rule=None)
    assert room.refused(BOB, "m.room.member", _member("join"), BOB)


@ALL
def test_invited_user_can_join_invite_only_room(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="invite")
    room.send(ALICE, "m.room.member", _member("invite"), BOB)
    room.join(BOB)


@ALL
def test_joining_on_behalf_of_someone_else_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    assert room.refused(ALICE, "m.room.member", _member("join"), BOB)


@ALL
def test_banned_user_cannot_join(rv: RoomVersion) -> None:
    room = Room(rv)
    room.send(ALICE, "m.room.member", _member("ban"), BOB)
    assert "banned" in (room.refused(BOB, "m.room.member", _member("join"), BOB) or "")


@ALL
def test_member_event_without_membership_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    assert room.refused(BOB, "m.room.member", {"displayname": "b"}, BOB)


@ALL
def test_unknown_membership_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    assert room.refused(BOB, "m.room.member", _member("dance"), BOB)


@ALL
def test_invite_requires_sender_joined(rv: RoomVersion) -> None:
    room = Room(rv)
    assert room.refused(CAROL, "m.room.member", _member("invite"), BOB)


@ALL
def test_invite_requires_invite_power(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(CAROL)
    room.set_power({} if rv.privileged_creators else {ALICE: 100}, invite=50)
    assert room.refused(CAROL, "m.room.member", _member("invite"), BOB)
    room.set_power({} if rv.privileged_creators else {ALICE: 100})
    room.send(CAROL, "m.room.member", _member("invite"), BOB)  # invite defaults to 0


@ALL
def test_cannot_invite_joined_or_banned_user(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    assert room.refused(ALICE, "m.room.member", _member("invite"), BOB)
    room.send(ALICE, "m.room.member", _member("ban"), CAROL)
    assert room.refused(ALICE, "m.room.member", _member("invite"), CAROL)


@ALL
def test_user_can_leave_and_reject_invite(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="invite")
    room.send(ALICE, "m.room.member", _member("invite"), BOB)
    room.send(BOB, "m.room.member", _member("leave"), BOB)
    assert room.refused(BOB, "m.room.member", _member("leave"), BOB)  # already left


@ALL
def test_kick_requires_kick_level_and_higher_power(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    assert "kick" in (room.refused(BOB, "m.room.member", _member("leave"), CAROL) or "")
    room.send(ALICE, "m.room.member", _member("leave"), CAROL)


@ALL
def test_kick_of_equal_power_user_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    room.join(CAROL)
    users = {BOB: 50, CAROL: 50}
    if not rv.privileged_creators:
        users[ALICE] = 100
    room.set_power(users)
    assert room.refused(BOB, "m.room.member", _member("leave"), CAROL)


@ALL
def test_ban_requires_ban_level_and_higher_power(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(BOB)
    assert room.refused(BOB, "m.room.member", _member("ban"), ALICE)
    room.send(ALICE, "m.room.member", _member("ban"), BOB)


@ALL
def test_ban_by_non_member_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    assert room.refused(BOB, "m.room.member", _member("ban"), CAROL)


@ALL
def test_unban_requires_ban_level(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(CAROL)
    room.send(ALICE, "m.room.member", _member("ban"), BOB)
    users = {CAROL: 50}
    if not rv.privileged_creators:
        users[ALICE] = 100
    room.set_power(users, kick=0, ban=60)
    assert "unban" in (room.refused(CAROL, "m.room.member", _member("leave"), BOB) or "")
    room.send(ALICE, "m.room.member", _member("leave"), BOB)


@ALL
def test_knock_allowed_only_with_knock_join_rules(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="knock")
    room.send(BOB, "m.room.member", _member("knock"), BOB)
    public = Room(rv)
    assert public.refused(BOB, "m.room.member", _member("knock"), BOB)
    Room(rv, join_rule="knock_restricted").send(BOB, "m.room.member", _member("knock"), BOB)


@ALL
def test_knock_retraction_by_leave_is_allowed(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="knock")
    room.send(BOB, "m.room.member", _member("knock"), BOB)
    room.send(BOB, "m.room.member", _member("leave"), BOB)


@ALL
def test_knock_by_banned_or_joined_user_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="knock")
    room.send(ALICE, "m.room.member", _member("ban"), BOB)
    assert room.refused(BOB, "m.room.member", _member("knock"), BOB)
    assert room.refused(ALICE, "m.room.member", _member("knock"), ALICE)


@ALL
def test_knock_on_behalf_of_someone_else_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="knock")
    assert room.refused(ALICE, "m.room.member", _member("knock"), BOB)


@ALL
def test_restricted_join_authorised_by_member_with_invite_power(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="restricted")
    content = _member("join", join_authorised_via_users_server=ALICE)
    room.send(BOB, "m.room.member", content, BOB, extra_signers=("a.test",))


@ALL
def test_restricted_join_without_authoriser_signature_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="restricted")
    content = _member("join", join_authorised_via_users_server=ALICE)
    assert "signed" in (room.refused(BOB, "m.room.member", content, BOB) or "")


@ALL
def test_restricted_join_without_authoriser_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="restricted")
    assert room.refused(BOB, "m.room.member", _member("join"), BOB)


@ALL
def test_restricted_join_authorised_by_powerless_user_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="knock_restricted")
    room.send(ALICE, "m.room.member", _member("invite"), CAROL)
    room.send(CAROL, "m.room.member", _member("join"), CAROL)
    room.set_power({} if rv.privileged_creators else {ALICE: 100}, invite=50)
    content = _member("join", join_authorised_via_users_server=CAROL)
    assert room.refused(BOB, "m.room.member", content, BOB, extra_signers=("a.test",))


@ALL
def test_restricted_join_authorised_by_non_member_is_refused(rv: RoomVersion) -> None:
    room = Room(rv, join_rule="restricted")
    content = _member("join", join_authorised_via_users_server=CAROL)
    assert room.refused(BOB, "m.room.member", content, BOB, extra_signers=("a.test",))


@ALL
def test_third_party_invite_without_matching_invite_event_is_refused(rv: RoomVersion) -> None:
    room = Room(rv)
    content = _member(
        "invite", third_party_invite={"signed": {"mxid": BOB, "token": "tok", "signatures": {}}}
    )
    assert room.refused(ALICE, "m.room.member", content, BOB)


@ALL
def test_third_party_invite_with_valid_identity_server_signature_is_allowed(
    rv: RoomVersion,
) -> None:
    from protocol.signing import encode_verify_key, generate_signing_key, sign_json

    room = Room(rv)
    is_key = generate_signing_key("0")
    room.send(
        ALICE,
        "m.room.third_party_invite",
        {"display_name": "b...", "public_key": encode_verify_key(is_key), "key_validity_url": ""},
        "tok",
    )
    signed = sign_json({"mxid": BOB, "token": "tok"}, "id.test", is_key)
    room.send(ALICE, "m.room.member", _member("invite", third_party_invite={"signed": signed}), BOB)
    forged = sign_json({"mxid": DAVE, "token": "tok"}, "id.test", generate_signing_key("0"))
    reason = room.refused(
        ALICE, "m.room.member", _member("invite", third_party_invite={"signed": forged}), DAVE
    )
    assert reason is not None and "signature" in reason
