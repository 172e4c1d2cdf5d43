"""Rooms through the admin API, on both engines: listing them, reading one, shutting one down
(its local members removed, the room blocked for joins, invites, sends and aliases), each call
decided by the permission module and recorded in the audit log."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.changes import POLL_SECONDS
from broker.errors import Forbidden
from storage.room_admin import Block
from tests.admin_harness import AdminNode, admin
from tests.inprocess_node import InProcessNode

__all__ = ["admin"]
DAY_MS = 86_400_000


class Scene:
    """mha (with mha.dm) and mea; ``alice`` (of mha.dm) and ``erin`` (of mea) create rooms,
    ``bob`` and ``carol`` join them."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.ministries("olga", "org_admin")  # olga: org admin of mha
        for localpart, org in (("alice", "mha.dm"), ("erin", "mea"), ("bob", None),
                               ("carol", None)):
            user_id, _ = node.user(localpart)
            if org is not None:
                node.ok("PATCH", f"/users/{user_id}", {"organisation": org})

    def client(self, localpart: str, method: str, path: str, body: Any = None
               ) -> tuple[int, Any]:
        return self.node.client(localpart, method, path, body)

    def room(self, creator: str, **body: Any) -> str:
        status, answer = self.client(creator, "POST", "/createRoom",
                                     {"preset": "public_chat", **body})
        assert status == 200, answer
        return str(answer["room_id"])

    def join(self, localpart: str, room_id: str) -> tuple[int, Any]:
        return self.client(localpart, "POST", f"/join/{quote(room_id)}", {})

    def send(self, localpart: str, room_id: str, txn: str) -> tuple[int, Any]:
        return self.client(localpart, "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/"
                           f"{txn}", {"msgtype": "m.text", "body": "hello"})

    def membership(self, room_id: str, user_id: str) -> tuple[str | None, Any]:
        room = self.node.local.run(self.node.node.rooms.get_room(room_id))
        event = room.state.get(("m.room.member", user_id))
        return (None, None) if event is None else (event.membership,
                                                   event.content.get("reason"))

    def shutdown(self, room_id: str, body: Any = None) -> Any:
        return self.node.ok("POST", f"/rooms/{room_id}/shutdown", body or {})


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def _uid(localpart: str) -> str:
    return f"@{localpart}:admin.test"


# -- listing ---------------------------------------------------------------------------------
def test_the_list_shows_every_room_in_room_id_order_with_its_metadata(scene: Scene) -> None:
    first = scene.room("alice", name="Flood relief", room_alias_name="flood")
    second = scene.room("erin", name="Visas")
    rooms = scene.node.ok("GET", "/rooms")["rooms"]
    assert [r["room_id"] for r in rooms] == sorted([first, second])
    flood = next(r for r in rooms if r["room_id"] == first)
    assert flood == {"room_id": first, "name": "Flood relief",
                     "canonical_alias": "#flood:admin.test", "creator": _uid("alice"),
                     "organisation": "mha.dm", "room_version": flood["room_version"],
                     "created_ts": flood["created_ts"], "joined_members": 1, "public": False,
                     "blocked": False}


def test_the_list_pages_with_from_and_next_from(scene: Scene) -> None:
    made = sorted(scene.room("alice") for _ in range(3))
    page = scene.node.ok("GET", "/rooms?limit=2")
    assert [r["room_id"] for r in page["rooms"]] == made[:2]
    rest = scene.node.ok("GET", f"/rooms?limit=2&from={page['next_from']}")
    assert [r["room_id"] for r in rest["rooms"]] == made[2:] and "next_from" not in rest


@pytest.mark.parametrize("q", ["FLOOD", "relief", "#flood:admin", "room-id"])
def test_q_finds_a_room_by_its_name_alias_or_room_id(scene: Scene, q: str) -> None:
    wanted = scene.room("alice", name="Flood relief", room_alias_name="flood")
    scene.room("alice", name="Visas")
    term = wanted[1:8] if q == "room-id" else q
    assert [r["room_id"] for r in scene.node.ok("GET", f"/rooms?q={quote(term)}")["rooms"]] \
        == [wanted]


