"""Knocking through the client API on both engines: a room whose join rule is ``knock`` or
``knock_restricted`` takes knocks, the knocker sees the knock in /sync (``rooms.knock``, with
the room's stripped state), the members see it in their timeline, and letting the knocker in
is an invite.  The separation rules hold on knocks: a public user's knock on an official group
is refused naming ``official_group_verified_only``, and one on a direct chat with a verified
user who is not reachable by the public is refused naming ``public_cannot_reach_verified``,
each counted."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.reachability import ACCOUNT_DATA_TYPE as REACHABILITY
from broker.admin.reachability import UNREACHABLE
from broker.group_rules import VERIFIED_ONLY
from broker.rooms.room_kind import GROUP_EVENT
from tests.admin_harness import AdminNode, admin
from tests.test_official_groups import refused_for

__all__ = ["admin"]


def join_rule(rule: str) -> dict[str, Any]:
    return {"type": "m.room.join_rules", "content": {"join_rule": rule}}


class Scene:
    """mha; ``vera`` verified for mha, ``vic`` too; ``pat`` and ``pia`` public."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha")
        self.ids = {name: node.user(name)[0] for name in ("vera", "vic", "pat", "pia")}
        for name in ("vera", "vic"):
            node.ok("POST", f"/users/{self.ids[name]}/verification",
                    {"organisation": "mha", "basis": "document"})

    def room(self, who: str, rule: str = "knock", *initial: dict[str, Any], **body: Any) -> str:
        status, answer = self.node.client(who, "POST", "/createRoom", {
            "name": "Knock here", "initial_state": [join_rule(rule), *initial], **body})
        assert status == 200, answer
        return str(answer["room_id"])

    def official(self, rule: str = "knock") -> str:
        return self.room("vera", rule, {"type": GROUP_EVENT,
                                        "content": {"kind": "official", "organisation": "mha"}})

    def knock(self, who: str, room_id: str, body: Any = None) -> tuple[int, Any]:
        return self.node.client(who, "POST", f"/knock/{quote(room_id)}", body or {})

    def membership(self, room_id: str, who: str, viewer: str = "vera") -> Any:
        status, content = self.node.client(
            viewer, "GET", f"/rooms/{quote(room_id)}/state/m.room.member/{self.ids[who]}")
        return content.get("membership") if status == 200 else None

    def sync(self, who: str, since: str | None = None) -> dict[str, Any]:
        path = "/sync" + (f"?since={since}&timeout=0" if since else "")
        status, body = self.node.client(who, "GET", path)
        assert status == 200, body
        return body


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def test_a_knock_on_a_room_whose_join_rule_is_knock_makes_the_user_knocking(
        scene: Scene) -> None:
    room_id = scene.room("pia")
    assert scene.knock("pat", room_id) == (200, {"room_id": room_id})
    assert scene.membership(room_id, "pat", viewer="pia") == "knock"


def test_a_knock_carries_its_reason(scene: Scene) -> None:
    room_id = scene.room("pia")
    scene.knock("pat", room_id, {"reason": "I run the district office"})
    status, content = scene.node.client(
        "pia", "GET", f"/rooms/{quote(room_id)}/state/m.room.member/{scene.ids['pat']}")
    assert content["reason"] == "I run the district office"


def test_a_room_whose_join_rule_is_knock_restricted_takes_knocks(scene: Scene) -> None:
    room_id = scene.room("pia", "knock_restricted")
    assert scene.knock("pat", room_id)[0] == 200


def test_a_knock_on_an_invite_only_room_is_refused(scene: Scene) -> None:
    room_id = scene.room("pia", "invite")
    status, body = scene.knock("pat", room_id)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert scene.membership(room_id, "pat", viewer="pia") is None


def test_a_knock_by_room_alias_reaches_the_room(scene: Scene) -> None:
    room_id = scene.room("pia", "knock", room_alias_name="knockers")
    assert scene.knock("pat", "#knockers:admin.test") == (200, {"room_id": room_id})


