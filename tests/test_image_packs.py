"""Organisations' image packs (MSC2545), on both engines: an admin publishes a pack of images
uploaded to the node, and the organisation's members (and its sub-organisations') find the
pack room joined and listed in their image pack account data, stable and unstable names, next
to what they had there; members cannot change a pack; a user who moves out or is deactivated
loses it; bad input is refused with a clear error and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.cli import main
from broker.image_pack_content import MAX_IMAGES
from broker.image_pack_members import ROOMS_TYPES
from storage.media import MediaRecord
from tests.admin_harness import AdminNode
from tests.storage_helpers import result_of


class Scene:
    """mha (with mha.dm) and mea; ``bob`` placed in mha, an image uploaded by the admin."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha", name="Home Affairs")
        node.org("mha.dm", "mha")
        node.org("mea")
        self.uploaded: list[str] = []
        self.bob = self.member("bob", "mha")
        self.url = self.upload()

    def member(self, localpart: str, org: str) -> str:
        user_id, _ = self.node.user(localpart)
        self.node.ok("PATCH", f"/users/{quote(user_id)}", {"organisation": org})
        self.settle()
        return user_id

    def upload(self) -> str:
        """An image in the media store (uploads over HTTP write on a thread the fake reactor
        does not run; tests/test_image_packs_nio.py uploads through the media API)."""
        media_id = f"Gimoji{len(self.uploaded)}"
        self.uploaded.append(media_id)
        result_of(self.node.stores.media.store_media(MediaRecord(
            media_id, self.node.root_id, "image/png", "namaste.png", 72, "ab" * 32,
            self.node.node.clock.time_ms())))
        return f"mxc://admin.test/{media_id}"

    def pack(self, **images: Any) -> dict[str, Any]:
        return {"images": images or {"namaste": {"url": self.url, "body": "Namaste"}},
                "pack": {"display_name": "Home Affairs", "usage": ["emoticon"]}}

    def publish(self, pack_id: str = "official", body: dict[str, Any] | None = None,
                org: str = "mha", status: int = 201) -> dict[str, Any]:
        answer = self.node.ok("PUT", f"/organisations/{org}/image_packs/{pack_id}",
                              body or self.pack(), status=status)
        self.settle()
        return dict(answer)

    def settle(self) -> None:
        """Run the background jobs to their end (each batch waits for a reactor turn)."""
        members = self.node.node.pack_members
        for _ in range(500):
            self.node.local.advance(0)
            if not members._running and not members.draining:
                return
        raise AssertionError("the image pack jobs did not finish")

    def room_id(self, org: str = "mha") -> str:
        return self.node.node.pack_members.pack_rooms[org]

    def sync(self, who: str) -> dict[str, Any]:
        status, body = self.node.client(who, "GET", "/sync")
        assert status == 200, body
        return dict(body)

    def account_data(self, who: str, data_type: str) -> dict[str, Any] | None:
        user_id = self.node.node.user_id(who)
        status, body = self.node.client(who, "GET", f"/user/{quote(user_id)}/account_data/"
                                                    f"{data_type}")
        return dict(body) if status == 200 else None

    def membership(self, who: str, org: str = "mha") -> str | None:
        room = self.node.node.rooms.registry.cached(self.room_id(org))
        assert room is not None
        return room.membership_of(self.node.node.user_id(who))


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path) -> Iterator[Scene]:
    made = AdminNode(tmp_path, request.param)
    try:
        yield Scene(made)
    finally:
        made.close()


