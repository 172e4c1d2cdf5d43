"""Reporting events, rooms and users through the Client-Server API."""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, join, room_path, send_text


def _stored_reports(node: NodeProcess, reporter: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(node.workdir / "data" / "broker.db")
    try:
        return conn.execute(
            "SELECT room_id, event_id, reported_user_id, reason, score FROM event_reports"
            " WHERE user_id = ? ORDER BY id", (reporter,)).fetchall()
    finally:
        conn.close()


def _room_with_message(node: NodeProcess) -> tuple[Client, Client, str, str]:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    return alice, bob, room_id, send_text(alice, room_id, "offensive")


def test_event_report_is_stored_with_the_sender(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _room_with_message(node)
    body = bob.post(room_path(room_id, f"report/{quote(event_id)}"),
                    {"reason": "abuse", "score": -100})
    assert bob.status == 200 and body == {}
    assert _stored_reports(node, bob.user_id) == [
        (room_id, event_id, alice.user_id, "abuse", -100)]
    assert "reported event" in node.log() and event_id in node.log()


def test_event_report_body_fields_are_optional(node: NodeProcess) -> None:
    _alice, bob, room_id, event_id = _room_with_message(node)
    bob.post(room_path(room_id, f"report/{quote(event_id)}"), {})
    assert bob.status == 200
    assert _stored_reports(node, bob.user_id)[0][3:] == (None, None)


def test_event_report_score_and_reason_are_checked(node: NodeProcess) -> None:
    _alice, bob, room_id, event_id = _room_with_message(node)
    path = room_path(room_id, f"report/{quote(event_id)}")
    for body, errcode in (({"score": 5}, "M_INVALID_PARAM"), ({"score": -101}, "M_INVALID_PARAM"),
                          ({"score": "bad"}, "M_BAD_JSON"), ({"reason": 3}, "M_BAD_JSON")):
        answer = bob.post(path, body)
        assert bob.status == 400 and answer["errcode"] == errcode, body
    assert _stored_reports(node, bob.user_id) == []


def test_reporting_from_outside_the_room_is_not_found(node: NodeProcess) -> None:
    _alice, _bob, room_id, event_id = _room_with_message(node)
    carol = node.register()
    body = carol.post(room_path(room_id, f"report/{quote(event_id)}"), {"reason": "x"})
    assert carol.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_reporting_an_event_of_another_room_is_not_found(node: NodeProcess) -> None:
    _alice, bob, room_id, _event_id = _room_with_message(node)
    elsewhere = create_room(bob)
    foreign = send_text(bob, elsewhere, "mine")
    body = bob.post(room_path(room_id, f"report/{quote(foreign)}"), {})
    assert bob.status == 404 and body["errcode"] == "M_NOT_FOUND"
    body = bob.post(room_path(room_id, "report/%24missing"), {})
    assert bob.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_room_can_be_reported_without_joining(node: NodeProcess) -> None:
    _alice, _bob, room_id, _event_id = _room_with_message(node)
    carol = node.register()
    assert carol.post(room_path(room_id, "report"), {"reason": "spam room"}) == {}
    assert _stored_reports(node, carol.user_id) == [(room_id, None, None, "spam room", None)]


def test_reporting_an_unknown_room_is_not_found(node: NodeProcess) -> None:
    carol = node.register()
    body = carol.post(room_path("!nowhere:" + node.server_name, "report"), {})
    assert carol.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_user_can_be_reported(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    assert bob.post(f"{V3}/users/{quote(alice.user_id)}/report", {"reason": "harassment"}) == {}
    assert _stored_reports(node, bob.user_id) == [("", None, alice.user_id, "harassment", None)]


def test_reporting_unknown_or_malformed_users_fails(node: NodeProcess) -> None:
    bob = node.register()
    body = bob.post(f"{V3}/users/{quote('@ghost:' + node.server_name)}/report", {})
    assert bob.status == 404 and body["errcode"] == "M_NOT_FOUND"
    body = bob.post(f"{V3}/users/not-a-user/report", {})
    assert bob.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_reports_need_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.post(room_path("!r:" + node.server_name, "report"), {})
    assert anonymous.status == 401 and body["errcode"] == "M_MISSING_TOKEN"


def test_reports_are_stored_on_both_engines(any_node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _room_with_message(any_node)
    bob.post(room_path(room_id, f"report/{quote(event_id)}"), {"reason": "a"})
    assert bob.status == 200
    bob.post(room_path(room_id, "report"), {"reason": "b"})
    assert bob.status == 200
    bob.post(f"{V3}/users/{quote(alice.user_id)}/report", {"reason": "c"})
    assert bob.status == 200
