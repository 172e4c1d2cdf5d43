"""Profile visibility where a profile is restated or found, on both engines: the name and
avatar in the membership events the node creates follow what every audience the room may hold
sees (an official group: verified users; any other room: the public too); a hidden profile
never makes an invite or a join fail; the user directory shows public searchers only the
verified users reachable by the public or sharing a room with them, and only what they may
see."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.changes import POLL_SECONDS
from broker.admin.reachability import ACCOUNT_DATA_TYPE
from broker.attestations import ATTESTATION
from broker.cli import main
from broker.rooms.room_kind import GROUP_EVENT
from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]

SEARCH = "/user_directory/search"


class Scene:
    """mha and mea; ``bob`` (display name "Bob Rao") and ``vera`` verified for mha, ``mira``
    for mea; ``pat`` public.  mha hides names from the public."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha", settings={"profile_visibility": {"public": []}})
        node.org("mea")
        self.ids = {name: node.user(name)[0] for name in ("bob", "vera", "mira", "pat")}
        for name, org in (("bob", "mha"), ("vera", "mha"), ("mira", "mea")):
            node.ok("POST", f"/users/{self.ids[name]}/verification",
                    {"organisation": org, "basis": "document"})
        self.set_name("bob", "Bob Rao")

    def set_name(self, who: str, name: str) -> None:
        assert self.node.client(who, "PUT", f"/profile/{quote(self.ids[who])}/displayname",
                                {"displayname": name})[0] == 200

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.node.client(who, method, path, body)
        assert status == 200, answer
        return answer

    def room(self, who: str, **body: Any) -> str:
        return str(self.ok(who, "POST", "/createRoom", body)["room_id"])

    def official(self, who: str) -> str:
        return self.room(who, initial_state=[{"type": GROUP_EVENT, "state_key": "",
                                              "content": {"kind": "official",
                                                          "organisation": "mha"}}])

    def member(self, room_id: str, whom: str, reader: str = "vera") -> dict[str, Any]:
        """The member event's content, but for the attestation a verified user's join carries
        (tests/test_federation_attestation.py covers it)."""
        content = self.ok(reader, "GET", f"/rooms/{quote(room_id)}/state/m.room.member/"
                                         f"{quote(self.ids[whom])}")
        return {k: v for k, v in content.items() if k != ATTESTATION}

    def invite(self, who: str, whom: str, room_id: str) -> tuple[int, Any]:
        return self.node.client(who, "POST", f"/rooms/{quote(room_id)}/invite",
                                {"user_id": self.ids[whom]})

    def join(self, who: str, room_id: str) -> None:
        self.ok(who, "POST", f"/join/{quote(room_id)}", {})

    def reachable(self, who: str) -> None:
        self.ok(who, "PUT", f"/user/{quote(self.ids[who])}/account_data/{ACCOUNT_DATA_TYPE}",
                {"public": True})

    def search(self, who: str, term: str) -> list[dict[str, Any]]:
        return list(self.ok(who, "POST", SEARCH, {"search_term": term})["results"])


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


# -- membership events ---------------------------------------------------------------------
def test_a_join_to_an_informal_room_restates_only_what_the_public_may_see(
        scene: Scene) -> None:
    room_id = scene.room("vera", preset="public_chat")
    scene.join("bob", room_id)
    assert scene.member(room_id, "bob") == {"membership": "join"}


def test_a_join_to_an_official_group_restates_the_name_verified_users_see(
        scene: Scene) -> None:
    room_id = scene.official("vera")
    assert scene.invite("vera", "bob", room_id)[0] == 200
    scene.join("bob", room_id)
    assert scene.member(room_id, "bob") == {"membership": "join", "displayname": "Bob Rao"}


def test_a_room_creators_membership_follows_the_same_rule(scene: Scene) -> None:
    informal, official = scene.room("bob"), scene.official("bob")
    assert scene.member(informal, "bob", "bob") == {"membership": "join"}
    assert scene.member(official, "bob", "bob")["displayname"] == "Bob Rao"


def test_an_invite_of_a_user_whose_name_is_hidden_works_and_carries_no_name(
        scene: Scene) -> None:
    room_id = scene.room("vera")
    assert scene.invite("vera", "bob", room_id) == (200, {})
    assert scene.member(room_id, "bob") == {"membership": "invite"}
    scene.join("bob", room_id)
    assert scene.member(room_id, "bob") == {"membership": "join"}


