"""Verification across nodes: two real nodes of ours on loopback (A and B, the same organisations
file) and a signed fake peer P that B and A allow.

A's verified users carry A's attestation into B's rooms and are admitted to B's official
groups; A's public users are refused there, by B, naming the rule; B believes A about A's users
only (an attestation from P about a user of A is ignored and counted, one altered on the way is
kept redacted); a revocation on A reaches B through the join A restates (B admits the user no
more although what it held before had not expired) and A takes the user out of B's group; B's
user-status query answers for B's own users only.

Both nodes run on SQLite, then on PostgreSQL.  Users are verified and revoked with ``broker users`` commands, which the running node takes in
through its change feed.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from broker.attestations import ATTESTATION, USER_STATUS_QUERY
from broker.cli import main
from broker.group_rules import VERIFIED_ONLY
from broker.remote_classes import NOT_HOME_SERVER
from broker.rooms.room_kind import GROUP_EVENT
from protocol.auth_rules import auth_types_for_event
from protocol.events import Event, build_pdu, finalize_pdu
from protocol.room_versions import get_room_version
from tests.fake_peer import FED_V1, FakePeer, RoomView, now_ms
from tests.node_harness import Client, NodeProcess
from tests.peer_env import ALLOWED, ENGINES, assert_error, two_nodes
from tests.room_helpers import V3, create_room, room_path
from tests.test_federation_groups import _until_verified
from tests.test_federation_rooms import wait_for


@dataclass
class Nodes:
    a: NodeProcess
    b: NodeProcess
    peer: FakePeer
    bea: Client  # verified on B: creates B's official groups


@pytest.fixture(scope="module", params=ENGINES)
def nodes(request: Any, tmp_path_factory: Any) -> Iterator[Nodes]:
    """Both nodes on SQLite, then both on PostgreSQL (each its own database)."""
    orgs = Path(tmp_path_factory.mktemp("attest_orgs")) / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    peer = FakePeer(ALLOWED)
    overrides = {"federation.pinned_keys": peer.pinned_key_config(),
                 "organisations.path": str(orgs)}
    with two_nodes(request.param, tmp_path_factory, "attest", overrides,
                   (peer.server_name,)) as (a, b):
        yield Nodes(a, b, peer, verified(b))


def verified(node: NodeProcess) -> Client:
    """A new user of ``node``, verified for mha."""
    client = node.register("v" + uuid.uuid4().hex[:10])
    verify(node, client)
    return client


def verify(node: NodeProcess, client: Client) -> None:
    localpart = client.user_id.split(":", 1)[0][1:]
    assert main(["users", "verify", localpart, "--organisation", "mha", "--basis", "document",
                 "--config", str(node.config_path)]) == 0
    _until_verified(client)


def revoke(node: NodeProcess, client: Client) -> None:
    localpart = client.user_id.split(":", 1)[0][1:]
    assert main(["users", "revoke", localpart, "--config", str(node.config_path)]) == 0


def official_group(creator: Client) -> str:
    return create_room(creator, preset="public_chat", initial_state=[
        {"type": GROUP_EVENT, "content": {"kind": "official", "organisation": "mha"}}])


def join_through(client: Client, room_id: str, server: str) -> Any:
    return client.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": server})


def member_content(client: Client, room_id: str, user_id: str) -> Any:
    return client.get(room_path(room_id, f"state/m.room.member/{quote(user_id)}"))


def user_status(nodes: Nodes, user_id: str) -> Any:
    return nodes.peer.request(nodes.b, "GET", f"{FED_V1}/query/{USER_STATUS_QUERY}?user_id="
                              f"{quote(user_id)}")


# -- admitted and refused ------------------------------------------------------------------------
def test_a_verified_user_of_one_node_joins_an_official_group_of_another(nodes: Nodes) -> None:
    vera = verified(nodes.a)
    room_id = official_group(nodes.bea)
    assert join_through(vera, room_id, nodes.b.server_name) == {"room_id": room_id}, vera.status
    seen_on_b = member_content(nodes.bea, room_id, vera.user_id)
    assert seen_on_b["membership"] == "join"
    assert seen_on_b[ATTESTATION]["class"] == "verified"
    assert seen_on_b[ATTESTATION]["organisation"] == "mha"


def test_a_public_user_of_one_node_is_refused_an_official_group_of_another_naming_the_rule(
        nodes: Nodes) -> None:
    pat = nodes.a.register()
    answer = join_through(pat, official_group(nodes.bea), nodes.b.server_name)
    assert (pat.status, answer["errcode"]) == (403, "M_FORBIDDEN")
    assert answer["in.gov.broker.reason"] == VERIFIED_ONLY


def test_a_public_users_join_into_an_informal_room_carries_no_attestation(nodes: Nodes
                                                                           ) -> None:
    pat = nodes.a.register()
    room_id = create_room(nodes.bea, preset="public_chat")
    join_through(pat, room_id, nodes.b.server_name)
    assert pat.status == 200
    assert ATTESTATION not in member_content(nodes.bea, room_id, pat.user_id)


def test_a_verified_user_of_another_node_may_be_invited_into_an_official_group(
        nodes: Nodes) -> None:
    vera = verified(nodes.a)
    room_id = official_group(nodes.bea)
    nodes.bea.post(room_path(room_id, "invite"), {"user_id": vera.user_id})
    assert nodes.bea.status == 200


def test_a_public_user_of_another_node_is_not_invited_into_an_official_group(nodes: Nodes
                                                                              ) -> None:
    pat = nodes.a.register()
    answer = nodes.bea.post(room_path(official_group(nodes.bea), "invite"),
                            {"user_id": pat.user_id})
    assert (nodes.bea.status, answer["in.gov.broker.reason"]) == (403, VERIFIED_ONLY)


# -- forged and altered attestations -------------------------------------------------------------
def test_an_attestation_by_a_node_for_another_nodes_user_is_ignored(nodes: Nodes) -> None:
    """P vouches for a public user of A in an invite it signs; B ignores it (and logs the
    rule), so the user is still refused B's official group."""
    pat = nodes.a.register()
    informal = create_room(nodes.bea, preset="public_chat")
    mallory = nodes.peer.user_id()
    room = nodes.peer.join(nodes.b, informal, mallory)
    forged = nodes.peer.build_event(
        room, mallory, "m.room.member",
        {"membership": "invite",
         ATTESTATION: {"class": "verified", "organisation": "mha", "since": 1}},
        state_key=pat.user_id)
    results = nodes.peer.send_pdus(nodes.b, room, forged)
    assert results[forged.event_id] == {}, results
    answer = join_through(pat, official_group(nodes.bea), nodes.b.server_name)
    assert (pat.status, answer.get("in.gov.broker.reason")) == (403, VERIFIED_ONLY)
    assert NOT_HOME_SERVER in nodes.b.log()


