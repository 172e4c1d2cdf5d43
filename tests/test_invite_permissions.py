"""Invite permissions (``m.invite_permission_config``, MSC4155): the order of the lists, their
globs and the stable ``default_action``; then through the client API on both engines: a
blocked invite is ``403 M_INVITE_BLOCKED`` naming ``invite_blocked``, an ignored one is taken
but never shown to the invitee, and the separation rules still hold underneath."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.reachability import UNREACHABLE
from broker.errors import MalformedContent
from broker.invite_permissions import (
    ACCOUNT_DATA_TYPE,
    ALLOW,
    BLOCK,
    BLOCKED,
    IGNORE,
    UNSTABLE_TYPE,
    InvitePermissions,
    config_of,
)
from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]


def verdict(content: dict[str, Any], inviter: str = "@bad:badguys.org") -> str:
    return config_of(content).verdict(inviter)


# -- the config's order and globs -------------------------------------------------------------
def test_an_empty_config_takes_every_invite() -> None:
    assert verdict({}) == ALLOW


def test_a_blocked_server_glob_of_star_blocks_every_invite() -> None:
    assert verdict({"blocked_servers": ["*"]}) == BLOCK


def test_an_allowed_server_goes_before_a_blocked_one() -> None:
    content = {"allowed_servers": ["goodguys.org"], "blocked_servers": ["*"]}
    assert (verdict(content, "@ann:goodguys.org"), verdict(content)) == (ALLOW, BLOCK)


def test_an_allowed_user_goes_before_their_blocked_server() -> None:
    content = {"allowed_users": ["@goodguy:badguys.org"], "blocked_servers": ["badguys.org"]}
    assert (verdict(content, "@goodguy:badguys.org"), verdict(content)) == (ALLOW, BLOCK)


def test_ignoring_goes_before_blocking() -> None:
    assert verdict({"ignored_servers": ["badguys.org"], "blocked_users": ["*"]}) == IGNORE


def test_a_question_mark_matches_one_character_and_a_dot_only_itself() -> None:
    content = {"blocked_users": ["@ba?:badguys.org"]}
    assert (verdict(content), verdict(content, "@bad:badguysXorg"),
            verdict(content, "@baad:badguys.org")) == (BLOCK, ALLOW, ALLOW)


def test_a_star_matches_part_of_a_server_name() -> None:
    assert verdict({"blocked_servers": ["*.org"]}) == BLOCK


def test_default_action_block_blocks_what_no_list_allows() -> None:
    content = {"default_action": "block", "allowed_users": ["@ann:goodguys.org"]}
    assert (verdict(content), verdict(content, "@ann:goodguys.org")) == (BLOCK, ALLOW)


def test_an_unknown_default_action_takes_invites() -> None:
    assert verdict({"default_action": "shrug"}) == ALLOW


def test_a_null_list_is_empty() -> None:
    assert verdict({"blocked_servers": None}) == ALLOW


def test_a_list_that_is_not_of_strings_is_malformed() -> None:
    with pytest.raises(MalformedContent):
        config_of({"blocked_users": [7]})


# -- through the client API -----------------------------------------------------------------
class Scene:
    """``vera`` verified for mha; ``pat``, ``pia`` and ``pam`` public."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha")
        self.ids = {name: node.user(name)[0] for name in ("vera", "pat", "pia", "pam")}
        node.ok("POST", f"/users/{self.ids['vera']}/verification",
                {"organisation": "mha", "basis": "document"})

    def configure(self, who: str, content: dict[str, Any]) -> tuple[int, Any]:
        return self.node.client(
            who, "PUT", f"/user/{quote(self.ids[who])}/account_data/{ACCOUNT_DATA_TYPE}",
            content)

    def room(self, who: str) -> str:
        status, answer = self.node.client(who, "POST", "/createRoom", {})
        assert status == 200, answer
        return str(answer["room_id"])

    def invite(self, who: str, whom: str, room_id: str | None = None) -> tuple[int, Any]:
        return self.node.client(who, "POST", f"/rooms/{quote(room_id or self.room(who))}/invite",
                                {"user_id": self.ids[whom]})

    def invites_seen(self, who: str) -> dict[str, Any]:
        status, body = self.node.client(who, "GET", "/sync")
        assert status == 200, body
        return dict(body["rooms"]["invite"])


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def blocked(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return (status, body.get("errcode"), body.get("in.gov.broker.reason")) == (
        403, "M_INVITE_BLOCKED", BLOCKED)


def test_an_invite_from_a_blocked_user_is_refused_with_m_invite_blocked(scene: Scene) -> None:
    scene.configure("pia", {"blocked_users": [scene.ids["pat"]]})
    assert blocked(scene.invite("pat", "pia"))


def test_an_invite_from_a_user_not_on_the_block_list_goes_on(scene: Scene) -> None:
    scene.configure("pia", {"blocked_users": [scene.ids["pat"]]})
    assert scene.invite("pam", "pia")[0] == 200


def test_a_user_who_blocks_every_server_takes_invites_from_those_they_allow(
        scene: Scene) -> None:
    scene.configure("pia", {"allowed_users": [scene.ids["pam"]], "blocked_servers": ["*"]})
    assert (blocked(scene.invite("pat", "pia")), scene.invite("pam", "pia")[0]) == (True, 200)


def test_the_stable_default_action_block_refuses_every_invite(scene: Scene) -> None:
    scene.configure("pia", {"default_action": "block"})
    assert blocked(scene.invite("pat", "pia"))


def test_an_ignored_invite_is_taken_but_not_shown_to_the_invitee(scene: Scene) -> None:
    scene.configure("pia", {"ignored_users": [scene.ids["pat"]]})
    room_id = scene.room("pat")
    assert scene.invite("pat", "pia", room_id)[0] == 200
    assert room_id not in scene.invites_seen("pia")


def test_an_invite_not_ignored_is_shown(scene: Scene) -> None:
    scene.configure("pia", {"ignored_users": [scene.ids["pat"]]})
    room_id = scene.room("pam")
    scene.invite("pam", "pia", room_id)
    assert room_id in scene.invites_seen("pia")


def test_a_room_whose_invite_list_holds_a_blocked_invite_is_not_created(scene: Scene) -> None:
    scene.configure("pia", {"blocked_servers": ["*"]})
    answer = scene.node.client("pat", "POST", "/createRoom",
                               {"invite": [scene.ids["pam"], scene.ids["pia"]]})
    assert blocked(answer)
    assert scene.node.client("pat", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_the_separation_rules_hold_under_an_allow_list(scene: Scene) -> None:
    scene.configure("vera", {"allowed_users": [scene.ids["pat"]]})
    status, body = scene.invite("pat", "vera")
    assert (status, body.get("in.gov.broker.reason")) == (403, UNREACHABLE)


def test_a_config_the_node_cannot_read_is_refused_and_not_written(scene: Scene) -> None:
    status, body = scene.configure("pia", {"blocked_users": "everyone"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert scene.invite("pat", "pia")[0] == 200


def test_a_blocked_invite_is_counted(scene: Scene) -> None:
    scene.configure("pia", {"blocked_users": ["*"]})
    before = scene.node.node.policy.refusals[BLOCKED]
    scene.invite("pat", "pia")
    assert scene.node.node.policy.refusals[BLOCKED] == before + 1


def test_configs_are_read_again_at_start(scene: Scene) -> None:
    scene.configure("pia", {"blocked_users": [scene.ids["pat"]]})
    started = InvitePermissions(scene.node.stores.account_data)  # as a restarted node's
    scene.node.local.run(started.load())
    assert started.verdict(scene.ids["pia"], scene.ids["pat"]) == BLOCK


def test_msc4155s_unstable_type_is_honoured(scene: Scene) -> None:
    scene.node.client("pia", "PUT", f"/user/{quote(scene.ids['pia'])}/account_data/"
                      f"{UNSTABLE_TYPE}", {"blocked_users": [scene.ids["pat"]]})
    assert blocked(scene.invite("pat", "pia"))


def test_a_stable_config_goes_before_the_unstable_one(scene: Scene) -> None:
    scene.node.client("pia", "PUT", f"/user/{quote(scene.ids['pia'])}/account_data/"
                      f"{UNSTABLE_TYPE}", {"blocked_users": [scene.ids["pat"]]})
    scene.configure("pia", {})
    assert scene.invite("pat", "pia")[0] == 200


def test_the_node_says_it_enforces_invite_permissions(scene: Scene) -> None:
    status, body = scene.node.client("pat", "GET", "/capabilities")
    assert body["capabilities"]["m.invite_permission_config_enforced"] == {"enabled": True}