def test_a_public_users_invite_of_a_reachable_user_with_a_hidden_profile_works(
        scene: Scene) -> None:
    scene.reachable("bob")
    room_id = scene.room("pat")
    assert scene.invite("pat", "bob", room_id) == (200, {})
    scene.join("bob", room_id)
    assert scene.member(room_id, "bob", "pat") == {"membership": "join"}


def test_a_name_change_is_restated_in_each_room_as_its_audiences_may_see_it(
        scene: Scene) -> None:
    informal, official = scene.room("bob"), scene.official("bob")
    scene.set_name("bob", "Robert Rao")
    assert scene.member(informal, "bob", "bob") == {"membership": "join"}
    assert scene.member(official, "bob", "bob")["displayname"] == "Robert Rao"


def test_a_user_of_an_organisation_that_shows_names_keeps_them_in_every_room(
        scene: Scene) -> None:
    scene.set_name("mira", "Mira Sen")
    room_id = scene.room("mira")
    assert scene.member(room_id, "mira", "mira")["displayname"] == "Mira Sen"


def test_an_organisation_hiding_names_has_its_members_rooms_restate_them(
        scene: Scene) -> None:
    scene.set_name("mira", "Mira Sen")
    room_id = scene.room("mira")
    scene.node.ok("PATCH", "/organisations/mea",
                  {"settings": {"profile_visibility": {"public": []}}})
    scene.node.local.turn()
    assert scene.member(room_id, "mira", "mira") == {"membership": "join"}


def test_an_organisation_showing_names_again_has_them_restated(scene: Scene) -> None:
    room_id = scene.room("bob")
    scene.node.ok("PATCH", "/organisations/mha", {"settings": {}})
    scene.node.local.turn()
    assert scene.member(room_id, "bob", "bob")["displayname"] == "Bob Rao"


def test_a_user_moved_to_an_organisation_that_hides_names_has_them_restated(
        scene: Scene) -> None:
    scene.set_name("mira", "Mira Sen")
    room_id = scene.room("mira")
    scene.node.ok("PATCH", f"/users/{scene.ids['mira']}", {"organisation": "mha"})
    scene.node.local.turn()
    assert "displayname" not in scene.member(room_id, "mira", "mira")


def test_a_user_moved_by_a_command_has_their_rooms_restate_it_within_a_poll(
        scene: Scene) -> None:
    """``broker users verify`` for another organisation moves the user: another process,
    which the node learns of from the audit log's feed."""
    local = scene.node.local
    local.run(scene.node.node.start())  # the change feed polls
    scene.set_name("mira", "Mira Sen")
    room_id = scene.room("mira")
    assert main(["users", "verify", "mira", "--organisation", "mha", "--basis", "document",
                 "--config", str(local.config_path)]) == 0
    assert scene.member(room_id, "mira", "mira")["displayname"] == "Mira Sen"
    local.advance(POLL_SECONDS)
    local.turn()
    assert "displayname" not in scene.member(room_id, "mira", "mira")


# -- the user directory --------------------------------------------------------------------
def test_a_public_user_does_not_find_an_unreachable_verified_user_of_a_public_room(
        scene: Scene) -> None:
    scene.room("bob", preset="public_chat", visibility="public")
    assert scene.search("pat", "bob") == []
    assert [r["user_id"] for r in scene.search("mira", "bob")] == [scene.ids["bob"]]


def test_a_public_user_finds_a_verified_user_who_is_reachable_by_the_public(
        scene: Scene) -> None:
    scene.room("bob", preset="public_chat", visibility="public")
    scene.reachable("bob")
    assert [r["user_id"] for r in scene.search("pat", "bob")] == [scene.ids["bob"]]


def test_a_public_user_finds_a_verified_user_they_share_a_room_with(scene: Scene) -> None:
    room_id = scene.room("bob", preset="public_chat")
    scene.join("pat", room_id)
    assert [r["user_id"] for r in scene.search("pat", "bob")] == [scene.ids["bob"]]


def test_a_name_hidden_from_the_searcher_is_neither_shown_nor_searched(scene: Scene) -> None:
    room_id = scene.room("bob", preset="public_chat")
    scene.join("pat", room_id)
    scene.join("vera", room_id)
    assert scene.search("pat", "rao") == []
    assert scene.search("pat", "bob") == [{"user_id": scene.ids["bob"]}]
    assert scene.search("vera", "rao") == [{"user_id": scene.ids["bob"],
                                            "display_name": "Bob Rao"}]
