"""Groups an application manages (``/_broker/apps/v1/groups``), on both engines: the app
creates a group of its sender's, members of this node are in it at once (by user ID or
employee ID), the app adds, removes, lists and posts; members can post; another app's group
is not found; unknown members are refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.test_apps_messages import Scene, scene

__all__ = ["scene"]


def _create(scene: Scene, members: list[Any]) -> dict[str, Any]:
    status, group = scene.call("POST", "/groups", {"name": "Passport office", "members": members})
    assert status == 200, group
    return dict(group)


def _joined(scene: Scene, who: str) -> list[str]:
    return list(scene.node.client(who, "GET", "/joined_rooms")[1]["joined_rooms"])


def test_members_of_this_node_are_in_the_group_at_once(scene: Scene) -> None:
    group = _create(scene, [scene.ravi, {"organisation": "mha", "employee_id": "E1"}])
    assert _joined(scene, "asha") == [group["room_id"]] == _joined(scene, "ravi")
    shown = scene.call("GET", f"/groups/{group['group_id']}")[1]
    assert shown["members"] == sorted([scene.asha, scene.ravi]) and shown["invited"] == []
    assert shown["name"] == "Passport office"


def test_the_group_is_the_apps_senders_and_members_may_post(scene: Scene) -> None:
    group = _create(scene, [scene.asha])
    room = quote(group["room_id"])
    status, state = scene.node.client("asha", "GET", f"/rooms/{room}/state/m.room.create/")
    assert state.get("creator", scene.app["sender"]) == scene.app["sender"]
    status, _ = scene.node.client("asha", "PUT", f"/rooms/{room}/send/m.room.message/1",
                                  {"msgtype": "m.text", "body": "present"})
    assert status == 200


def test_the_app_adds_and_removes_members(scene: Scene) -> None:
    group = _create(scene, [scene.asha])
    one = f"/groups/{group['group_id']}"
    status, added = scene.call("PUT", f"{one}/members/{quote(scene.ravi)}")
    assert (status, added) == (200, {"user_id": scene.ravi})
    assert group["room_id"] in _joined(scene, "ravi")
    assert scene.call("DELETE", f"{one}/members/{quote(scene.asha)}")[0] == 200
    assert group["room_id"] not in _joined(scene, "asha")
    assert scene.call("GET", one)[1]["members"] == [scene.ravi]


def test_a_member_may_be_added_by_employee_id(scene: Scene) -> None:
    group = _create(scene, [])
    status, added = scene.call("PUT", f"/groups/{group['group_id']}/members",
                               {"member": {"organisation": "mha", "employee_id": "E1"}})
    assert (status, added) == (200, {"user_id": scene.asha})


def test_the_app_posts_into_its_group(scene: Scene) -> None:
    group = _create(scene, [scene.asha])
    status, answer = scene.call("POST", f"/groups/{group['group_id']}/messages",
                                {"body": "Office closed tomorrow", "tags": ["priority"]})
    assert status == 200, answer
    body = scene.node.client("asha", "GET", "/sync")[1]
    events = body["rooms"]["join"][group["room_id"]]["timeline"]["events"]
    assert events[-1]["event_id"] == answer["event_id"]
    assert events[-1]["content"]["in.gov.broker.tags"] == ["priority"]


def test_groups_are_listed(scene: Scene) -> None:
    first, second = _create(scene, []), _create(scene, [])
    listed = scene.call("GET", "/groups")[1]["groups"]
    assert sorted(g["group_id"] for g in listed) == sorted([first["group_id"],
                                                            second["group_id"]])


def test_another_apps_group_is_not_found(scene: Scene) -> None:
    group = _create(scene, [])
    other = scene.node.api("POST", "/apps", scene.node.root,
                           {"name": "Other", "organisation": "mha"})[1]
    status, body = scene.call("GET", f"/groups/{group['group_id']}", token=other["token"])
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_an_unknown_member_is_refused(scene: Scene) -> None:
    status, body = scene.call("POST", "/groups", {"name": "G", "members": ["@ghost:admin.test"]})
    assert (status, body["in.gov.broker.reason"]) == (404, "unknown_recipient")
    assert scene.call("GET", "/groups")[1]["groups"] == []
