"""Profile visibility across two real nodes of ours (A and B, the same organisations file, on
SQLite then on PostgreSQL): mha hides its members' names from the public.  Vera, verified for
mha on A, has a name; on B, Bea (verified) and Pat (public) read it through the profile API
(B asks A with the federation profile query, which names no reader: A answers what the public
sees) and through Vera's membership events (A restates in each room what every audience the
room may hold sees: her name in her official group, which A holds and admits verified users
to, Bea among them; none in her informal room, Pat's too; none in B's official group either,
as A does not hold that B admits verified users only).
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

from tests.node_harness import Client, NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.room_helpers import create_room
from tests.test_federation_attestation import (
    join_through,
    member_content,
    official_group,
    verified,
)
from tests.test_federation_rooms import wait_for

PROFILE = "/_matrix/client/v3/profile"
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


@pytest.fixture(scope="module", params=ENGINES)
def scene(request: Any, tmp_path_factory: Any) -> Iterator[Scene]:
    orgs = Path(tmp_path_factory.mktemp("visibility_orgs")) / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [
        {"id": "mha", "name": "MHA", "settings": {"profile_visibility": {"public": []}}}]}))
    with two_nodes(request.param, tmp_path_factory, "visibility",
                   {"organisations.path": str(orgs)}) as (a, b):
        vera, bea, pat = verified(a), verified(b), b.register("p" + uuid.uuid4().hex[:10])
        vera.put(f"{PROFILE}/{quote(vera.user_id)}/displayname", {"displayname": NAME})
        assert vera.status == 200
        group, informal = official_group(vera), create_room(vera, preset="public_chat")
        b_group = official_group(bea)
        for client, room_id, server in ((bea, group, a), (pat, informal, a),
                                        (vera, b_group, b)):
            assert join_through(client, room_id, server.server_name) == {"room_id": room_id}, \
                client.status
        yield Scene(a, b, vera, bea, pat, group, informal, b_group)


def profile(reader: Client, user_id: str) -> Any:
    return reader.get(f"{PROFILE}/{quote(user_id)}")


# -- the profile API -----------------------------------------------------------------------------
def test_the_owner_reads_their_hidden_name_on_their_own_node(scene: Scene) -> None:
    assert profile(scene.vera, scene.vera.user_id)["displayname"] == NAME


def test_a_public_user_of_another_node_reads_what_the_public_sees(scene: Scene) -> None:
    found = profile(scene.pat, scene.vera.user_id)
    assert scene.pat.status == 200
    assert "displayname" not in found and found["in.gov.broker.class"] == "verified"


def test_a_verified_user_of_another_node_reads_what_the_public_sees_through_the_profile_api(
        scene: Scene) -> None:
    """The federation profile query names no reader, so A answers what the public sees."""
    found = profile(scene.bea, scene.vera.user_id)
    assert scene.bea.status == 200
    assert "displayname" not in found and found["in.gov.broker.class"] == "verified"


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
