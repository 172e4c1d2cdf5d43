"""JSON that canonical JSON, browsers or the database cannot carry is refused at the edge.

Each refusal is a 400 with the Matrix errcode (``M_NOT_JSON`` for what is not JSON text,
``M_BAD_JSON`` for JSON outside the node's limits), on both engines, and nothing is stored: the
recipient's /sync still answers at once and holds nothing of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from protocol.strict_json import MAX_DEPTH, JsonRefused, encode_json, loads_strict
from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, room_path, send_text, sync

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


# Every class of refused JSON on a table of JSON endpoints.

@dataclass(frozen=True)
class Endpoint:
    """A JSON endpoint: ``{me}``, ``{room}`` and ``{txn}`` in the path are the account's user,
    its room and a new transaction ID; ``VALUE`` in the body is where the input goes."""

    method: str
    path: str
    body: bytes


JSON_ENDPOINTS = {
    "send": Endpoint("PUT", "/rooms/{room}/send/m.room.message/{txn}",
                     b'{"msgtype":"m.text","body":VALUE}'),
    "state": Endpoint("PUT", "/rooms/{room}/state/m.x/{txn}", b'{"v":VALUE}'),
    "redact": Endpoint("PUT", "/rooms/{room}/redact/{event}/{txn}", b'{"reason":VALUE}'),
    "create-room": Endpoint("POST", "/createRoom", b'{"name":VALUE}'),
    "account-data": Endpoint("PUT", "/user/{me}/account_data/m.x", b'{"v":VALUE}'),
    "room-account-data": Endpoint("PUT", "/user/{me}/rooms/{room}/account_data/m.x",
                                  b'{"v":VALUE}'),
    "tag": Endpoint("PUT", "/user/{me}/rooms/{room}/tags/u.{txn}", b'{"order":0.5,"v":VALUE}'),
    "to-device": Endpoint("PUT", "/sendToDevice/m.x/{txn}",
                          b'{"messages":{"{me_raw}":{"*":{"v":VALUE}}}}'),
    "display-name": Endpoint("PUT", "/profile/{me}/displayname", b'{"displayname":VALUE}'),
    "filter": Endpoint("POST", "/user/{me}/filter", b'{"account_data":{"types":[VALUE]}}'),
    "user-directory": Endpoint("POST", "/user_directory/search", b'{"search_term":VALUE}'),
    "keys-upload": Endpoint("POST", "/keys/upload",
                            b'{"one_time_keys":{"signed_curve25519:{txn}":VALUE}}'),
    "key-backup": Endpoint("POST", "/room_keys/version",
                           b'{"algorithm":"m.megolm_backup.v1.curve25519-aes-sha2",'
                           b'"auth_data":{"public_key":VALUE}}'),
    "report": Endpoint("POST", "/rooms/{room}/report", b'{"reason":VALUE}'),
    "push-rule": Endpoint("PUT", "/pushrules/global/override/u.{txn}",
                          b'{"actions":["notify"],"conditions":[{"kind":"event_match",'
                          b'"key":"content.body","pattern":VALUE}]}'),
    "typing": Endpoint("PUT", "/rooms/{room}/typing/{me}", b'{"typing":true,"timeout":VALUE}'),
    "receipt": Endpoint("POST", "/rooms/{room}/receipt/m.read/{event}", b'{"thread_id":VALUE}'),
}

REFUSED_VALUES = {
    "nested-one-past-the-limit": (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "M_BAD_JSON"),
    "nested-past-the-recursion-limit": (b"[" * 5000 + b"]" * 5000, "M_BAD_JSON"),
    "lone-high-surrogate": (b'"\\ud800"', "M_NOT_JSON"),
    "lone-low-surrogate": (b'"a\\udc00b"', "M_NOT_JSON"),
    "nan": (b"NaN", "M_NOT_JSON"),
    "infinity": (b"Infinity", "M_NOT_JSON"),
    "minus-infinity": (b"-Infinity", "M_NOT_JSON"),
    "past-a-double": (b"1e400", "M_NOT_JSON"),
    "integer-2^53": (b"9007199254740992", "M_BAD_JSON"),
    "integer-minus-2^53": (b"-9007199254740992", "M_BAD_JSON"),
    "nul": (b'"a\\u0000b"', "M_BAD_JSON"),
}

# Over the 65,536 bytes of an event, under the 1 MiB body limit.
HUGE_STRING = b'"' + b"x" * 100_000 + b'"'
HUGE_STRING_ANSWERS = {
    "send": (413, "M_TOO_LARGE"),
    "state": (413, "M_TOO_LARGE"),
    "create-room": (413, "M_TOO_LARGE"),
    "redact": (413, "M_TOO_LARGE"),
    "display-name": (400, "M_INVALID_PARAM"),
    "report": (400, "M_INVALID_PARAM"),
}


@dataclass(frozen=True)
class Account:
    client: Client
    room_id: str
    event_id: str

    def path(self, template: str) -> str:
        return V3 + template.format(me=quote(self.client.user_id), room=quote(self.room_id),
                                    event=quote(self.event_id), txn=uuid.uuid4().hex)

    def call(self, endpoint: Endpoint, value: bytes) -> Any:
        body = endpoint.body.replace(b"{txn}", uuid.uuid4().hex.encode()).replace(
            b"{me_raw}", self.client.user_id.encode()).replace(b"VALUE", value)
        return self.client.request(endpoint.method, self.path(endpoint.path), raw=body,
                                   headers=JSON, timeout=10)


@pytest.fixture(scope="module")
def account(any_node: NodeProcess) -> Account:
    alice = any_node.register()
    room_id = create_room(alice)
    return Account(alice, room_id, send_text(alice, room_id, "to redact and to receipt"))


@pytest.mark.parametrize("value", REFUSED_VALUES)
@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_json_canonical_json_cannot_carry_is_refused_on_every_endpoint(
        account: Account, endpoint: str, value: str) -> None:
    raw, errcode = REFUSED_VALUES[value]
    body = account.call(JSON_ENDPOINTS[endpoint], raw)
    assert (account.client.status, body["errcode"]) == (400, errcode), body


@pytest.mark.parametrize("endpoint", HUGE_STRING_ANSWERS)
def test_a_string_too_large_for_its_field_is_refused(account: Account, endpoint: str) -> None:
    body = account.call(JSON_ENDPOINTS[endpoint], HUGE_STRING)
    assert (account.client.status, body["errcode"]) == HUGE_STRING_ANSWERS[endpoint], body


@pytest.mark.parametrize("endpoint", sorted(set(JSON_ENDPOINTS) - set(HUGE_STRING_ANSWERS)))
def test_a_huge_string_is_stored_or_refused_never_failing(account: Account,
                                                          endpoint: str) -> None:
    body = account.call(JSON_ENDPOINTS[endpoint], HUGE_STRING)
    assert account.client.status < 500, body
    assert account.client.status == 200 or "errcode" in body, body


# NUL in the path and the query of a table of endpoints (PostgreSQL cannot store it in text).

NUL_IN_PATH = {
    "transaction-id": ("PUT", "/rooms/{room}/send/m.room.message/a%00b"),
    "state-key": ("PUT", "/rooms/{room}/state/m.x/a%00b"),
    "event-type": ("PUT", "/rooms/{room}/send/m.x%00/{txn}"),
    "account-data-type": ("PUT", "/user/{me}/account_data/m.x%00"),
    "tag": ("PUT", "/user/{me}/rooms/{room}/tags/u.a%00b"),
    "room-alias": ("GET", "/directory/room/%23a%00b:example.org"),
    "user-id": ("GET", "/profile/@a%00b:example.org"),
    "device-id": ("GET", "/devices/a%00b"),
    "filter-id": ("GET", "/user/{me}/filter/1%00"),
    "room-id": ("GET", "/rooms/!a%00b:example.org/messages"),
    "event-id": ("GET", "/rooms/{room}/event/$a%00b"),
    "backup-version": ("GET", "/room_keys/version/1%00"),
}

NUL_IN_QUERY = {
    "messages-from": "/rooms/{room}/messages?dir=b&from=a%00",
    "sync-since": "/sync?timeout=0&since=s1%00",
    "keys-changes": "/keys/changes?from=a%00&to=b",
    "public-rooms-server": "/publicRooms?server=a%00",
    "backup-version": "/room_keys/keys?version=1%00",
    "context-filter": "/rooms/{room}/context/{event}?filter=%7B%22a%22:%22%00%22%7D",
}


@pytest.mark.parametrize("where", NUL_IN_PATH)
def test_nul_in_a_path_segment_is_invalid_param_on_every_endpoint(account: Account,
                                                                   where: str) -> None:
    method, template = NUL_IN_PATH[where]
    body = account.client.request(method, account.path(template), body={}, timeout=10)
    assert (account.client.status, body["errcode"]) == (400, "M_INVALID_PARAM"), body


@pytest.mark.parametrize("where", NUL_IN_QUERY)
def test_nul_in_a_query_argument_is_refused_on_every_endpoint(account: Account,
                                                              where: str) -> None:
    body = account.client.get(account.path(NUL_IN_QUERY[where]), timeout=10)
    assert account.client.status == 400 and body["errcode"] in ("M_INVALID_PARAM",
                                                                 "M_BAD_JSON"), body
