"""JSON that canonical JSON, browsers or the database cannot carry is refused at the edge.

Each refusal is a 400 with the Matrix errcode (``M_NOT_JSON`` for what is not JSON text,
``M_BAD_JSON`` for JSON outside the node's limits), on both engines, and nothing is stored: the
recipient's /sync still answers at once and holds nothing of it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from broker.http.strict_json import MAX_DEPTH, JsonRefused, encode_json, loads_strict
from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, room_path, sync

JSON = {"Content-Type": "application/json"}


def _send_raw(client: Client, room_id: str, raw: bytes) -> Any:
    return client.request("PUT", room_path(room_id, f"send/m.room.message/{uuid.uuid4().hex}"),
                          raw=raw, headers=JSON, timeout=10)


def _to_device_raw(client: Client, recipient: str, value: bytes) -> Any:
    raw = b'{"messages":{"%s":{"*":{"x":%s}}}}' % (recipient.encode(), value)
    return client.request("PUT", f"{V3}/sendToDevice/m.x/{uuid.uuid4().hex}", raw=raw,
                          headers=JSON, timeout=10)


def _messages(client: Client, room_id: str) -> list[dict[str, Any]]:
    body = client.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 50})
    assert client.status == 200, body
    return list(body["chunk"])


def _nested(depth: int) -> bytes:
    return b'{"msgtype":"m.text","body":"x","n":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_lone_surrogate_to_device_is_refused_and_not_delivered(any_node: NodeProcess) -> None:
    alice, bob = any_node.register(), any_node.register()
    body = _to_device_raw(alice, bob.user_id, b'"\\ud800"')
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"
    assert bob.get(f"{V3}/sync", params={"timeout": 0}, timeout=10)["to_device"]["events"] == []


def test_nan_to_device_is_refused_and_not_delivered(any_node: NodeProcess) -> None:
    alice, bob = any_node.register(), any_node.register()
    body = _to_device_raw(alice, bob.user_id, b"NaN")
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"
    assert bob.get(f"{V3}/sync", params={"timeout": 0}, timeout=10)["to_device"]["events"] == []


def test_nan_account_data_is_refused_and_sync_still_answers(any_node: NodeProcess) -> None:
    alice = any_node.register()
    path = f"{V3}/user/{quote(alice.user_id)}/account_data/m.x"
    body = alice.request("PUT", path, raw=b'{"x": NaN}', headers=JSON, timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"
    events = alice.get(f"{V3}/sync", params={"timeout": 0}, timeout=10)["account_data"]["events"]
    assert "m.x" not in [event["type"] for event in events]


def test_lone_surrogate_room_version_is_answered_400(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.request("POST", f"{V3}/createRoom", raw=b'{"room_version":"\\ud800"}',
                         headers=JSON, timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"


@pytest.mark.parametrize("number", [b"Infinity", b"-Infinity", b"NaN", b"1e400"])
def test_non_finite_number_in_message_is_not_json(any_node: NodeProcess, number: bytes) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, b'{"msgtype":"m.text","body":"x","n":%s}' % number)
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"
    assert all(event["type"] != "m.room.message" for event in _messages(alice, room_id))


def test_non_finite_number_in_state_is_not_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.request("PUT", room_path(room_id, "state/m.x/"), raw=b'{"n": NaN}',
                         headers=JSON, timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"
    assert all(event["type"] != "m.x" for event in _messages(alice, room_id))


def test_nesting_past_the_recursion_limit_is_bad_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, _nested(5000))
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"


def test_nesting_one_past_the_limit_is_bad_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, _nested(MAX_DEPTH + 1))
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"
    assert all(event["type"] != "m.room.message" for event in _messages(alice, room_id))


def test_nesting_at_the_limit_is_accepted(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, _nested(MAX_DEPTH))
    assert alice.status == 200, body


def test_deeply_nested_inline_filter_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.get(f"{V3}/sync", params={"filter": '{"a":' + "[" * 1500 + "]" * 1500 + "}"},
                     timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_integer_past_canonical_range_is_bad_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, b'{"msgtype":"m.text","body":"x","n":%d}' % 2**53)
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"
    assert all(event["type"] != "m.room.message" for event in _messages(alice, room_id))


def test_huge_forwarded_count_in_key_backup_is_bad_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    version = alice.post(f"{V3}/room_keys/version", {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": {"public_key": "pk", "signatures": {}}})["version"]
    raw = (b'{"first_message_index":0,"forwarded_count":%d,"is_verified":false,'
           b'"session_data":{"ephemeral":"e","ciphertext":"c","mac":"m"}}' % 10**38)
    body = alice.request("PUT", f"{V3}/room_keys/keys/{quote('!r:x')}/s1", raw=raw,
                         headers=JSON, params={"version": version}, timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"
    assert alice.get(f"{V3}/room_keys/keys", params={"version": version}) == {"rooms": {}}


def test_nul_in_a_body_string_is_bad_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, b'{"msgtype":"m.text","body":"a\\u0000b"}')
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"
    assert all(event["type"] != "m.room.message" for event in _messages(alice, room_id))


def test_nul_in_a_display_name_is_bad_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.request("PUT", f"{V3}/profile/{quote(alice.user_id)}/displayname",
                         raw=b'{"displayname":"a\\u0000"}', headers=JSON, timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"


def test_nul_in_a_path_segment_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.put(room_path(room_id, "send/m.room.message/a%00b"),
                     {"msgtype": "m.text", "body": "x"}, timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_nul_in_a_query_argument_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"from": "a\x00", "dir": "b"},
                     timeout=10)
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_invalid_utf8_is_not_json(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, b'{"msgtype":"m.text","body":"\xff"}')
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"


def test_surrogate_pair_escape_is_accepted_as_one_character(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = _send_raw(alice, room_id, b'{"msgtype":"m.text","body":"\\ud83d\\ude00"}')
    assert alice.status == 200, body
    assert [e["content"]["body"] for e in _messages(alice, room_id)
            if e["type"] == "m.room.message"] == ["\U0001f600"]


def test_sync_after_refused_bodies_still_answers_at_once(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    _send_raw(alice, room_id, b'{"msgtype":"m.text","body":"\\udfff"}')
    assert alice.status == 400
    timeline = sync(alice, timeout=0)["rooms"]["join"][room_id]["timeline"]["events"]
    assert all(event["type"] != "m.room.message" for event in timeline)


# The parser and encoder themselves.

def test_parser_refuses_a_lone_surrogate_in_a_key() -> None:
    with pytest.raises(JsonRefused) as refused:
        loads_strict(b'{"\\udc00": 1}')
    assert refused.value.errcode == "M_NOT_JSON"


def test_parser_accepts_the_smallest_canonical_integer() -> None:
    assert loads_strict(b"[-9007199254740991]") == [-(2**53) + 1]


def test_parser_refuses_one_below_the_smallest_canonical_integer() -> None:
    with pytest.raises(JsonRefused) as refused:
        loads_strict(b"[-9007199254740992]")
    assert refused.value.errcode == "M_BAD_JSON"


def test_encoder_replaces_a_lone_surrogate_instead_of_failing() -> None:
    assert encode_json({"error": "bad \ud800"}) == '{"error":"bad \ufffd"}'.encode()


def test_encoder_replaces_non_finite_numbers_by_null() -> None:
    assert encode_json({"x": float("nan"), "y": [float("inf")]}) == b'{"x":null,"y":[null]}'