def test_the_knocker_sees_the_knock_in_sync_with_the_rooms_stripped_state(
        scene: Scene) -> None:
    room_id = scene.room("pia")
    scene.knock("pat", room_id)
    events = scene.sync("pat")["rooms"]["knock"][room_id]["knock_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Knock here"},
            "sender": scene.ids["pia"]} in events
    own = [e for e in events if e["type"] == "m.room.member"]
    assert [(e["state_key"], e["content"]["membership"]) for e in own] == [
        (scene.ids["pat"], "knock")]


def test_an_incremental_sync_shows_a_knock_made_since_its_token(scene: Scene) -> None:
    room_id = scene.room("pia")
    token = scene.sync("pat")["next_batch"]
    scene.knock("pat", room_id)
    assert room_id in scene.sync("pat", token)["rooms"]["knock"]


def test_the_rooms_members_see_the_knock_in_their_timeline(scene: Scene) -> None:
    room_id = scene.room("pia")
    token = scene.sync("pia")["next_batch"]
    scene.knock("pat", room_id, {"reason": "let me in"})
    timeline = scene.sync("pia", token)["rooms"]["join"][room_id]["timeline"]["events"]
    assert [(e["sender"], e["content"]["membership"], e["content"]["reason"])
            for e in timeline if e["type"] == "m.room.member"] == [
        (scene.ids["pat"], "knock", "let me in")]


def test_letting_a_knocker_in_is_an_invite_they_may_join_by(scene: Scene) -> None:
    room_id = scene.room("pia")
    scene.knock("pat", room_id)
    token = scene.sync("pat")["next_batch"]
    assert scene.node.client("pia", "POST", f"/rooms/{quote(room_id)}/invite",
                             {"user_id": scene.ids["pat"]})[0] == 200
    rooms = scene.sync("pat", token)["rooms"]
    assert room_id in rooms["invite"] and room_id not in rooms["knock"]
    assert scene.node.client("pat", "POST", f"/join/{quote(room_id)}", {})[0] == 200


def test_leaving_withdraws_a_knock(scene: Scene) -> None:
    room_id = scene.room("pia")
    scene.knock("pat", room_id)
    assert scene.node.client("pat", "POST", f"/rooms/{quote(room_id)}/leave", {})[0] == 200
    assert scene.membership(room_id, "pat", viewer="pia") == "leave"


def test_a_public_users_knock_on_an_official_group_is_refused_naming_the_rule(
        scene: Scene) -> None:
    room_id = scene.official()
    assert refused_for(scene.knock("pat", room_id), VERIFIED_ONLY)
    assert scene.membership(room_id, "pat") is None


def test_a_verified_user_knocks_on_an_official_group(scene: Scene) -> None:
    room_id = scene.official()
    assert scene.knock("vic", room_id)[0] == 200


def test_a_refused_knock_is_counted_under_its_rule(scene: Scene) -> None:
    room_id = scene.official()
    before = scene.node.node.policy.refusals[VERIFIED_ONLY]
    scene.knock("pat", room_id)
    assert scene.node.node.policy.refusals[VERIFIED_ONLY] == before + 1


def test_a_public_user_cannot_knock_on_a_direct_chat_with_an_unreachable_verified_user(
        scene: Scene) -> None:
    room_id = scene.room("vera", "knock", is_direct=True)
    assert refused_for(scene.knock("pat", room_id), UNREACHABLE)


def test_a_public_user_knocks_on_a_direct_chat_with_a_verified_user_reachable_by_the_public(
        scene: Scene) -> None:
    room_id = scene.room("vera", "knock", is_direct=True)
    scene.node.client("vera", "PUT", f"/user/{quote(scene.ids['vera'])}/account_data/"
                      f"{REACHABILITY}", {"public": True})
    assert scene.knock("pat", room_id)[0] == 200


def test_a_public_user_knocks_on_an_informal_room_of_a_verified_user(scene: Scene) -> None:
    room_id = scene.room("vera")
    assert scene.knock("pat", room_id)[0] == 200
