"""Building, finalising, validating and formatting events."""

from __future__ import annotations

import copy

import pytest

from protocol.errors import InvalidEventError
from protocol.events import Event, build_pdu, event_from_pdu, finalize_pdu, format_client_event
from protocol.hashing import check_content_hash, compute_event_id
from protocol.room_versions import (
    DEFAULT_ROOM_VERSION,
    KNOWN_ROOM_VERSIONS,
    RoomVersions,
)
from protocol.signing import generate_signing_key, get_verify_key, verify_event_signature

KEY = generate_signing_key("t")
V10, V11, V12 = RoomVersions.V10, RoomVersions.V11, RoomVersions.V12


def _build(rv=V11, **overrides):  # type: ignore[no-untyped-def]
    args = dict(
        room_id="!r:a.test",
        sender="@u:a.test",
        type="m.room.message",
        content={"msgtype": "m.text", "body": "hi"},
        prev_event_ids=["$p"],
        auth_event_ids=["$a"],
        depth=3,
        origin_server_ts=1000,
    )
    args.update(overrides)
    return build_pdu(rv, **args)


def test_known_room_versions_and_default() -> None:
    assert set(KNOWN_ROOM_VERSIONS) == {"10", "11", "12"}
    assert DEFAULT_ROOM_VERSION == "12"
    assert V12.state_res == "v2.1" and V11.state_res == "v2"
    assert V12.privileged_creators and not V11.privileged_creators
    assert V11.implicit_room_creator and not V10.implicit_room_creator


def test_finalize_pdu_hashes_signs_and_identifies() -> None:
    event = finalize_pdu(_build(), "a.test", KEY, V11)
    assert check_content_hash(event.pdu)
    verify_event_signature(event.pdu, "a.test", get_verify_key(KEY), V11)
    assert event.event_id == compute_event_id(event.pdu, V11)


def test_event_properties() -> None:
    event = finalize_pdu(_build(), "a.test", KEY, V11)
    assert event.type == "m.room.message"
    assert event.sender == "@u:a.test"
    assert event.room_id == "!r:a.test"
    assert event.state_key is None and not event.is_state()
    assert event.prev_event_ids == ["$p"] and event.auth_event_ids == ["$a"]
    assert event.depth == 3 and event.origin_server_ts == 1000
    assert event.room_version is V11 and event.membership is None and event.redacts is None


def test_member_event_exposes_membership_and_state_key() -> None:
    pdu = _build(type="m.room.member", content={"membership": "join"}, state_key="@u:a.test")
    event = finalize_pdu(pdu, "a.test", KEY, V11)
    assert event.is_state() and event.state_key == "@u:a.test" and event.membership == "join"


def test_empty_state_key_is_still_state() -> None:
    event = finalize_pdu(_build(type="m.room.topic", state_key=""), "a.test", KEY, V11)
    assert event.is_state() and event.state_key == ""


def test_redacts_is_in_content_from_v11_and_top_level_in_v10() -> None:
    v11 = finalize_pdu(
        _build(type="m.room.redaction", content={}, redacts="$x"), "a.test", KEY, V11
    )
    assert v11.pdu["content"]["redacts"] == "$x" and "redacts" not in v11.pdu
    assert v11.redacts == "$x"
    v10 = finalize_pdu(
        _build(V10, type="m.room.redaction", content={}, redacts="$x"), "a.test", KEY, V10
    )
    assert v10.pdu["redacts"] == "$x" and "redacts" not in v10.pdu["content"]
    assert v10.redacts == "$x"


def test_v12_create_has_no_room_id_and_derives_it() -> None:
    pdu = _build(
        V12, room_id=None, type="m.room.create", content={}, state_key="", prev_event_ids=[]
    )
    assert "room_id" not in pdu
    event = finalize_pdu(pdu, "a.test", KEY, V12)
    assert event.room_id == "!" + event.event_id[1:]


def test_v12_auth_events_exclude_the_create_event() -> None:
    room_id = "!" + "A" * 43
    pdu = _build(V12, room_id=room_id, auth_event_ids=["$" + "A" * 43, "$pl"])
    assert pdu["auth_events"] == ["$pl"]


