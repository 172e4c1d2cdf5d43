"""Official groups hold over federation: a node of ours refuses a user of another server (public
here until nodes attest their users) a way into an official group (make_join, send_join,
make_knock, send_knock), with the rule's name in the error, while an informal public room lets
the same user in; and such a user's invite reaches a verified user only if that user is
reachable by the public, as their knock on a direct chat does.

A real node (its organisations from the file its config names) and a signed fake peer; the
local user is verified by a ``broker users verify`` command, which the running node takes in
through its change feed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.reachability import UNREACHABLE
from broker.cli import main
from broker.group_rules import VERIFIED_ONLY
from broker.rooms.room_kind import GROUP_EVENT
from protocol.auth_rules import auth_types_for_event
from protocol.events import build_pdu, finalize_pdu
from protocol.room_versions import get_room_version
from tests.fake_peer import FED_V2, FakePeer
from tests.node_harness import Client, NodeProcess
from tests.peer_env import assert_error, node_with_organisations
from tests.room_helpers import create_room

PROFILE = "/_matrix/client/v3/profile"


@pytest.fixture(scope="module")
def env(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, FakePeer, Client]]:
    workdir: Path = tmp_path_factory.mktemp("federation_groups")
    node, peer = node_with_organisations(workdir, [{"id": "mha", "name": "MHA"}])
    try:
        vera = node.register("vera")
        assert main(["users", "verify", "vera", "--organisation", "mha", "--basis",
                     "document", "--config", str(node.config_path)]) == 0
        _until_verified(vera)
        yield node, peer, vera
    finally:
        node.stop()


def _until_verified(client: Client, timeout: float = 10.0) -> None:
    """Wait for the running node to take in the command's verification (it polls every
    second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"{PROFILE}/{client.user_id}/in.gov.broker.class")
        if answer.get("in.gov.broker.class") == "verified":
            return
        time.sleep(0.1)
    raise AssertionError("the node did not take in the verification")


def _official_group(vera: Client) -> str:
    return create_room(vera, preset="public_chat", initial_state=[
        {"type": GROUP_EVENT, "content": {"kind": "official", "organisation": "mha"}}])


