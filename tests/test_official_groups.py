"""Official groups, through the client API on both engines: who may create one and for which
organisation, that the kind is fixed and protected by power levels, and that only verified
users get in, whatever the join rule; each refusal is 403 M_FORBIDDEN naming its rule in
``in.gov.broker.reason``, and counted."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.changes import POLL_SECONDS
from broker.admin.commands import AdminSession, command_actor
from broker.cli import main
from broker.group_rules import BY_VERIFIED_ONLY, KIND_FIXED, OWN_ORGANISATION, VERIFIED_ONLY
from broker.official_members import REASON
from broker.rooms.room_kind import GROUP_EVENT
from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]


class Scene:
    """mha (with mha.dm) and mea; ``vera`` verified for mha, ``dev`` for mha.dm, ``mel`` for
    mea; ``pat`` is public."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        for org, parent in (("mha", None), ("mha.dm", "mha"), ("mea", None)):
            node.org(org, parent)
        self.ids: dict[str, str] = {}
        for name, org in (("vera", "mha"), ("dev", "mha.dm"), ("mel", "mea"), ("pat", None)):
            self.ids[name], _ = node.user(name)
            if org is not None:
                node.ok("POST", f"/users/{self.ids[name]}/verification",
                        {"organisation": org, "basis": "document"})

    def create(self, who: str, org: str = "mha", kind: str = "official", **body: Any
               ) -> tuple[int, Any]:
        group = {"type": GROUP_EVENT, "content": {"kind": kind, "organisation": org}}
        return self.node.client(who, "POST", "/createRoom",
                                {"initial_state": [group], **body})

    def group(self, who: str = "vera", **body: Any) -> str:
        status, answer = self.create(who, **body)
        assert status == 200, answer
        return str(answer["room_id"])

    def state(self, who: str, room_id: str, event_type: str) -> tuple[int, Any]:
        return self.node.client(who, "GET", f"/rooms/{quote(room_id)}/state/{event_type}")


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def refused_for(answer: tuple[int, Any], rule: str) -> bool:
    status, body = answer
    return (status, body.get("errcode"), body.get("in.gov.broker.reason")) == (
        403, "M_FORBIDDEN", rule)


def test_a_verified_user_creates_an_official_group_of_their_organisation(scene: Scene) -> None:
    room_id = scene.group("vera")
    assert scene.state("vera", room_id, GROUP_EVENT) == (
        200, {"kind": "official", "organisation": "mha"})


def test_a_verified_user_creates_an_official_group_of_a_sub_organisation(scene: Scene) -> None:
    assert scene.create("vera", "mha.dm")[0] == 200


def test_a_public_user_cannot_create_an_official_group(scene: Scene) -> None:
    assert refused_for(scene.create("pat"), BY_VERIFIED_ONLY)


def test_an_official_group_of_a_parent_organisation_is_refused(scene: Scene) -> None:
    assert refused_for(scene.create("dev", "mha"), OWN_ORGANISATION)


def test_an_official_group_of_another_organisation_is_refused(scene: Scene) -> None:
    assert refused_for(scene.create("mel", "mha"), OWN_ORGANISATION)