@pytest.mark.parametrize("blocked", ["true", "false"])
def test_the_blocked_filter_lists_the_rooms_shut_down_or_the_others(scene: Scene,
                                                                      blocked: str) -> None:
    shut, open_room = scene.room("alice"), scene.room("alice")
    scene.shutdown(shut)
    wanted = shut if blocked == "true" else open_room
    assert [r["room_id"] for r in scene.node.ok("GET", f"/rooms?blocked={blocked}")["rooms"]] \
        == [wanted]


def test_an_org_admin_lists_the_rooms_created_in_its_sub_tree_only(scene: Scene) -> None:
    ours = scene.room("alice")
    scene.room("erin")
    scene.room("bob")
    status, answer = scene.node.api_as("olga", "GET", "/rooms")
    assert status == 200 and [r["room_id"] for r in answer["rooms"]] == [ours]


def test_the_organisation_filter_covers_its_sub_tree(scene: Scene) -> None:
    ours = scene.room("alice")
    scene.room("erin")
    assert [r["room_id"] for r in scene.node.ok("GET", "/rooms?organisation=mha")["rooms"]] \
        == [ours]


def test_an_org_admin_may_not_list_another_organisations_rooms(scene: Scene) -> None:
    scene.node.refused(scene.node.api_as("olga", "GET", "/rooms?organisation=mea"),
                       403, "M_FORBIDDEN")


def test_a_user_without_a_role_may_not_list_rooms(scene: Scene) -> None:
    scene.node.refused(scene.node.api_as("bob", "GET", "/rooms"), 403, "M_FORBIDDEN")