def test_make_join_of_a_remote_user_to_an_official_group_is_refused_naming_the_rule(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    response = peer.make_join(node, _official_group(vera), peer.user_id())
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == VERIFIED_ONLY


def test_the_same_remote_user_may_join_an_informal_public_room(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = create_room(vera, preset="public_chat")
    assert peer.make_join(node, room_id, peer.user_id()).status_code == 200


def _invite_from_peer(node: NodeProcess, peer: FakePeer, invitee: str) -> Any:
    """A federation invite of ``invitee`` by a user of the peer into a room the peer holds."""
    version = get_room_version("10")
    room_id = f"!{uuid.uuid4().hex[:18]}:{peer.server_name}"
    pdu = build_pdu(version, room_id=room_id, sender=peer.user_id(), type="m.room.member",
                    content={"membership": "invite"}, state_key=invitee, prev_event_ids=[],
                    auth_event_ids=[], depth=1, origin_server_ts=int(time.time() * 1000))
    event = finalize_pdu(pdu, peer.server_name, peer.signing_key, version)
    return peer.request(
        node, "PUT", f"{FED_V2}/invite/{quote(room_id, safe='')}/"
        f"{quote(event.event_id, safe='')}",
        {"event": event.pdu, "room_version": "10", "invite_room_state": []})


def test_an_invite_from_another_server_to_an_unreachable_verified_user_is_refused(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    response = _invite_from_peer(node, peer, vera.user_id)
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == UNREACHABLE


def test_an_invite_from_another_server_reaches_a_public_user(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, _vera = env
    assert _invite_from_peer(node, peer, node.register().user_id).status_code == 200


def test_an_invite_from_another_server_reaches_a_verified_user_reachable_by_the_public(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, _vera = env
    verified = node.register()
    assert main(["users", "verify", verified.user_id.split(":")[0][1:], "--organisation",
                 "mha", "--basis", "document", "--config", str(node.config_path)]) == 0
    _until_verified(verified)
    verified.put(f"/_matrix/client/v3/user/{quote(verified.user_id)}/account_data/"
                 "in.gov.broker.reachability", {"public": True})
    assert verified.status == 200
    assert _invite_from_peer(node, peer, verified.user_id).status_code == 200


def test_a_group_event_from_another_server_makes_no_official_group(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    remote = peer.user_id()
    room_id = create_room(vera, preset="public_chat",
                          power_level_content_override={"users": {remote: 100}})
    room = peer.join(node, room_id, remote)
    event = peer.build_event(room, remote, GROUP_EVENT,
                             {"kind": "official", "organisation": "mha"}, state_key="")
    peer.send_pdus(node, room, event)
    state = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{GROUP_EVENT}"
    deadline = time.monotonic() + 10
    while vera.get(state).get("kind") != "official" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vera.status == 200  # the node took the event in...
    public = node.register()
    public.post(f"/_matrix/client/v3/join/{quote(room_id)}", {})
    assert public.status == 200  # ...and the room stays informal


def _join_built_by_the_peer(vera: Client, peer: FakePeer, room_id: str, user_id: str,
                            membership: str = "join") -> Any:
    """A join (or another ``membership``) of ``user_id`` into ``room_id`` that the peer builds
    and signs itself from what a member sees of the room (no make_join template: the node
    refuses one)."""
    version = get_room_version("12")
    state = {(e["type"], e["state_key"]): e["event_id"]
             for e in vera.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/state")}
    latest = vera.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                      params={"dir": "b", "limit": "1"})["chunk"][0]["event_id"]
    content = {"membership": membership}
    keys = auth_types_for_event(version, "m.room.member", user_id, user_id, content)
    pdu = build_pdu(version, room_id=room_id, sender=user_id, type="m.room.member",
                    content=content, state_key=user_id, prev_event_ids=[latest],
                    auth_event_ids=[state[k] for k in keys if k in state], depth=100,
                    origin_server_ts=int(time.time() * 1000))
    return finalize_pdu(pdu, peer.server_name, peer.signing_key, version)


def test_send_join_of_a_remote_user_to_an_official_group_is_refused_naming_the_rule(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = _official_group(vera)
    user = peer.user_id()
    join = _join_built_by_the_peer(vera, peer, room_id, user)
    response = peer.send_join(node, room_id, join.event_id, join.pdu)
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == VERIFIED_ONLY
    assert _member_state(vera, room_id, user) == 404


def test_send_join_built_the_same_way_into_an_informal_room_is_taken(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = create_room(vera, preset="public_chat")
    join = _join_built_by_the_peer(vera, peer, room_id, peer.user_id())
    assert peer.send_join(node, room_id, join.event_id, join.pdu).status_code == 200


def _member_state(vera: Client, room_id: str, user_id: str) -> int:
    vera.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}")
    return vera.status


def _push_join(env: tuple[NodeProcess, FakePeer, Client], room_id: str) -> tuple[str, Any]:
    """A new user of the peer joins ``room_id`` by a join pushed in a transaction (no
    handshake): the user, and the node's result for that PDU."""
    node, peer, vera = env
    user = peer.user_id()
    join = _join_built_by_the_peer(vera, peer, room_id, user)
    response = peer.send_transaction(node, peer.transaction([join]))
    assert response.status_code == 200, response.text
    return user, response.json()["pdus"][join.event_id]


def test_a_join_pushed_in_a_transaction_into_an_official_group_is_soft_failed(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    _node, _peer, vera = env
    room_id = _official_group(vera)
    user, _result = _push_join(env, room_id)
    assert _member_state(vera, room_id, user) == 404


def test_a_join_pushed_in_a_transaction_into_an_informal_room_is_taken(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    _node, _peer, vera = env
    room_id = create_room(vera, preset="public_chat")
    user, result = _push_join(env, room_id)
    assert result == {} and _member_state(vera, room_id, user) == 200


def _knock_room(vera: Client, *initial: dict[str, Any], **body: Any) -> str:
    return create_room(vera, name="Knock here", initial_state=[
        {"type": "m.room.join_rules", "content": {"join_rule": "knock"}}, *initial], **body)


def _signed_knock(node: NodeProcess, peer: FakePeer, room_id: str, user_id: str) -> Any:
    response = peer.make_knock(node, room_id, user_id)
    assert response.status_code == 200, response.text
    body = response.json()
    template = dict(body["event"], origin_server_ts=int(time.time() * 1000))
    return finalize_pdu(template, peer.server_name, peer.signing_key,
                        get_room_version(body["room_version"]))


def test_make_knock_of_a_remote_user_on_an_official_group_is_refused_naming_the_rule(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = _knock_room(vera, {"type": GROUP_EVENT,
                                 "content": {"kind": "official", "organisation": "mha"}})
    response = peer.make_knock(node, room_id, peer.user_id())
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == VERIFIED_ONLY


def test_send_knock_of_a_remote_user_on_an_official_group_is_refused_naming_the_rule(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = _knock_room(vera, {"type": GROUP_EVENT,
                                 "content": {"kind": "official", "organisation": "mha"}})
    user = peer.user_id()
    knock = _join_built_by_the_peer(vera, peer, room_id, user, "knock")
    response = peer.send_knock(node, room_id, knock.event_id, knock.pdu)
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == VERIFIED_ONLY
    assert _member_state(vera, room_id, user) == 404


def test_a_remote_knock_on_an_informal_room_is_taken_and_answered_with_the_rooms_state(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = _knock_room(vera)
    user = peer.user_id()
    knock = _signed_knock(node, peer, room_id, user)
    response = peer.send_knock(node, room_id, knock.event_id, knock.pdu)
    assert response.status_code == 200, response.text
    state = response.json()["knock_room_state"]
    assert [e["type"] for e in state][:1] == ["m.room.create"]
    assert {"m.room.join_rules", "m.room.name"} <= {e["type"] for e in state}
    member = vera.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/"
                      f"{quote(user)}")
    assert member["membership"] == "knock"


def test_a_remote_knock_on_a_direct_chat_with_an_unreachable_verified_user_is_refused(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = _knock_room(vera, is_direct=True)
    response = peer.make_knock(node, room_id, peer.user_id())
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == UNREACHABLE



def _invite_permissions(client: Client, content: dict[str, Any]) -> None:
    client.put(f"/_matrix/client/v3/user/{quote(client.user_id)}/account_data/"
               "m.invite_permission_config", content)
    assert client.status == 200


def test_an_invite_from_a_server_the_user_blocks_is_refused_with_m_invite_blocked(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, _vera = env
    public = node.register()
    _invite_permissions(public, {"blocked_servers": [peer.server_name]})
    response = _invite_from_peer(node, peer, public.user_id)
    assert_error(response, 403, "M_INVITE_BLOCKED")
    assert response.json()["in.gov.broker.reason"] == "invite_blocked"


def test_an_invite_from_a_server_the_user_ignores_is_answered_but_never_shown(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, _vera = env
    public = node.register()
    _invite_permissions(public, {"ignored_servers": [peer.server_name]})
    response = _invite_from_peer(node, peer, public.user_id)
    assert response.status_code == 200, response.text
    assert public.get("/_matrix/client/v3/sync")["rooms"]["invite"] == {}
