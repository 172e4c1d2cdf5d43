"""Who may reach whom, through the client and admin APIs on both engines: a public user may
not invite a verified user (a direct chat included) unless that user is reachable by the
public, by their own account data or as their organisation's admin forced it; a verified user
may always invite a public one."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.changes import POLL_SECONDS
from broker.admin.commands import AdminSession, command_actor
from broker.admin.reachability import ACCOUNT_DATA_TYPE, UNREACHABLE, Reachability
from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]


class Scene:
    """mha and mea; ``vera`` verified for mha, ``oa`` an org admin of mha, ``ea`` of mea;
    ``pat`` and ``pia`` public."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha")
        node.org("mea")
        self.ids = {name: node.user(name)[0] for name in ("vera", "pat", "pia", "oa", "ea")}
        node.ok("POST", f"/users/{self.ids['vera']}/verification",
                {"organisation": "mha", "basis": "document"})
        node.grant(self.ids["oa"], ("org_admin", "mha"))
        node.grant(self.ids["ea"], ("org_admin", "mea"))

    def room(self, who: str) -> str:
        status, answer = self.node.client(who, "POST", "/createRoom", {})
        assert status == 200, answer
        return str(answer["room_id"])

    def invite(self, who: str, whom: str, room_id: str | None = None) -> tuple[int, Any]:
        room_id = room_id or self.room(who)
        return self.node.client(who, "POST", f"/rooms/{quote(room_id)}/invite",
                                {"user_id": self.ids[whom]})

    def choose(self, who: str, content: dict[str, Any]) -> tuple[int, Any]:
        return self.node.client(
            who, "PUT", f"/user/{quote(self.ids[who])}/account_data/{ACCOUNT_DATA_TYPE}",
            content)

    def force(self, value: bool | None, who: str = "oa") -> tuple[int, Any]:
        return self.node.api_as(who, "PATCH", f"/users/{self.ids['vera']}",
                                {"reachable_by_public": value})


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def refused(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return (status, body.get("errcode"), body.get("in.gov.broker.reason")) == (
        403, "M_FORBIDDEN", UNREACHABLE)


def test_a_public_user_cannot_invite_a_verified_user(scene: Scene) -> None:
    assert refused(scene.invite("pat", "vera"))


def test_a_public_user_cannot_start_a_direct_chat_with_a_verified_user(scene: Scene) -> None:
    answer = scene.node.client("pat", "POST", "/createRoom",
                               {"is_direct": True, "invite": [scene.ids["vera"]]})
    assert refused(answer)
    assert scene.node.client("pat", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_a_room_inviting_one_unreachable_user_is_not_created_for_the_others(
        scene: Scene) -> None:
    answer = scene.node.client("pat", "POST", "/createRoom",
                               {"invite": [scene.ids["pia"], scene.ids["vera"]]})
    assert refused(answer)
    assert scene.node.client("pat", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_a_verified_user_may_always_invite_a_public_user(scene: Scene) -> None:
    assert scene.invite("vera", "pat")[0] == 200


def test_a_public_user_may_invite_another_public_user(scene: Scene) -> None:
    assert scene.invite("pat", "pia")[0] == 200


def test_a_user_who_chose_to_be_reachable_may_be_invited_by_the_public(scene: Scene) -> None:
    assert scene.choose("vera", {"public": True})[0] == 200
    assert scene.invite("pat", "vera")[0] == 200


def test_a_user_who_withdrew_the_choice_is_unreachable_again(scene: Scene) -> None:
    scene.choose("vera", {"public": True})
    scene.choose("vera", {"public": False})
    assert refused(scene.invite("pat", "vera"))


def test_a_choice_the_node_cannot_read_is_refused_and_not_written(scene: Scene) -> None:
    status, body = scene.choose("vera", {"public": "yes"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    path = f"/user/{quote(scene.ids['vera'])}/account_data/{ACCOUNT_DATA_TYPE}"
    assert scene.node.client("vera", "GET", path)[0] == 404


def test_an_organisation_admin_forces_a_user_reachable(scene: Scene) -> None:
    status, answer = scene.force(True)
    assert status == 200 and answer["reachable_by_public"] is True
    assert scene.invite("pat", "vera")[0] == 200


def test_a_forced_unreachable_wins_over_the_users_choice(scene: Scene) -> None:
    scene.choose("vera", {"public": True})
    scene.force(False)
    assert refused(scene.invite("pat", "vera"))


def test_null_gives_the_choice_back_to_the_user(scene: Scene) -> None:
    scene.choose("vera", {"public": True})
    scene.force(False)
    status, answer = scene.force(None)
    assert status == 200 and answer["reachable_by_public"] is None
    assert scene.invite("pat", "vera")[0] == 200


def test_forcing_is_recorded_in_the_audit_log(scene: Scene) -> None:
    scene.force(True)
    entry = scene.node.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "users.update", scene.ids["vera"], "ok")
    assert entry["detail"]["changed"] == {"reachable_by_public": True}


def test_a_forced_value_other_than_true_false_or_null_is_refused_and_recorded(
        scene: Scene) -> None:
    scene.node.refused(scene.force("yes"), 400, "M_BAD_JSON")  # type: ignore[arg-type]
    assert scene.node.ok("GET", f"/users/{scene.ids['vera']}")["reachable_by_public"] is None


def test_an_admin_of_another_organisation_cannot_force(scene: Scene) -> None:
    scene.node.refused(scene.force(True, "ea"), 403, "M_FORBIDDEN")
    assert refused(scene.invite("pat", "vera"))


def test_choices_and_forced_values_are_read_back_at_start(scene: Scene) -> None:
    scene.choose("vera", {"public": True})
    scene.force(False)
    node = scene.node.node
    fresh = Reachability(node.stores.reachability, node.admin.classes, node.server_name)
    scene.node.local.run(fresh.load())
    assert (fresh.forced_of(scene.ids["vera"]), fresh.reachable_by_public(scene.ids["vera"])
            ) == (False, False)
    scene.force(None)
    scene.node.local.run(fresh.load())
    assert fresh.reachable_by_public(scene.ids["vera"]) is True


def test_a_value_forced_by_another_process_is_taken_in_within_a_second(scene: Scene) -> None:
    local = scene.node.local
    local.run(scene.node.node.start())  # follows the changes other processes make
    session = AdminSession(scene.node.node.config)  # a second process's database connection
    try:
        local.run(session.services.accounts.update(
            command_actor(), scene.ids["vera"], {"reachable_by_public": True}))
    finally:
        session.close()
    assert refused(scene.invite("pat", "vera"))  # memory answers until the next poll
    local.advance(POLL_SECONDS)
    for _ in range(5):
        local.advance(0)
    assert scene.invite("pat", "vera")[0] == 200