# -- details ---------------------------------------------------------------------------------
def test_the_details_show_settings_counts_and_local_members(scene: Scene) -> None:
    room_id = scene.room("alice", name="Flood relief", topic="Rescue teams",
                         room_alias_name="flood", invite=[_uid("carol")],
                         initial_state=[{"type": "m.room.encryption", "state_key": "",
                                         "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    assert scene.join("bob", room_id)[0] == 200
    answer = scene.node.ok("GET", f"/rooms/{room_id}")
    assert answer == {
        "room_id": room_id, "name": "Flood relief", "topic": "Rescue teams",
        "canonical_alias": "#flood:admin.test", "aliases": ["#flood:admin.test"],
        "creator": _uid("alice"), "organisation": "mha.dm",
        "room_version": answer["room_version"], "created_ts": answer["created_ts"],
        "join_rule": "public", "encryption": "m.megolm.v1.aes-sha2", "joined_members": 2,
        "invited_members": 1,
        "local_members": [{"user_id": _uid("alice"), "membership": "join"},
                          {"user_id": _uid("bob"), "membership": "join"},
                          {"user_id": _uid("carol"), "membership": "invite"}],
        "public": False, "blocked": None,
        "retention": {"stated_max_lifetime": None, "effective_max_lifetime": None,
                      "source": "disabled", "organisation": None, "clamped": False}}


def test_the_details_show_a_rooms_stated_policy_and_the_clamp_the_node_applies(
        tmp_path: Path) -> None:
    node = AdminNode(tmp_path, "sqlite", config={"retention": {
        "enabled": True, "allowed_lifetime_max": "30d"}})
    try:
        node.user("alice")
        status, answer = node.client("alice", "POST", "/createRoom", {"initial_state": [
            {"type": "m.room.retention", "state_key": "",
             "content": {"max_lifetime": 365 * DAY_MS}}]})
        assert status == 200, answer
        assert node.ok("GET", f"/rooms/{answer['room_id']}")["retention"] == {
            "stated_max_lifetime": 365 * DAY_MS, "effective_max_lifetime": 30 * DAY_MS,
            "source": "room", "organisation": None, "clamped": True}
    finally:
        node.close()


def test_a_node_wide_auditor_reads_a_rooms_metadata(scene: Scene) -> None:
    room_id = scene.room("bob", name="Chat")
    scene.node.grant(_uid("carol"), ("auditor", None))
    status, answer = scene.node.api_as("carol", "GET", f"/rooms/{room_id}")
    assert status == 200 and answer["name"] == "Chat"
    assert not {"timeline", "events", "messages"} & set(answer)


def test_an_org_admin_may_not_read_a_room_outside_its_sub_tree(scene: Scene) -> None:
    room_id = scene.room("erin")
    scene.node.refused(scene.node.api_as("olga", "GET", f"/rooms/{room_id}"), 403, "M_FORBIDDEN")
    assert scene.node.last_entry()["target"] == room_id


def test_an_org_admin_reads_a_room_created_in_its_sub_tree(scene: Scene) -> None:
    room_id = scene.room("alice")
    status, answer = scene.node.api_as("olga", "GET", f"/rooms/{room_id}")
    assert status == 200 and answer["organisation"] == "mha.dm"


def test_an_unknown_room_is_404_and_recorded(scene: Scene) -> None:
    scene.node.refused(scene.node.api("GET", "/rooms/!nowhere", scene.node.root), 404,
                       "M_NOT_FOUND")


# -- shutting down ---------------------------------------------------------------------------
def test_a_shutdown_removes_every_local_member_with_the_reason(scene: Scene) -> None:
    room_id = scene.room("alice", invite=[_uid("carol")])
    scene.join("bob", room_id)
    answer = scene.shutdown(room_id, {"reason": "Spam"})
    members = [_uid("alice"), _uid("bob"), _uid("carol")]
    assert answer == {"room_id": room_id, "blocked": True, "aliases_removed": [],
                      "removed": members, "failed": {}, "remaining": 0, "done": True}
    assert [scene.membership(room_id, u) for u in members] == [("leave", "Spam")] * 3


def test_a_shut_down_room_refuses_local_joins(scene: Scene) -> None:
    room_id = scene.room("alice")
    scene.shutdown(room_id)
    status, answer = scene.join("bob", room_id)
    assert (status, answer["errcode"], answer["in.gov.broker.reason"]) == (
        403, "M_FORBIDDEN", "room_shut_down")
    assert scene.membership(room_id, _uid("bob")) == (None, None)


def test_a_shut_down_room_refuses_sends(scene: Scene) -> None:
    room_id = scene.room("alice")
    scene.shutdown(room_id)
    assert scene.send("alice", room_id, "t1")[0] == 403


def test_a_shut_down_room_refuses_invites(scene: Scene) -> None:
    room_id = scene.room("alice")
    scene.node.node.blocked_rooms.add(room_id)  # blocked, alice still joined
    status, answer = scene.client("alice", "POST", f"/rooms/{quote(room_id)}/invite",
                                  {"user_id": _uid("bob")})
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")


def test_a_shut_down_room_loses_its_aliases_and_refuses_new_ones(scene: Scene) -> None:
    room_id = scene.room("alice", room_alias_name="flood")
    assert scene.shutdown(room_id)["aliases_removed"] == ["#flood:admin.test"]
    assert scene.client("bob", "GET", f"/directory/room/{quote('#flood:admin.test')}")[0] \
        == 404
    status, _ = scene.client("bob", "PUT", f"/directory/room/{quote('#again:admin.test')}",
                             {"room_id": room_id})
    assert status == 403


def test_a_shut_down_room_leaves_the_public_directory(scene: Scene) -> None:
    room_id = scene.room("alice", visibility="public")
    scene.shutdown(room_id)
    status, answer = scene.client("bob", "GET", "/publicRooms")
    assert status == 200 and room_id not in [r["room_id"] for r in answer["chunk"]]
    assert scene.node.ok("GET", f"/rooms/{room_id}")["public"] is False


def test_a_shutdown_is_idempotent(scene: Scene) -> None:
    room_id = scene.room("alice")
    first = scene.shutdown(room_id, {"reason": "Spam"})
    again = scene.shutdown(room_id, {"reason": "Again"})
    assert again == {**first, "aliases_removed": [], "removed": []}
    block = scene.node.ok("GET", f"/rooms/{room_id}")["blocked"]
    assert (block["reason"], block["blocked_by"]) == ("Spam", scene.node.root_id)


def test_a_long_shutdown_goes_in_bounded_batches(scene: Scene) -> None:
    scene.node.node.admin_rooms.batch = 2
    room_id = scene.room("alice")
    for localpart in ("bob", "carol", "erin"):
        scene.join(localpart, room_id)
    first = scene.shutdown(room_id)
    assert (len(first["removed"]), first["remaining"], first["done"]) == (2, 2, False)
    second = scene.shutdown(room_id)
    assert (len(second["removed"]), second["remaining"], second["done"]) == (2, 0, True)
    assert not set(first["removed"]) & set(second["removed"])


def test_the_shutdown_is_recorded_with_its_reason_and_members(scene: Scene) -> None:
    room_id = scene.room("alice", room_alias_name="flood")
    scene.shutdown(room_id, {"reason": "Spam"})
    entry = next(e for e in reversed(scene.node.entries()) if e["action"] == "rooms.shutdown")
    assert (entry["outcome"], entry["target"], entry["organisation"]) == (
        "ok", room_id, "mha.dm")
    assert entry["detail"] == {"reason": "Spam", "aliases_removed": ["#flood:admin.test"],
                               "removing": [_uid("alice")]}


def test_only_a_node_admin_may_shut_a_room_down(scene: Scene) -> None:
    room_id = scene.room("alice")
    scene.node.refused(scene.node.api_as("olga", "POST", f"/rooms/{room_id}/shutdown", {}),
                       403, "M_FORBIDDEN")
    assert scene.join("bob", room_id)[0] == 200


def test_a_shutdown_with_an_unknown_field_is_refused_and_recorded(scene: Scene) -> None:
    room_id = scene.room("alice")
    scene.node.refused(scene.node.api("POST", f"/rooms/{room_id}/shutdown", scene.node.root,
                                      {"reason": "x", "purge": True}), 400, "M_BAD_JSON")
    assert scene.join("bob", room_id)[0] == 200


def test_a_shut_down_room_stays_blocked_after_a_restart(scene: Scene) -> None:
    room_id = scene.room("alice")
    scene.shutdown(room_id)
    node = scene.node
    restarted = InProcessNode(node.local.config_path.parent, "admin.test", engine=node.engine,
                              dsn=node.dsn)
    try:
        restarted.run(restarted.node.start())
        token, _ = restarted.run(restarted.node.auth.create_session(_uid("bob"), None, None,
                                                                    None))
        status, answer = restarted.call("POST", f"/_matrix/client/v3/join/{quote(room_id)}",
                                        token, {})
        assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")
    finally:
        restarted.close()


def test_a_room_shut_down_by_another_process_is_refused_within_a_second(scene: Scene
                                                                        ) -> None:
    node = scene.node
    node.local.run(node.node.start())
    room_id = scene.room("alice")
    entry = replace(node.last_entry_draft(), action="rooms.shutdown", target=room_id)
    node.local.run(node.stores.room_admin.block(Block(room_id, "@other:admin.test", 0, None),
                                                entry))  # as another process would
    assert scene.send("alice", room_id, "t1")[0] == 200
    node.local.advance(POLL_SECONDS)
    assert scene.send("alice", room_id, "t2")[0] == 403


def test_a_member_whose_leave_fails_is_named_and_removed_by_the_next_call(
        scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    room_id = scene.room("alice")
    scene.join("bob", room_id)
    rooms = scene.node.node.rooms
    send = rooms.send

    async def refusing_bob(room: str, sender: str, *args: Any, **kwargs: Any) -> Any:
        if sender == _uid("bob"):
            raise Forbidden("not now")
        return await send(room, sender, *args, **kwargs)

    monkeypatch.setattr(rooms, "send", refusing_bob)
    first = scene.shutdown(room_id)
    assert (first["removed"], first["failed"], first["remaining"], first["done"]) == (
        [_uid("alice")], {_uid("bob"): "not now"}, 1, False)
    monkeypatch.setattr(rooms, "send", send)
    again = scene.shutdown(room_id)
    assert (again["removed"], again["failed"], again["done"]) == ([_uid("bob")], {}, True)
