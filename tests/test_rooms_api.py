"""Rooms through the Client-Server API: creation, membership, power levels, state, redaction."""

from __future__ import annotations

from urllib.parse import quote

from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room, join, room_path, send_text


def test_created_room_v12_id_is_the_create_event_hash(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice, name="Budget")
    assert room_id.startswith("!") and ":" not in room_id
    create = alice.get(room_path(room_id, "state/m.room.create"))
    assert create["room_version"] == "12"


def test_room_version_10_is_available(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice, room_version="10")
    assert room_id.endswith(":" + node.server_name)
    assert alice.get(room_path(room_id, "state/m.room.create"))["room_version"] == "10"


def test_unknown_room_version_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(f"{V3}/createRoom", {"room_version": "999"})
    assert alice.status == 400 and body["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"


def test_create_room_with_bad_invite_is_refused_and_writes_nothing(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(f"{V3}/createRoom", {"invite": ["not-a-user"]})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"
    assert alice.get(f"{V3}/joined_rooms")["joined_rooms"] == []


def test_create_room_sets_name_topic_and_alias(node: NodeProcess) -> None:
    alice = node.register()
    alias_name = "budget" + alice.user_id[2:8]
    room_id = create_room(alice, name="Budget", topic="FY27", room_alias_name=alias_name,
                          preset="public_chat")
    assert alice.get(room_path(room_id, "state/m.room.name")) == {"name": "Budget"}
    assert alice.get(room_path(room_id, "state/m.room.topic")) == {"topic": "FY27"}
    bob = node.register()
    body = bob.post(f"{V3}/join/{quote(f'#{alias_name}:{node.server_name}')}", {})
    assert bob.status == 200 and body["room_id"] == room_id


def test_alias_already_taken_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    alias_name = "dup" + alice.user_id[2:8]
    create_room(alice, room_alias_name=alias_name)
    body = alice.post(f"{V3}/createRoom", {"room_alias_name": alias_name})
    assert alice.status == 400 and body["errcode"] == "M_ROOM_IN_USE"


def test_send_is_idempotent_per_transaction_id(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    path = room_path(room_id, "send/m.room.message/txn-1")
    first = alice.put(path, {"msgtype": "m.text", "body": "once"})
    second = alice.put(path, {"msgtype": "m.text", "body": "once"})
    assert first["event_id"] == second["event_id"]


def test_sending_without_being_joined_is_forbidden(node: NodeProcess) -> None:
    alice, mallory = node.register(), node.register()
    room_id = create_room(alice)
    body = mallory.put(room_path(room_id, "send/m.room.message/t"), {"body": "x"})
    assert mallory.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_sending_to_unknown_room_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(room_path("!nope:" + node.server_name, "send/m.room.message/t"),
                     {"body": "x"})
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_uninvited_user_cannot_join_private_room(node: NodeProcess) -> None:
    alice, mallory = node.register(), node.register()
    room_id = create_room(alice, preset="private_chat")
    body = mallory.post(f"{V3}/join/{quote(room_id)}", {})
    assert mallory.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_invited_user_can_join_private_room(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="private_chat")
    alice.post(room_path(room_id, "invite"), {"user_id": bob.user_id})
    assert alice.status == 200
    join(bob, room_id)
    members = alice.get(room_path(room_id, "joined_members"))["joined"]
    assert set(members) == {alice.user_id, bob.user_id}


def test_inviting_unknown_local_user_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    body = alice.post(room_path(room_id, "invite"),
                      {"user_id": f"@ghost-{alice.user_id[2:8]}:{node.server_name}"})
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_power_levels_stop_a_member_renaming_the_room(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    body = bob.put(room_path(room_id, "state/m.room.name"), {"name": "Hijacked"})
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"
    assert alice.get(room_path(room_id, "state/m.room.name")).get("name") != "Hijacked"


def test_raising_a_members_power_lets_them_rename(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    levels = alice.get(room_path(room_id, "state/m.room.power_levels"))
    levels["users"][bob.user_id] = 50
    alice.put(room_path(room_id, "state/m.room.power_levels"), levels)
    assert alice.status == 200
    bob.put(room_path(room_id, "state/m.room.name"), {"name": "Renamed"})
    assert bob.status == 200


def test_kick_removes_member_and_ban_keeps_them_out(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    alice.post(room_path(room_id, "kick"), {"user_id": bob.user_id, "reason": "test"})
    assert alice.status == 200
    assert bob.user_id not in alice.get(room_path(room_id, "joined_members"))["joined"]
    alice.post(room_path(room_id, "ban"), {"user_id": bob.user_id})
    body = bob.post(f"{V3}/join/{quote(room_id)}", {})
    assert bob.status == 403, body
    alice.post(room_path(room_id, "unban"), {"user_id": bob.user_id})
    join(bob, room_id)


def test_member_without_power_cannot_kick(node: NodeProcess) -> None:
    alice, bob, carol = node.register(), node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    join(carol, room_id)
    body = bob.post(room_path(room_id, "kick"), {"user_id": carol.user_id})
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_redaction_removes_content_and_records_the_redaction(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    event_id = send_text(alice, room_id, "secret")
    redaction = alice.put(room_path(room_id, f"redact/{quote(event_id)}/r1"), {"reason": "oops"})
    assert alice.status == 200
    event = alice.get(room_path(room_id, f"event/{quote(event_id)}"))
    assert event["content"] == {}
    assert event["unsigned"]["redacted_because"]["event_id"] == redaction["event_id"]


def test_member_cannot_redact_someone_elses_message(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    event_id = send_text(alice, room_id, "mine")
    body = bob.put(room_path(room_id, f"redact/{quote(event_id)}/r1"), {})
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_state_event_round_trip_and_missing_state_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    alice.put(room_path(room_id, "state/in.gov.broker.tag/classification"), {"level": "official"})
    assert alice.get(room_path(room_id, "state/in.gov.broker.tag/classification")) == {
        "level": "official"}
    body = alice.get(room_path(room_id, "state/m.room.topic"))
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"
    full = alice.get(room_path(room_id, "state"))
    assert any(e["type"] == "in.gov.broker.tag" for e in full)


def test_encryption_cannot_be_turned_off(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    alice.put(room_path(room_id, "state/m.room.encryption"),
              {"algorithm": "m.megolm.v1.aes-sha2"})
    assert alice.status == 200
    body = alice.put(room_path(room_id, "state/m.room.encryption"), {})
    assert alice.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_leave_then_forget_removes_room(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    body = bob.post(room_path(room_id, "forget"), {})
    assert bob.status == 400, body
    bob.post(room_path(room_id, "leave"), {})
    assert room_id not in bob.get(f"{V3}/joined_rooms")["joined_rooms"]
    bob.post(room_path(room_id, "forget"), {})
    assert bob.status == 200


def test_left_user_cannot_read_later_messages(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    before = send_text(alice, room_id, "before")
    bob.post(room_path(room_id, "leave"), {})
    after = send_text(alice, room_id, "after")
    bob.get(room_path(room_id, f"event/{quote(before)}"))
    assert bob.status == 200
    body = bob.get(room_path(room_id, f"event/{quote(after)}"))
    assert bob.status == 404, body
    chunk = bob.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 50})["chunk"]
    assert after not in [e["event_id"] for e in chunk]


def test_members_lists_memberships_with_filters(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, invite=[bob.user_id])
    everyone = alice.get(room_path(room_id, "members"))["chunk"]
    assert {e["state_key"] for e in everyone} == {alice.user_id, bob.user_id}
    invited = alice.get(room_path(room_id, "members"), params={"membership": "invite"})["chunk"]
    assert [e["state_key"] for e in invited] == [bob.user_id]


def test_display_name_change_is_restated_in_joined_rooms(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    alice.put(f"{V3}/profile/{quote(alice.user_id)}/displayname", {"displayname": "Alice A."})
    assert alice.status == 200
    member = alice.get(room_path(room_id, f"state/m.room.member/{quote(alice.user_id)}"))
    assert member == {"membership": "join", "displayname": "Alice A."}


def test_private_rooms_are_encrypted_by_default(node: NodeProcess) -> None:
    alice = node.register()
    private = create_room(alice, preset="private_chat")
    assert alice.get(room_path(private, "state/m.room.encryption")) == {
        "algorithm": "m.megolm.v1.aes-sha2"}
    public = create_room(alice, preset="public_chat")
    alice.get(room_path(public, "state/m.room.encryption"))
    assert alice.status == 404



def test_joined_members_leave_out_an_avatar_never_set(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    joined = alice.get(room_path(room_id, "joined_members"))["joined"]
    assert joined == {alice.user_id: {"display_name": alice.user_id[1:].split(":")[0]}}
