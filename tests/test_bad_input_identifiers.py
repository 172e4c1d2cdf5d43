"""Identifiers follow the spec's grammar on every endpoint that takes them: 400 otherwise,
and nothing is created or stored."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from protocol.identifiers import is_event_id, is_room_alias, is_room_id, is_user_id
from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room, room_path, sync


def test_username_with_a_newline_is_invalid_username(any_node: NodeProcess) -> None:
    client = any_node.client()
    body = client.post(f"{V3}/register", {"username": "alice\n", "password": "correct horse 1",
                                          "auth": {"type": "m.login.dummy"}})
    assert client.status == 400 and body["errcode"] == "M_INVALID_USERNAME"
    assert client.get(f"{V3}/register/available", params={"username": "alice"}) == \
        {"available": True}


@pytest.mark.parametrize("user_id", ["@bob\n:{server}", "@b:bad host", "@b:{server}:x:y!"])
def test_invite_of_a_malformed_user_id_is_invalid_param(any_node: NodeProcess,
                                                        user_id: str) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.post(room_path(room_id, "invite"),
                      {"user_id": user_id.format(server=any_node.server_name)})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_create_room_inviting_a_malformed_user_id_creates_nothing(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.post(f"{V3}/createRoom", {"invite": [f"@x\n:{any_node.server_name}"]})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"
    assert alice.get(f"{V3}/joined_rooms") == {"joined_rooms": []}


def test_alias_with_a_newline_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    alias = f"#a{uuid.uuid4().hex[:6]}\n:{any_node.server_name}"
    body = alice.put(f"{V3}/directory/room/{quote(alias)}", {"room_id": room_id})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"
    assert alice.get(f"{V3}/directory/room/{quote(alias)}") is not None
    assert alice.status in (400, 404)


def test_create_room_with_a_newline_in_the_alias_name_is_invalid_param(
        any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.post(f"{V3}/createRoom", {"room_alias_name": "a\n"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"
    assert alice.get(f"{V3}/joined_rooms") == {"joined_rooms": []}


def test_to_device_to_a_malformed_user_id_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.put(f"{V3}/sendToDevice/m.x/{uuid.uuid4().hex}",
                     {"messages": {f"@bob\n:{any_node.server_name}": {"*": {}}}})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_key_query_for_a_malformed_user_id_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.post(f"{V3}/keys/query", {"device_keys": {"@bob\n:x": []}})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_profile_of_a_malformed_user_id_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.get(f"{V3}/profile/{quote('@x:bad host')}")
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_join_of_a_room_id_with_a_bad_server_name_is_invalid_param(any_node: NodeProcess
                                                                   ) -> None:
    alice = any_node.register()
    body = alice.post(f"{V3}/join/{quote('!abc:bad host')}", {})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("path", ["send/{long}/t1", "state/{long}/", "state/m.x/{long}"])
def test_event_type_or_state_key_over_255_bytes_is_invalid_param(any_node: NodeProcess,
                                                                 path: str) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.put(room_path(room_id, path.format(long="é" * 128)), {"x": 1})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"
    timeline = sync(alice, timeout=0)["rooms"]["join"][room_id]["timeline"]["events"]
    assert all(len(event["type"]) < 128 for event in timeline)


def test_canonical_alias_the_room_does_not_have_is_bad_alias(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.put(room_path(room_id, "state/m.room.canonical_alias/"),
                     {"alias": f"#nope{uuid.uuid4().hex[:6]}:{any_node.server_name}"})
    assert alice.status == 400 and body["errcode"] == "M_BAD_ALIAS"
    assert alice.get(room_path(room_id, "state/m.room.canonical_alias/")) is not None
    assert alice.status == 404


def test_canonical_alt_alias_of_another_room_is_bad_alias(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id, other = create_room(alice), create_room(alice)
    alias = f"#o{uuid.uuid4().hex[:8]}:{any_node.server_name}"
    alice.put(f"{V3}/directory/room/{quote(alias)}", {"room_id": other})
    assert alice.status == 200
    body = alice.put(room_path(room_id, "state/m.room.canonical_alias/"), {"alt_aliases": [alias]})
    assert alice.status == 400 and body["errcode"] == "M_BAD_ALIAS"


def test_canonical_alias_that_is_not_an_alias_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.put(room_path(room_id, "state/m.room.canonical_alias/"), {"alias": "bad"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_canonical_alias_of_the_room_is_accepted(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    alias = f"#r{uuid.uuid4().hex[:8]}:{any_node.server_name}"
    alice.put(f"{V3}/directory/room/{quote(alias)}", {"room_id": room_id})
    body = alice.put(room_path(room_id, "state/m.room.canonical_alias/"),
                     {"alias": alias, "alt_aliases": [alias]})
    assert alice.status == 200, body


# The grammar itself.

def test_historical_localparts_of_other_servers_are_user_ids() -> None:
    assert is_user_id("@Old!Name:example.org")


def test_user_id_over_255_bytes_is_not_a_user_id() -> None:
    assert not is_user_id("@" + "a" * 243 + ":example.org")


def test_room_version_12_room_ids_need_no_server_name() -> None:
    assert is_room_id("!" + "A" * 43) and not is_room_id("!a b")


def test_event_id_with_a_trailing_newline_is_not_an_event_id() -> None:
    assert is_event_id("$abc") and not is_event_id("$abc\n")


def test_alias_with_a_port_in_the_server_name_is_an_alias() -> None:
    assert is_room_alias("#room:127.0.0.1:8448") and not is_room_alias("#room:")
