"""Read-only notice rooms on one node, on both engines: the room from a local account to a
user is made on first use with the recipient already joined, then reused (also by a fresh
memory that finds it in the table, as after a restart); concurrent calls for one pair make one
room; the recipient cannot post, change state or invite; leaving a broadcast room is refused
unless its organisation allows it; an organisation's account is verified for it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from twisted.internet import defer

from broker.notice_rooms import LEAVE_FORBIDDEN, NOTICE_ROOM, NoticeRooms
from storage.notice_rooms import NoticeRoomStore
from tests import admin_harness
from tests.admin_harness import AdminNode
from tests.storage_helpers import result_of


class Scene:
    def __init__(self, node: AdminNode) -> None:
        self.node = node
        self.notices: NoticeRooms = node.node.notice_rooms
        self.sender = node.local.run(node.node.org_accounts.ensure("mha", "Home Affairs"))
        self.bob, _ = node.user("bob")

    def room_for(self, recipient: str, kind: str = "broadcast", **options: Any) -> str:
        return self.node.local.settle(self.notices.room_for(
            self.sender, recipient, kind=kind, name="Home Affairs", **options))

    def client(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.node.client("bob", method, path, body)

    def state(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        status, body = self.client("GET", f"/rooms/{quote(room_id)}/state/{event_type}/"
                                           f"{quote(state_key)}")
        assert status == 200, body
        return body


admin = admin_harness.admin  # the fixture: a node on each engine


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    """On each engine (the ``admin`` fixture's)."""
    return Scene(admin)


def test_the_recipient_finds_the_room_joined_without_accepting_anything(scene: Scene) -> None:
    room_id = scene.room_for(scene.bob)
    status, body = scene.client("GET", "/sync")
    assert status == 200, body
    assert room_id in body["rooms"]["join"]
    assert scene.state(room_id, "m.room.member", scene.bob)["membership"] == "join"
    assert scene.state(room_id, NOTICE_ROOM) == {
        "kind": "broadcast", "sender": scene.sender, "leave_allowed": False}
    assert scene.state(room_id, "m.room.name") == {"name": "Home Affairs"}


def test_a_second_call_for_the_pair_reuses_the_room_and_another_kind_gets_its_own(
        scene: Scene) -> None:
    first = scene.room_for(scene.bob)
    assert scene.room_for(scene.bob) == first
    assert scene.room_for(scene.bob, kind="app") != first


def test_a_fresh_memory_finds_the_room_in_the_table_as_after_a_restart(scene: Scene) -> None:
    first = scene.room_for(scene.bob)
    old = scene.notices
    fresh = NoticeRooms(old.server_name, NoticeRoomStore(scene.node.node.db), old.rooms,
                        old.new_rooms, old.invite_remote, old.sender_profile, old.existing,
                        old.clock)
    found = scene.node.local.settle(fresh.room_for(scene.sender, scene.bob, kind="broadcast",
                                                   name="Home Affairs"))
    assert found == first
    assert fresh.rooms_made == 0


def test_concurrent_calls_for_one_pair_make_one_room(scene: Scene) -> None:
    gate: defer.Deferred[None] = defer.Deferred()
    profile = scene.notices.sender_profile

    async def held_profile(sender: str) -> dict[str, Any]:
        await gate  # both calls are under way before either makes anything
        return await profile(sender)

    scene.notices.sender_profile = held_profile
    calls = [scene.node.local.start(scene.notices.room_for(
        scene.sender, scene.bob, kind="app", name="Alerts")) for _ in range(3)]
    assert not any(call.called for call in calls)
    gate.callback(None)
    scene.node.local.advance(0)
    rooms = {result_of(call) for call in calls}
    assert len(rooms) == 1
    assert scene.notices.rooms_made == 1


def test_many_recipients_get_their_rooms_in_one_call(scene: Scene) -> None:
    users = [scene.node.user(f"u{i}")[0] for i in range(120)]  # more than one slice
    rooms = scene.node.local.settle(scene.notices.rooms_for(
        scene.sender, [*users, users[0]], kind="broadcast", name="Home Affairs"), turns=50)
    assert list(rooms) == users
    assert len(set(rooms.values())) == len(users)
    registry = scene.node.node.rooms.registry
    last = scene.node.local.run(registry.get(rooms[users[-1]]))
    assert last is not None and last.membership_of(users[-1]) == "join"


def test_the_recipient_cannot_post_change_state_or_invite(scene: Scene) -> None:
    room_id = scene.room_for(scene.bob)
    path = f"/rooms/{quote(room_id)}"
    status, body = scene.client("PUT", f"{path}/send/m.room.message/t1",
                                {"msgtype": "m.text", "body": "hello"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = scene.client("PUT", f"{path}/state/m.room.name/", {"name": "mine"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    carol, _ = scene.node.user("carol")
    status, body = scene.client("POST", f"{path}/invite", {"user_id": carol})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_leaving_a_broadcast_room_is_refused_naming_the_reason(scene: Scene) -> None:
    room_id = scene.room_for(scene.bob)
    status, body = scene.client("POST", f"/rooms/{quote(room_id)}/leave", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert body["in.gov.broker.reason"] == LEAVE_FORBIDDEN
    assert scene.state(room_id, "m.room.member", scene.bob)["membership"] == "join"


def test_a_broadcast_room_that_allows_leaving_and_an_app_room_may_be_left(
        scene: Scene) -> None:
    for room_id in (scene.room_for(scene.bob, leave_allowed=True),
                    scene.room_for(scene.bob, kind="app")):
        status, body = scene.client("POST", f"/rooms/{quote(room_id)}/leave", {})
        assert status == 200, body


def test_an_organisation_account_is_verified_for_its_organisation(scene: Scene) -> None:
    row = scene.node.node.admin.classes.verification(scene.sender)
    assert row is not None and row.org_id == "mha"
    assert scene.node.node.admin.classes.verification(scene.bob) is None


def test_a_user_of_this_node_without_an_account_gets_no_room(scene: Scene) -> None:
    ghost = scene.node.node.user_id("ghost")
    d = scene.node.local.start(scene.notices.room_for(scene.sender, ghost, kind="app",
                                                      name="Alerts"))
    failure = d.result
    d.addErrback(lambda _f: None)
    assert failure.value.extra["users"] == [ghost]
    assert scene.notices.rooms_made == 0