def test_an_attestation_altered_after_signing_is_kept_redacted_and_not_believed(
        nodes: Nodes) -> None:
    """P's user joins with an attestation saying public, altered on the way to say verified:
    the content no longer matches its hash, so B keeps the join redacted (no attestation) and
    does not admit the user to an official group."""
    user = nodes.peer.user_id()
    informal = create_room(nodes.bea, preset="public_chat")
    answer = nodes.peer.make_join(nodes.b, informal, user).json()
    template = dict(answer["event"], origin_server_ts=now_ms())
    template["content"] = {**template["content"], ATTESTATION: {"class": "public"}}
    join = finalize_pdu(template, nodes.peer.server_name, nodes.peer.signing_key,
                        get_room_version(answer["room_version"]))
    altered = copy.deepcopy(join.pdu)
    altered["content"][ATTESTATION] = {"class": "verified", "organisation": "mha", "since": 1}
    response = nodes.peer.send_join(nodes.b, informal, join.event_id, altered)
    assert response.status_code == 200, response.text
    assert ATTESTATION not in member_content(nodes.bea, informal, user)
    assert_error(nodes.peer.make_join(nodes.b, official_group(nodes.bea), user), 403,
                 "M_FORBIDDEN")


# -- revocation ----------------------------------------------------------------------------------
def test_a_revocation_on_one_node_is_seen_on_the_other(nodes: Nodes) -> None:
    """Vera of A is in an informal room and an official group of B; A revokes her: A restates
    her join without attestation (B then refuses her another official group although B's
    previous statement had not expired) and takes her out of B's group."""
    vera = verified(nodes.a)
    informal = create_room(nodes.bea, preset="public_chat")
    group = official_group(nodes.bea)
    for room_id in (informal, group):
        join_through(vera, room_id, nodes.b.server_name)
        assert vera.status == 200
    revoke(nodes.a, vera)
    wait_for(nodes.bea, informal, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == vera.user_id and e["content"]["membership"] == "join"
             and ATTESTATION not in e["content"], timeout=60)
    wait_for(nodes.bea, group, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == vera.user_id and e["content"]["membership"] == "leave",
             timeout=60)
    answer = join_through(vera, official_group(nodes.bea), nodes.b.server_name)
    assert (vera.status, answer.get("in.gov.broker.reason")) == (403, VERIFIED_ONLY)


def test_a_revocation_made_while_a_node_was_stopped_is_seen_on_the_other_after_its_start(
        nodes: Nodes) -> None:
    """Vera of A is in an informal room of B only (no official group); A is stopped, a command
    revokes her, A starts: A restates her join without attestation."""
    vera = verified(nodes.a)
    informal = create_room(nodes.bea, preset="public_chat")
    join_through(vera, informal, nodes.b.server_name)
    assert vera.status == 200
    nodes.a.stop()
    try:
        revoke(nodes.a, vera)
    finally:
        nodes.a.start()
    wait_for(nodes.bea, informal, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == vera.user_id and e["content"]["membership"] == "join"
             and ATTESTATION not in e["content"], timeout=60)


