"""Profile visibility across two real nodes of ours (A and B, the same organisations file, on
SQLite then on PostgreSQL): mha hides its members' names from the public.  Vera, verified for
mha on A, has a name; on B, Bea (verified) and Pat (public) read it through the profile API
(B asks A with the federation profile query, naming a reader B verified: A answers Bea what
verified users of other nodes see, as B attests her, and Pat, whom B names not, what the public
sees) and through Vera's membership events (A restates in each room what every audience the
room may hold sees: her name in her official group, which A holds and admits verified users
to, Bea among them; none in her informal room, Pat's too; none in B's official group either,
as A does not hold that B admits verified users only).  A signed fake peer P that A allows
names Bea in a query of its own: A passes that over (P does not speak for B's users) and
answers P what the public sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from broker.remote_classes import READER_NOT_OF_ORIGIN
from broker.services.federation_queries import REQUESTER
from tests.fake_peer import FakePeer
from tests.node_harness import Client, NodeProcess
from tests.peer_env import ALLOWED, ENGINES, two_nodes
from tests.room_helpers import create_room
from tests.test_federation_attestation import (
    join_through,
    member_content,
    official_group,
    verified,
)
from tests.test_federation_rooms import wait_for

PROFILE = "/_matrix/client/v3/profile"
QUERY = "/_matrix/federation/v1/query/profile"
NAME = "Vera Iyer"


@dataclass
class Scene:
    a: NodeProcess
    b: NodeProcess
    vera: Client  # verified for mha on A, named NAME
    bea: Client  # verified for mha on B
    pat: Client  # public on B
    group: str  # Vera's official group on A, Bea joined
    informal: str  # Vera's informal room on A, Pat joined
    b_group: str  # Bea's official group on B, Vera joined
    peer: FakePeer  # allowed by A and B


@pytest.fixture(scope="module", params=ENGINES)
def scene(request: Any, tmp_path_factory: Any) -> Iterator[Scene]:
    orgs = Path(tmp_path_factory.mktemp("visibility_orgs")) / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [
        {"id": "mha", "name": "MHA", "settings": {"profile_visibility": {"public": []}}}]}))
    peer = FakePeer(ALLOWED)
    with two_nodes(request.param, tmp_path_factory, "visibility",
                   {"organisations.path": str(orgs),
                    "federation.pinned_keys": peer.pinned_key_config()},
                   (peer.server_name,)) as (a, b):
        vera, bea, pat = verified(a), verified(b), b.register("p" + uuid.uuid4().hex[:10])
        vera.put(f"{PROFILE}/{quote(vera.user_id)}/displayname", {"displayname": NAME})
        assert vera.status == 200
        group, informal = official_group(vera), create_room(vera, preset="public_chat")
        b_group = official_group(bea)
        for client, room_id, server in ((bea, group, a), (pat, informal, a),
                                        (vera, b_group, b)):
            assert join_through(client, room_id, server.server_name) == {"room_id": room_id}, \
                client.status
        yield Scene(a, b, vera, bea, pat, group, informal, b_group, peer)


def profile(reader: Client, user_id: str) -> Any:
    return reader.get(f"{PROFILE}/{quote(user_id)}")


def current_name(scene: Scene) -> str:
    """Vera's name as she reads it (a later test renames her)."""
    return str(profile(scene.vera, scene.vera.user_id)["displayname"])


# -- the profile API -----------------------------------------------------------------------------
def test_the_owner_reads_their_hidden_name_on_their_own_node(scene: Scene) -> None:
    assert profile(scene.vera, scene.vera.user_id)["displayname"] == NAME


def test_a_public_user_of_another_node_reads_what_the_public_sees(scene: Scene) -> None:
    found = profile(scene.pat, scene.vera.user_id)
    assert scene.pat.status == 200
    assert "displayname" not in found and found["in.gov.broker.class"] == "verified"


def test_a_verified_user_of_another_node_reads_what_verified_users_of_other_nodes_see(
        scene: Scene) -> None:
    """B names Bea in its query and A believes B about her (mha shows verified users of
    other nodes the name and the organisation, by default)."""
    found = profile(scene.bea, scene.vera.user_id)
    assert scene.bea.status == 200
    assert (found.get("displayname"), found.get("in.gov.broker.organisation")) == (
        current_name(scene), "mha")


def test_a_verified_reader_the_owners_node_has_not_met_is_asked_about_and_sees_the_same(
        scene: Scene) -> None:
    """Nothing of Bo is in A's memory (no room shared): A asks B whether Bo is verified."""
    bo = verified(scene.b)
    found = profile(bo, scene.vera.user_id)
    assert (bo.status, found.get("displayname")) == (200, current_name(scene))


def test_a_reader_named_by_a_server_that_is_not_theirs_gets_what_the_public_sees(
        scene: Scene) -> None:
    """P names Bea, whom A holds verified (as the read through B shows): A passes it over."""
    assert profile(scene.bea, scene.vera.user_id).get("displayname") == current_name(scene)
    answer = scene.peer.request(scene.a, "GET", QUERY, params={
        "user_id": scene.vera.user_id, REQUESTER: scene.bea.user_id})
    assert answer.status_code == 200
    assert answer.json() == {"in.gov.broker.class": "verified"}
    assert READER_NOT_OF_ORIGIN in scene.a.log()


def test_a_hidden_name_asked_on_its_own_is_absent(scene: Scene) -> None:
    found = scene.pat.get(f"{PROFILE}/{quote(scene.vera.user_id)}/displayname")
    assert (scene.pat.status, found) == (200, {})


def test_an_unknown_user_of_another_node_is_not_found(scene: Scene) -> None:
    profile(scene.pat, f"@nobody{uuid.uuid4().hex[:6]}:{scene.a.server_name}")
    assert scene.pat.status == 404


# -- membership events ---------------------------------------------------------------------------
def test_a_public_user_of_another_node_reads_no_hidden_name_in_an_informal_room(
        scene: Scene) -> None:
    content = member_content(scene.pat, scene.informal, scene.vera.user_id)
    assert content["membership"] == "join" and "displayname" not in content


def test_a_verified_user_of_another_node_reads_the_name_in_the_owners_official_group(
        scene: Scene) -> None:
    content = member_content(scene.bea, scene.group, scene.vera.user_id)
    assert (content["membership"], content.get("displayname")) == ("join", NAME)


def test_the_join_in_an_official_group_held_by_another_node_carries_no_hidden_name(
        scene: Scene) -> None:
    """A treats a group created on another server as any room: it does not hold that the
    other server admits verified users only (a Synapse server would not)."""
    content = member_content(scene.bea, scene.b_group, scene.vera.user_id)
    assert content["membership"] == "join" and "displayname" not in content


def test_a_name_change_reaches_verified_users_of_the_other_node_and_no_public_one(
        scene: Scene) -> None:
    renamed = f"Vera {uuid.uuid4().hex[:4]}"
    scene.vera.put(f"{PROFILE}/{quote(scene.vera.user_id)}/displayname",
                   {"displayname": renamed})
    assert scene.vera.status == 200
    wait_for(scene.bea, scene.group, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == scene.vera.user_id
             and e["content"].get("displayname") == renamed, timeout=30)
    assert "displayname" not in member_content(scene.pat, scene.informal, scene.vera.user_id)