def _state_of(sync: dict[str, Any], room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    room = sync["rooms"]["join"][room_id]
    events = [*room["state"]["events"], *room["timeline"]["events"]]
    return {(e["type"], e.get("state_key")): e["content"] for e in events if "state_key" in e}


def _global_data(sync: dict[str, Any]) -> dict[str, Any]:
    return {e["type"]: e["content"] for e in sync["account_data"]["events"]}


def test_a_published_pack_is_in_the_member_s_sync_as_room_state_and_account_data(
        scene: Scene) -> None:
    answer = scene.publish()
    room_id = scene.room_id()
    assert answer["room_id"] == room_id and answer["images"]["namaste"]["url"] == scene.url
    sync = scene.sync("bob")
    state = _state_of(sync, room_id)
    for event_type in ("m.image_pack", "im.ponies.room_emotes"):
        content = state[(event_type, "official")]
        assert content["images"]["namaste"]["url"] == scene.url
        assert content["images"]["namaste"]["info"]["mimetype"] == "image/png"
        assert content["pack"]["display_name"] == "Home Affairs"
    data = _global_data(sync)
    for data_type in ROOMS_TYPES:
        assert data[data_type] == {"rooms": {room_id: {"official": {}}}}


def test_the_member_s_own_image_pack_entries_are_kept(scene: Scene) -> None:
    own = {"rooms": {"!theirs:elsewhere.test": {"cats": {}}}, "note": "mine"}
    for data_type in ROOMS_TYPES:
        status, _ = scene.node.client("bob", "PUT", f"/user/{quote(scene.bob)}/account_data/"
                                                    f"{data_type}", own)
        assert status == 200
    scene.publish()
    for data_type in ROOMS_TYPES:
        assert scene.account_data("bob", data_type) == {
            "rooms": {"!theirs:elsewhere.test": {"cats": {}},
                      scene.room_id(): {"official": {}}}, "note": "mine"}


def test_a_member_cannot_change_a_pack(scene: Scene) -> None:
    scene.publish()
    path = f"/rooms/{quote(scene.room_id())}/state/m.image_pack/official"
    status, body = scene.node.client("bob", "PUT", path, {"images": {}})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = scene.node.client("bob", "PUT", f"/rooms/{quote(scene.room_id())}/send/"
                                                   "m.room.message/t1", {"body": "hi"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_a_member_of_a_sub_organisation_gets_the_pack(scene: Scene) -> None:
    scene.publish()
    scene.member("dana", "mha.dm")
    assert scene.membership("dana") == "join"
    assert scene.account_data("dana", "m.image_pack.rooms") == {
        "rooms": {scene.room_id(): {"official": {}}}}


def test_a_user_of_another_organisation_does_not_get_the_pack(scene: Scene) -> None:
    scene.publish()
    scene.member("mira", "mea")
    assert scene.membership("mira") is None
    assert scene.account_data("mira", "m.image_pack.rooms") is None


def test_members_of_an_organisation_moved_under_the_publisher_get_the_pack(
        scene: Scene) -> None:
    scene.publish()
    scene.member("mira", "mea")
    scene.node.ok("PATCH", "/organisations/mea", {"parent": "mha"})
    scene.settle()
    assert scene.membership("mira") == "join"


def test_an_account_created_in_the_organisation_gets_the_pack(scene: Scene) -> None:
    scene.publish()
    created = scene.node.ok("POST", "/users", {"localpart": "newcomer", "organisation": "mha"},
                            status=201)
    scene.settle()
    room = scene.node.node.rooms.registry.cached(scene.room_id())
    assert room is not None and room.membership_of(created["user_id"]) == "join"


def test_accounts_imported_by_a_command_get_the_pack_at_the_node_s_next_poll(
        scene: Scene, tmp_path: Path) -> None:
    scene.publish()
    scene.node.local.run(scene.node.node.admin.changes.start_at_head())
    path = tmp_path / "users.csv"
    path.write_text("localpart,name,organisation,designation,employee_id,email,phone,class\n"
                    + "".join(f"staff{n},,mha,,,,,\n" for n in range(3)), encoding="utf-8")
    assert main(["users", "import", str(path), "--config",
                 str(scene.node.local.config_path)]) == 0
    scene.node.local.run(scene.node.node.admin.changes.poll())
    scene.settle()
    assert [scene.membership(f"staff{n}") for n in range(3)] == ["join"] * 3


def test_a_user_moved_out_leaves_the_pack_room_and_loses_its_entry(scene: Scene) -> None:
    own = {"rooms": {"!theirs:elsewhere.test": {"cats": {}}}}
    scene.node.client("bob", "PUT", f"/user/{quote(scene.bob)}/account_data/"
                                    "m.image_pack.rooms", own)
    scene.publish()
    scene.node.ok("PATCH", f"/users/{quote(scene.bob)}", {"organisation": "mea"})
    scene.settle()
    assert scene.membership("bob") == "leave"
    assert scene.account_data("bob", "m.image_pack.rooms") == own
    assert scene.account_data("bob", "im.ponies.emote_rooms") == {"rooms": {}}


def test_a_deactivated_user_leaves_the_pack_room_and_loses_its_entry(scene: Scene) -> None:
    scene.publish()
    scene.node.ok("POST", f"/users/{quote(scene.bob)}/deactivate", {})
    scene.settle()
    assert scene.membership("bob") == "leave"
    content = scene.node.local.run(scene.node.stores.account_data.get_account_data(
        scene.bob, "", "m.image_pack.rooms"))
    assert content == {"rooms": {}}


def test_a_second_pack_is_added_to_the_members_entries(scene: Scene) -> None:
    scene.publish()
    scene.publish("stickers", {"images": {"salute": {"url": scene.url, "usage": ["sticker"]}}})
    assert scene.account_data("bob", "m.image_pack.rooms") == {
        "rooms": {scene.room_id(): {"official": {}, "stickers": {}}}}


def test_replacing_a_pack_answers_200_and_the_new_content(scene: Scene) -> None:
    scene.publish()
    again = scene.publish(body=scene.pack(wave={"url": scene.url}), status=200)
    assert sorted(again["images"]) == ["wave"]
    got = scene.node.ok("GET", "/organisations/mha/image_packs/official")
    assert sorted(got["images"]) == ["wave"]


def test_a_deleted_pack_is_emptied_and_dropped_from_the_entries(scene: Scene) -> None:
    scene.publish()
    scene.publish("stickers", {"images": {"salute": {"url": scene.url}}})
    assert scene.node.ok("DELETE", "/organisations/mha/image_packs/official") == {}
    scene.settle()
    assert scene.account_data("bob", "m.image_pack.rooms") == {
        "rooms": {scene.room_id(): {"stickers": {}}}}
    room = scene.node.node.rooms.registry.cached(scene.room_id())
    assert room is not None and room.state[("m.image_pack", "official")].content == {}
    status, body = scene.node.api("GET", "/organisations/mha/image_packs/official",
                                  scene.node.root)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_the_listing_shows_the_packs_the_room_and_the_members_job(scene: Scene) -> None:
    scene.publish()
    listing = scene.node.ok("GET", "/organisations/mha/image_packs")
    assert listing["room_id"] == scene.room_id()
    assert listing["sender"] == "@_org.mha:admin.test"
    assert [p["pack_id"] for p in listing["packs"]] == ["official"]
    assert listing["members"]["state"] == "done"
    assert listing["members"]["done"] == listing["members"]["total"] == 1


def test_publishing_is_recorded_in_the_audit_log(scene: Scene) -> None:
    scene.publish()
    entry = next(e for e in reversed(scene.node.entries())
                 if e["action"] == "image_packs.change")
    assert (entry["target"], entry["organisation"], entry["outcome"]) == (
        "mha/official", "mha", "ok")
    assert entry["detail"]["shortcodes"] == ["namaste"]


def test_the_pack_room_does_not_federate_and_is_not_in_the_directory(scene: Scene) -> None:
    scene.publish()
    room = scene.node.node.rooms.registry.cached(scene.room_id())
    assert room is not None
    assert room.state[("m.room.create", "")].content["m.federate"] is False
    assert room.state[("m.room.join_rules", "")].content == {"join_rule": "invite"}
    status, body = scene.node.client("bob", "GET", "/publicRooms")
    assert status == 200 and scene.room_id() not in {r["room_id"] for r in body["chunk"]}


# -- refusals ------------------------------------------------------------------------------
def _put(scene: Scene, body: Any, org: str = "mha", pack_id: str = "p") -> tuple[int, Any]:
    return scene.node.api("PUT", f"/organisations/{org}/image_packs/{pack_id}",
                          scene.node.root, body)


def test_a_pack_of_an_unknown_organisation_is_404(scene: Scene) -> None:
    scene.node.refused(_put(scene, scene.pack(), org="nowhere"), 404, "M_NOT_FOUND")


def test_an_image_of_another_server_is_refused(scene: Scene) -> None:
    body = scene.pack(x={"url": "mxc://elsewhere.test/abcdef"})
    scene.node.refused(_put(scene, body), 400, "M_INVALID_PARAM")


def test_an_image_not_uploaded_is_refused(scene: Scene) -> None:
    body = scene.pack(x={"url": "mxc://admin.test/NotUploadedYet"})
    status, answer = _put(scene, body)
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM")
    assert "images.x.url" in answer["error"]


@pytest.mark.parametrize("shortcode", ["with space", "co:lon", "", "x" * 101])
def test_a_bad_shortcode_is_refused(scene: Scene, shortcode: str) -> None:
    scene.node.refused(_put(scene, {"images": {shortcode: {"url": scene.url}}}), 400,
                       "M_INVALID_PARAM")


def test_too_many_images_are_refused(scene: Scene) -> None:
    images = {f"e{i}": {"url": scene.url} for i in range(MAX_IMAGES + 1)}
    scene.node.refused(_put(scene, {"images": images}), 400, "M_INVALID_PARAM")


def test_an_unknown_field_is_refused(scene: Scene) -> None:
    scene.node.refused(_put(scene, {"images": {"x": {"url": scene.url}}, "colour": "red"}),
                       400, "M_BAD_JSON")


def test_a_bad_usage_is_refused(scene: Scene) -> None:
    body = {"images": {"x": {"url": scene.url, "usage": ["banner"]}}}
    scene.node.refused(_put(scene, body), 400, "M_INVALID_PARAM")


def test_a_bad_pack_id_is_refused(scene: Scene) -> None:
    scene.node.refused(_put(scene, scene.pack(), pack_id="has%20space"), 400,
                       "M_INVALID_PARAM")


def test_an_admin_of_another_organisation_may_not_publish(scene: Scene) -> None:
    user_id, _ = scene.node.user("mea_admin")
    scene.node.grant(user_id, ("org_admin", "mea"))
    answer = scene.node.api_as("mea_admin", "PUT", "/organisations/mha/image_packs/p",
                               scene.pack())
    scene.node.refused(answer, 403, "M_FORBIDDEN")


def test_an_organisation_admin_publishes_for_their_organisation(scene: Scene) -> None:
    user_id, _ = scene.node.user("mha_admin")
    scene.node.grant(user_id, ("org_admin", "mha"))
    status, body = scene.node.api_as("mha_admin", "PUT", "/organisations/mha/image_packs/p",
                                     scene.pack())
    assert status == 201, body


def test_registration_refuses_an_organisation_account_s_name(scene: Scene) -> None:
    status, body = scene.node.local.call("POST", "/_matrix/client/v3/register", None,
                                         {"username": "_org.mha", "password": "pw 123 abc",
                                          "auth": {"type": "m.login.dummy"}})
    assert (status, body["errcode"]) == (400, "M_EXCLUSIVE")