def test_a_verification_on_one_node_is_seen_on_the_other(nodes: Nodes) -> None:
    """Pat of A joined an informal room of B while public; A verifies her: A restates her
    join with its attestation, and B admits her to an official group although what it held
    before (public, from her first join) had not expired."""
    pat = nodes.a.register()
    informal = create_room(nodes.bea, preset="public_chat")
    join_through(pat, informal, nodes.b.server_name)
    assert pat.status == 200
    verify(nodes.a, pat)
    wait_for(nodes.bea, informal, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == pat.user_id and ATTESTATION in e["content"], timeout=60)
    group = official_group(nodes.bea)
    assert join_through(pat, group, nodes.b.server_name) == {"room_id": group}, pat.status


# -- the user-status query -----------------------------------------------------------------------
def test_the_query_answers_a_verified_user_of_the_node(nodes: Nodes) -> None:
    response = user_status(nodes, nodes.bea.user_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["user_id"], body["class"], body["organisation"]) == (
        nodes.bea.user_id, "verified", "mha")
    assert isinstance(body["since"], int)


def test_the_query_answers_a_public_user_of_the_node(nodes: Nodes) -> None:
    pat = nodes.b.register()
    assert user_status(nodes, pat.user_id).json() == {
        "user_id": pat.user_id, "class": "public", "organisation": None, "since": None}


def test_the_query_answers_not_found_for_another_servers_user(nodes: Nodes) -> None:
    assert_error(user_status(nodes, verified(nodes.a).user_id), 404, "M_NOT_FOUND")


def test_the_query_answers_not_found_for_an_unknown_user_of_the_node(nodes: Nodes) -> None:
    assert_error(user_status(nodes, f"@nobody:{nodes.b.server_name}"), 404, "M_NOT_FOUND")



# -- knocks on a direct chat ----------------------------------------------------------------------
def _direct_knock_room(creator: Client) -> str:
    """A direct chat of ``creator`` taking knocks (its other party: whoever is let in)."""
    return create_room(creator, is_direct=True, initial_state=[
        {"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])


def knock_through(client: Client, room_id: str, server: str) -> Any:
    return client.post(f"{V3}/knock/{quote(room_id)}", {}, params={"via": server})


def test_a_verified_user_of_another_node_knocks_on_a_direct_chat_with_an_unreachable_user(
        nodes: Nodes) -> None:
    """B holds nothing of the knocker (no shared room): it asks A before deciding."""
    vera = verified(nodes.a)
    room_id = _direct_knock_room(nodes.bea)
    assert knock_through(vera, room_id, nodes.b.server_name) == {"room_id": room_id}, \
        vera.status
    assert member_content(nodes.bea, room_id, vera.user_id)["membership"] == "knock"


def test_a_public_user_of_another_node_is_refused_a_direct_chat_with_an_unreachable_user(
        nodes: Nodes) -> None:
    public = nodes.a.register()
    room_id = _direct_knock_room(nodes.bea)
    answer = knock_through(public, room_id, nodes.b.server_name)
    assert (public.status, answer.get("in.gov.broker.reason")) == (
        403, "public_cannot_reach_verified")


# -- invites pushed in a transaction -------------------------------------------------------------
def _attested_peer_member(nodes: Nodes, room_id: str) -> tuple[str, RoomView]:
    """A user of the peer, attested verified by the peer (its home server), joined to B's
    ``room_id`` through send_join with a join the peer builds itself; the room as B answered."""
    version = get_room_version("12")
    user = nodes.peer.user_id()
    state = {(e["type"], e["state_key"]): e for e in nodes.bea.get(room_path(room_id, "state"))}
    latest = nodes.bea.get(room_path(room_id, "messages"),
                           params={"dir": "b", "limit": "1"})["chunk"][0]["event_id"]
    content = {"membership": "join",
               ATTESTATION: {"class": "verified", "organisation": "mha", "since": 1}}
    keys = auth_types_for_event(version, "m.room.member", user, user, content)
    join = finalize_pdu(build_pdu(
        version, room_id=room_id, sender=user, type="m.room.member", content=content,
        state_key=user, prev_event_ids=[latest],
        auth_event_ids=[state[k]["event_id"] for k in keys if k in state], depth=100,
        origin_server_ts=now_ms()), nodes.peer.server_name, nodes.peer.signing_key, version)
    response = nodes.peer.send_join(nodes.b, room_id, join.event_id, join.pdu)
    assert response.status_code == 200, response.text
    room = RoomView(room_id, version, extremities=[join.event_id], depth=100)
    for pdu in response.json()["state"]:
        event = Event(pdu, version)
        room.state[(event.type, event.state_key or "")] = event
    room.track(join)
    return user, room


def test_an_invite_of_a_public_user_pushed_in_a_transaction_into_an_official_group_is_soft_failed(
        nodes: Nodes) -> None:
    group = official_group(nodes.bea)
    inviter, room = _attested_peer_member(nodes, group)
    invitee = nodes.peer.user_id()  # nothing attests them: public
    invite = nodes.peer.build_event(room, inviter, "m.room.member", {"membership": "invite"},
                                    state_key=invitee)
    nodes.peer.send_pdus(nodes.b, room, invite)
    member_content(nodes.bea, group, invitee)
    assert nodes.bea.status == 404
    member_content(nodes.bea, group, inviter)
    assert nodes.bea.status == 200  # the attested inviter is in