def test_v10_create_gets_creator_and_v11_does_not() -> None:
    v10 = _build(V10, type="m.room.create", content={}, state_key="", prev_event_ids=[])
    v11 = _build(V11, type="m.room.create", content={}, state_key="", prev_event_ids=[])
    assert v10["content"]["creator"] == "@u:a.test"
    assert "creator" not in v11["content"]


def test_build_pdu_does_not_mutate_caller_content() -> None:
    content: dict = {}
    _build(type="m.room.redaction", content=content, redacts="$x")
    assert content == {}


def test_event_id_is_cached() -> None:
    event = Event(copy.deepcopy(finalize_pdu(_build(), "a.test", KEY, V11).pdu), V11)
    first = event.event_id
    event.pdu["content"]["body"] = "changed"  # not allowed in practice; shows caching
    assert event.event_id == first


def test_unsigned_is_local_and_not_hashed() -> None:
    event = finalize_pdu(_build(unsigned={"transaction_id": "t1"}), "a.test", KEY, V11)
    before = event.event_id
    event.unsigned["age"] = 10
    assert compute_event_id(event.pdu, V11) == before
    assert event.unsigned["transaction_id"] == "t1"


def test_event_from_pdu_accepts_a_finalized_event() -> None:
    pdu = finalize_pdu(_build(), "a.test", KEY, V11).pdu
    event = event_from_pdu(copy.deepcopy(pdu), V11)
    assert event.event_id == compute_event_id(pdu, V11)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda p: p.pop("room_id"),
        lambda p: p.update(sender="not-a-user"),
        lambda p: p.update(depth="3"),
        lambda p: p.update(content=[]),
        lambda p: p.update(prev_events="$x"),
        lambda p: p.update(state_key=5),
        lambda p: p.update(content={"n": 1.5}),
        lambda p: p.update(content={"n": 2**53}),
        lambda p: p.update(content={"big": "x" * 70000}),
        lambda p: p.pop("hashes"),
        lambda p: p.update(sender="@" + "a" * 250 + ":a.test"),
        lambda p: p.update(sender="@alice\n:a.test"),
        lambda p: p.update(sender="@alice:bad server"),
        lambda p: p.update(room_id="!" + "r" * 250 + ":a.test"),
        lambda p: p.update(room_id="!room:a.test\n"),
        lambda p: p.update(type="m." + "t" * 254),
        lambda p: p.update(state_key="k" * 256),
        lambda p: p.update(prev_events=["$" + "e" * 255]),
        lambda p: p.update(auth_events=["$bad id"]),
    ],
)
def test_event_from_pdu_refuses_malformed_events(mutation) -> None:  # type: ignore[no-untyped-def]
    pdu = copy.deepcopy(finalize_pdu(_build(), "a.test", KEY, V11).pdu)
    mutation(pdu)
    with pytest.raises(InvalidEventError):
        event_from_pdu(pdu, V11)


@pytest.mark.parametrize("sender", ["@Alice:a.test", "@a!b=c:a.test", "@" + "a" * 246 + ":a.test"])
def test_event_from_pdu_accepts_historical_and_maximal_user_ids(sender: str) -> None:
    pdu = finalize_pdu(_build(sender=sender), "a.test", KEY, V11).pdu
    assert event_from_pdu(copy.deepcopy(pdu), V11).sender == sender


def test_format_client_event_shape() -> None:
    event = finalize_pdu(
        _build(type="m.room.topic", state_key="", content={"topic": "t"}), "a.test", KEY, V11
    )
    event.unsigned["age"] = 7
    out = format_client_event(event)
    assert out == {
        "event_id": event.event_id,
        "type": "m.room.topic",
        "content": {"topic": "t"},
        "sender": "@u:a.test",
        "origin_server_ts": 1000,
        "unsigned": {"age": 7},
        "state_key": "",
        "room_id": "!r:a.test",
    }
    assert "room_id" not in format_client_event(event, include_room_id=False)


def test_format_client_event_gives_redacts_in_both_places() -> None:
    for rv in (V10, V11):
        event = finalize_pdu(
            _build(rv, type="m.room.redaction", content={"reason": "r"}, redacts="$x"),
            "a.test",
            KEY,
            rv,
        )
        out = format_client_event(event)
        assert out["redacts"] == "$x" and out["content"]["redacts"] == "$x"
        assert out["content"]["reason"] == "r"
