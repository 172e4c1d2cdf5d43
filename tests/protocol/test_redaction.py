"""The redaction algorithm for room versions 10 and 11/12."""

from __future__ import annotations

from protocol.redaction import prune_event_dict
from protocol.room_versions import RoomVersions

V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12


def _event(type: str, content: dict, **extra: object) -> dict:
    return {
        "type": type,
        "room_id": "!r:a.test",
        "sender": "@u:a.test",
        "content": content,
        "hashes": {"sha256": "h"},
        "signatures": {"a.test": {"ed25519:1": "s"}},
        "depth": 1,
        "prev_events": [],
        "auth_events": [],
        "origin_server_ts": 1,
        "unsigned": {"age": 1},
        "origin": "a.test",
        "membership": "join",
        "prev_state": [],
        "extra_key": 1,
        **extra,
    }


def test_message_content_is_emptied_in_all_versions() -> None:
    for rv in (V10, V11, V12):
        assert prune_event_dict(rv, _event("m.room.message", {"body": "x"}))["content"] == {}


def test_unknown_top_level_keys_and_unsigned_are_dropped() -> None:
    for rv in (V10, V11):
        pruned = prune_event_dict(rv, _event("m.room.message", {}))
        assert "extra_key" not in pruned and "unsigned" not in pruned
        assert pruned["hashes"] == {"sha256": "h"} and "signatures" in pruned


def test_v10_keeps_origin_membership_prev_state_but_v11_drops_them() -> None:
    v10 = prune_event_dict(V10, _event("m.room.message", {}))
    v11 = prune_event_dict(V11, _event("m.room.message", {}))
    for key in ("origin", "membership", "prev_state"):
        assert key in v10
        assert key not in v11


def test_create_keeps_only_creator_in_v10_and_everything_in_v11() -> None:
    content = {"creator": "@u:a.test", "room_version": "10", "m.federate": False}
    assert prune_event_dict(V10, _event("m.room.create", content))["content"] == {
        "creator": "@u:a.test"
    }
    assert prune_event_dict(V11, _event("m.room.create", content))["content"] == content


def test_power_levels_invite_survives_only_from_v11() -> None:
    content = {"invite": 0, "ban": 50, "users": {"@u:a.test": 100}, "notifications": {"room": 50}}
    assert "invite" not in prune_event_dict(V10, _event("m.room.power_levels", content))["content"]
    assert prune_event_dict(V11, _event("m.room.power_levels", content))["content"] == {
        "invite": 0,
        "ban": 50,
        "users": {"@u:a.test": 100},
    }


def test_redaction_keeps_redacts_in_content_only_from_v11() -> None:
    content = {"redacts": "$x", "reason": "spam"}
    assert prune_event_dict(V10, _event("m.room.redaction", content))["content"] == {}
    assert prune_event_dict(V11, _event("m.room.redaction", content))["content"] == {
        "redacts": "$x"
    }


def test_member_keeps_third_party_invite_signed_only_from_v11() -> None:
    content = {
        "membership": "invite",
        "displayname": "U",
        "join_authorised_via_users_server": "@a:a.test",
        "third_party_invite": {"display_name": "x", "signed": {"mxid": "@u:a.test"}},
    }
    assert prune_event_dict(V10, _event("m.room.member", content))["content"] == {
        "membership": "invite",
        "join_authorised_via_users_server": "@a:a.test",
    }
    assert prune_event_dict(V11, _event("m.room.member", content))["content"] == {
        "membership": "invite",
        "join_authorised_via_users_server": "@a:a.test",
        "third_party_invite": {"signed": {"mxid": "@u:a.test"}},
    }


def test_join_rules_and_history_visibility_keep_their_keys() -> None:
    jr = {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1}
    assert prune_event_dict(V11, _event("m.room.join_rules", jr))["content"] == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership"}],
    }
    hv = {"history_visibility": "shared", "x": 1}
    assert prune_event_dict(V10, _event("m.room.history_visibility", hv))["content"] == {
        "history_visibility": "shared"
    }


def test_prune_does_not_modify_its_input() -> None:
    event = _event("m.room.message", {"body": "x"})
    prune_event_dict(V11, event)
    assert event["content"] == {"body": "x"} and "origin" in event