def test_an_official_group_of_an_unknown_organisation_is_refused(scene: Scene) -> None:
    status, body = scene.create("vera", "nowhere")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_a_group_event_of_an_unknown_kind_is_refused(scene: Scene) -> None:
    status, body = scene.create("vera", kind="secret")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_a_refused_creation_creates_no_room(scene: Scene) -> None:
    scene.create("pat")
    assert scene.node.client("pat", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_the_group_event_takes_the_top_power_level(scene: Scene) -> None:
    room_id = scene.group("vera")
    status, levels = scene.state("vera", room_id, "m.room.power_levels")
    assert status == 200 and levels["events"][GROUP_EVENT] == max(
        [100, *levels["events"].values(), *levels["users"].values()])


def test_a_power_level_override_does_not_unprotect_the_group_event(scene: Scene) -> None:
    room_id = scene.group("vera", power_level_content_override={"events": {}})
    assert scene.state("vera", room_id, "m.room.power_levels")[1]["events"][GROUP_EVENT] == 100


def test_an_official_group_cannot_be_turned_informal(scene: Scene) -> None:
    room_id = scene.group("vera")
    answer = scene.node.client("vera", "PUT", f"/rooms/{quote(room_id)}/state/{GROUP_EVENT}",
                               {"kind": "informal"})
    assert refused_for(answer, KIND_FIXED)
    assert scene.state("vera", room_id, GROUP_EVENT)[1]["kind"] == "official"


def test_an_informal_room_cannot_be_made_official_later(scene: Scene) -> None:
    status, created = scene.node.client("vera", "POST", "/createRoom", {})
    answer = scene.node.client(
        "vera", "PUT", f"/rooms/{quote(created['room_id'])}/state/{GROUP_EVENT}",
        {"kind": "official", "organisation": "mha"})
    assert refused_for(answer, KIND_FIXED)


def test_a_public_user_cannot_join_a_public_official_group(scene: Scene) -> None:
    room_id = scene.group("vera", preset="public_chat")
    assert refused_for(scene.node.client("pat", "POST", f"/join/{quote(room_id)}", {}),
                       VERIFIED_ONLY)
    assert scene.state("vera", room_id, f"m.room.member/{scene.ids['pat']}")[0] == 404


def test_a_verified_user_of_another_organisation_joins_a_public_official_group(
        scene: Scene) -> None:
    room_id = scene.group("vera", preset="public_chat")
    assert scene.node.client("mel", "POST", f"/join/{quote(room_id)}", {})[0] == 200


def test_a_public_user_cannot_be_invited_to_an_official_group(scene: Scene) -> None:
    room_id = scene.group("vera")
    answer = scene.node.client("vera", "POST", f"/rooms/{quote(room_id)}/invite",
                               {"user_id": scene.ids["pat"]})
    assert refused_for(answer, VERIFIED_ONLY)


def test_a_user_of_another_server_cannot_be_invited_to_an_official_group(scene: Scene) -> None:
    room_id = scene.group("vera")
    answer = scene.node.client("vera", "POST", f"/rooms/{quote(room_id)}/invite",
                               {"user_id": "@someone:elsewhere.test"})
    assert refused_for(answer, VERIFIED_ONLY)


def test_creating_an_official_group_that_invites_a_public_user_creates_nothing(
        scene: Scene) -> None:
    answer = scene.create("vera", invite=[scene.ids["mel"], scene.ids["pat"]])
    assert refused_for(answer, VERIFIED_ONLY)
    assert scene.node.client("vera", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_a_user_whose_verification_was_revoked_cannot_join(scene: Scene) -> None:
    room_id = scene.group("vera", preset="public_chat")
    scene.node.ok("DELETE", f"/users/{scene.ids['mel']}/verification")
    assert refused_for(scene.node.client("mel", "POST", f"/join/{quote(room_id)}", {}),
                       VERIFIED_ONLY)


def test_each_refusal_is_counted_under_its_rule(scene: Scene) -> None:
    room_id = scene.group("vera", preset="public_chat")
    scene.create("pat")
    scene.node.client("pat", "POST", f"/join/{quote(room_id)}", {})
    scene.node.client("pat", "POST", f"/join/{quote(room_id)}", {})
    refusals = scene.node.node.policy.refusals
    assert (refusals[BY_VERIFIED_ONLY], refusals[VERIFIED_ONLY]) == (1, 2)


# Leaving when the verification ends ----------------------------------------------------------
def settle(scene: Scene) -> None:
    for _ in range(20):
        scene.node.local.advance(0)


def membership(scene: Scene, room_id: str, who: str) -> dict[str, Any]:
    status, content = scene.state("vera", room_id, f"m.room.member/{scene.ids[who]}")
    assert status == 200, content
    return dict(content)


def joined_group(scene: Scene, who: str = "mel") -> str:
    room_id = scene.group("vera", preset="public_chat")
    assert scene.node.client(who, "POST", f"/join/{quote(room_id)}", {})[0] == 200
    return room_id


def test_a_user_whose_verification_is_revoked_leaves_official_groups_at_once(
        scene: Scene) -> None:
    room_id = joined_group(scene)
    scene.node.ok("DELETE", f"/users/{scene.ids['mel']}/verification")
    settle(scene)
    assert membership(scene, room_id, "mel") == {"membership": "leave", "reason": REASON}


def test_a_revoked_user_stays_in_informal_rooms(scene: Scene) -> None:
    status, created = scene.node.client("vera", "POST", "/createRoom",
                                        {"preset": "public_chat"})
    room_id = created["room_id"]
    scene.node.client("mel", "POST", f"/join/{quote(room_id)}", {})
    scene.node.ok("DELETE", f"/users/{scene.ids['mel']}/verification")
    settle(scene)
    assert membership(scene, room_id, "mel")["membership"] == "join"


def test_a_revoked_users_invite_to_an_official_group_ends(scene: Scene) -> None:
    room_id = scene.group("vera")
    scene.node.client("vera", "POST", f"/rooms/{quote(room_id)}/invite",
                      {"user_id": scene.ids["mel"]})
    scene.node.ok("DELETE", f"/users/{scene.ids['mel']}/verification")
    settle(scene)
    assert membership(scene, room_id, "mel")["membership"] == "leave"


def test_a_revocation_by_a_command_removes_the_user_within_a_second(scene: Scene) -> None:
    local = scene.node.local
    local.run(scene.node.node.start())  # follows the changes other processes make
    room_id = joined_group(scene)
    assert main(["users", "revoke", "mel", "--config", str(local.config_path)]) == 0
    local.advance(POLL_SECONDS)
    settle(scene)
    assert membership(scene, room_id, "mel") == {"membership": "leave", "reason": REASON}


def test_a_user_whose_verification_expires_leaves_official_groups_within_a_minute(
        scene: Scene) -> None:
    node = scene.node.node
    node.official_members.start(scene.node.local.reactor)
    expires = node.clock.time_ms() + 45_000
    scene.node.ok("POST", f"/users/{scene.ids['dev']}/verification",
                  {"organisation": "mha.dm", "basis": "document", "expires_at": expires})
    room_id = joined_group(scene, "dev")
    scene.node.local.advance(44)
    settle(scene)
    assert membership(scene, room_id, "dev")["membership"] == "join"
    scene.node.local.advance(1)  # expired now
    for _ in range(60):
        scene.node.local.advance(1)
    assert membership(scene, room_id, "dev") == {"membership": "leave", "reason": REASON}
    node.official_members.stop()


def test_a_deactivated_user_leaves_official_groups(scene: Scene) -> None:
    room_id = joined_group(scene)
    scene.node.ok("POST", f"/users/{scene.ids['mel']}/deactivate", {})
    settle(scene)
    assert membership(scene, room_id, "mel")["membership"] == "leave"


def test_a_verification_that_expired_while_the_node_was_down_is_acted_on_at_the_first_check(
        scene: Scene) -> None:
    node = scene.node.node
    expires = node.clock.time_ms() + 10_000
    scene.node.ok("POST", f"/users/{scene.ids['dev']}/verification",
                  {"organisation": "mha.dm", "basis": "document", "expires_at": expires})
    room_id = joined_group(scene, "dev")
    scene.node.local.advance(20)  # expired before the checks start
    node.official_members.start(scene.node.local.reactor)
    for _ in range(31):
        scene.node.local.advance(1)
    assert membership(scene, room_id, "dev")["membership"] == "leave"
    node.official_members.stop()


def test_a_revocation_made_while_the_node_was_stopped_is_acted_on_at_start(
        scene: Scene) -> None:
    room_id = joined_group(scene)
    session = AdminSession(scene.node.node.config)  # the node is not following changes yet
    try:
        scene.node.local.run(session.services.verifications.revoke(
            command_actor(), scene.ids["mel"]))
    finally:
        session.close()
    assert membership(scene, room_id, "mel")["membership"] == "join"
    scene.node.local.run(scene.node.node.start())
    settle(scene)
    assert membership(scene, room_id, "mel") == {"membership": "leave", "reason": REASON}
    assert membership(scene, room_id, "vera")["membership"] == "join"
