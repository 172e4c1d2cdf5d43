"""Filter upload and download against a running node."""

from __future__ import annotations

from typing import Any

import pytest

from tests.node_harness import Client, NodeProcess

V3 = "/_matrix/client/v3"

SPEC_EXAMPLE = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {"limit": 10, "types": ["m.room.message"],
                     "not_rooms": ["!726s6s6q:example.com"], "not_senders": ["@spam:example.com"]},
        "ephemeral": {"types": ["m.receipt", "m.typing"], "not_rooms": ["!726s6s6q:example.com"],
                      "not_senders": ["@spam:example.com"]},
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


def filter_path(client: Client, user_id: str | None = None) -> str:
    return f"{V3}/user/{user_id or client.user_id}/filter"


def test_upload_then_download_filter(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.post(filter_path(alice), SPEC_EXAMPLE)
    assert alice.status == 200
    assert isinstance(body["filter_id"], str) and not body["filter_id"].startswith("{")
    assert alice.get(f"{filter_path(alice)}/{body['filter_id']}") == SPEC_EXAMPLE


def test_each_upload_gets_a_new_id(node: NodeProcess) -> None:
    alice = node.register()
    first = alice.post(filter_path(alice), {})["filter_id"]
    second = alice.post(filter_path(alice), {"room": {"include_leave": True}})["filter_id"]
    assert first != second
    assert alice.get(f"{filter_path(alice)}/{first}") == {}
    assert alice.get(f"{filter_path(alice)}/{second}") == {"room": {"include_leave": True}}


@pytest.mark.parametrize("filter_id", ["99", "abc", "-1", "0x1"])
def test_unknown_filter_is_not_found(node: NodeProcess, filter_id: str) -> None:
    alice = node.register()
    body = alice.get(f"{filter_path(alice)}/{filter_id}")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_another_users_filter_is_forbidden(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    filter_id = alice.post(filter_path(alice), {})["filter_id"]
    body = bob.get(f"{filter_path(bob, alice.user_id)}/{filter_id}")
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")
    body = bob.post(filter_path(bob, alice.user_id), {})
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_filter_ids_are_per_user(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    filter_id = alice.post(filter_path(alice), {"presence": {"types": []}})["filter_id"]
    body = bob.get(f"{filter_path(bob)}/{filter_id}")
    assert (bob.status, body["errcode"]) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("bad", [
    {"room": {"timeline": {"limit": 0}}},
    {"room": {"timeline": {"limit": "10"}}},
    {"event_format": "raw"},
    {"room": {"rooms": "!a:x"}},
    {"presence": {"senders": ["not-a-user"]}},
    {"room": {"state": {"lazy_load_members": "yes"}}},
])
def test_invalid_filter_is_bad_json(node: NodeProcess, bad: dict[str, Any]) -> None:
    alice = node.register()
    body = alice.post(filter_path(alice), bad)
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_filter_body_must_be_a_json_object(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(filter_path(alice), raw=b"[]", headers={"Content-Type": "application/json"})
    assert (alice.status, body["errcode"]) == (400, "M_NOT_JSON")


def test_filter_upload_needs_an_access_token(node: NodeProcess) -> None:
    alice = node.register()
    anonymous = node.client()
    body = anonymous.post(filter_path(alice), {})
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")
