"""Broadcasts from the portal, on both engines: a broadcaster of mha reaches its sub-tree's
members (or those an audience chooses) in mha's read-only broadcast room, from mha's account,
with the notice marker; the statistics come from sync progress and read receipts; bad input and
other roles are refused and recorded; a job a stop interrupted goes on from where it was."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from broker.broadcasts.audience import EMPTY, OUTSIDE
from broker.broadcasts.jobs import BroadcastJobs
from broker.notice_rooms import NOTICE, NOTICE_ROOM
from tests import admin_harness
from tests.admin_harness import AdminNode

admin = admin_harness.admin  # the fixture: a node on each engine


class Scene:
    """mha (with mha.dm) and mea; bea broadcasts for mha; members placed in each."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        self.bea, _ = node.ministries("bea", "broadcaster")
        self.amy = self.member("amy", "mha", "Under Secretary")
        self.dev = self.member("dev", "mha.dm", "Section Officer")
        self.eli = self.member("eli", "mha.dm", "Under Secretary")
        self.zed = self.member("zed", "mea", "Under Secretary")

    def member(self, localpart: str, org: str, designation: str) -> str:
        user_id, _ = self.node.user(localpart)
        self.node.ok("PATCH", f"/users/{quote(user_id)}",
                     {"organisation": org, "designation": designation})
        return user_id

    def send(self, body: dict[str, Any], status: int = 201, who: str = "bea") -> Any:
        got, answer = self.node.api_as(who, "POST", "/broadcasts", body)
        assert got == status, answer
        self.settle()
        return answer

    def settle(self, jobs: BroadcastJobs | None = None) -> None:
        jobs = jobs or self.node.node.broadcast_jobs
        for _ in range(1000):
            if not jobs.running:
                return
            self.node.local.advance(0)
        raise AssertionError("the broadcast did not finish")

    def show(self, broadcast_id: str) -> dict[str, Any]:
        got, answer = self.node.api_as("bea", "GET", f"/broadcasts/{broadcast_id}")
        assert got == 200, answer
        return dict(answer)

    def sync(self, who: str, since: str | None = None) -> dict[str, Any]:
        path = "/sync?timeout=0" + (f"&since={since}" if since else "")
        got, body = self.node.client(who, "GET", path)
        assert got == 200, body
        return dict(body)

    def messages(self, who: str) -> list[dict[str, Any]]:
        """The broadcast messages in ``who``'s joined rooms, as their initial sync shows
        (each with its ``room_id``)."""
        rooms = self.sync(who)["rooms"]["join"]
        return [{**e, "room_id": room_id} for room_id, room in rooms.items()
                for e in room["timeline"]["events"] if NOTICE in e.get("content", {})]


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def test_an_empty_audience_reaches_the_whole_sub_tree_in_the_organisations_room(
        scene: Scene) -> None:
    answer = scene.send({"organisation": "mha", "body": "Office closed on Friday"})
    sender = scene.node.node.org_accounts.account_of("mha")
    for who in ("amy", "dev", "eli"):
        [message] = scene.messages(who)
        assert message["sender"] == sender
        assert message["content"]["body"] == "Office closed on Friday"
        assert message["content"][NOTICE] == {"kind": "broadcast", "id": answer["broadcast_id"]}
    assert scene.messages("zed") == []
    shown = scene.show(answer["broadcast_id"])
    assert shown["recipients"] == 3 and shown["progress"] == {
        "state": "done", "done": 3, "total": 3}


def test_a_second_broadcast_uses_the_same_room(scene: Scene) -> None:
    scene.send({"organisation": "mha", "body": "one"})
    scene.send({"organisation": "mha", "body": "two"})
    rooms = {m["room_id"] for m in scene.messages("amy")}
    assert len(rooms) == 1 and len(scene.messages("amy")) == 2


@pytest.mark.parametrize(("audience", "reached"), [
    ({"organisations": ["mha.dm"]}, {"dev", "eli"}),
    ({"designations": ["Under Secretary"]}, {"amy", "eli"}),
    ({"organisations": ["mha.dm"], "designations": ["Under Secretary"]}, {"eli"}),
    ({"users": ["@amy:admin.test", "@dev:admin.test"]}, {"amy", "dev"}),
])
def test_an_audience_narrows_the_sub_tree(scene: Scene, audience: dict[str, Any],
                                          reached: set[str]) -> None:
    answer = scene.send({"organisation": "mha", "audience": audience, "body": "to some"})
    shown = scene.show(answer["broadcast_id"])
    assert set(shown["unread"]) == {scene.node.node.user_id(w) for w in reached}


def test_an_audience_by_role_reaches_the_members_holding_it(scene: Scene) -> None:
    scene.node.grant(scene.dev, ("verifier", "mha.dm"))
    answer = scene.send({"organisation": "mha", "audience": {"roles": ["verifier"]},
                         "body": "verifiers"})
    assert scene.show(answer["broadcast_id"])["unread"] == [scene.dev]


def test_a_user_outside_the_sub_tree_is_refused_by_name_and_recorded(scene: Scene) -> None:
    answer = scene.send({"organisation": "mha", "audience": {"users": [scene.amy, scene.zed]},
                         "body": "x"}, status=400)
    assert answer["in.gov.broker.reason"] == OUTSIDE and answer["users"] == [scene.zed]
    assert scene.node.last_entry()["outcome"] == "refused"
    assert scene.messages("amy") == []


def test_an_organisation_outside_the_sub_tree_is_refused(scene: Scene) -> None:
    answer = scene.send({"organisation": "mha", "audience": {"organisations": ["mea"]},
                         "body": "x"}, status=400)
    assert answer["in.gov.broker.reason"] == OUTSIDE


def test_an_audience_of_nobody_is_refused(scene: Scene) -> None:
    answer = scene.send({"organisation": "mha", "audience": {"designations": ["Minister"]},
                         "body": "x"}, status=400)
    assert answer["in.gov.broker.reason"] == EMPTY


@pytest.mark.parametrize(("body", "errcode"), [
    ({"organisation": "mha"}, "M_MISSING_PARAM"),
    ({"organisation": "mha", "body": ""}, "M_BAD_JSON"),
    ({"organisation": "mha", "body": "x", "colour": "red"}, "M_BAD_JSON"),
    ({"organisation": "mha", "body": "x", "format": "pdf"}, "M_INVALID_PARAM"),
    ({"organisation": "mha", "body": "x", "audience": {"roles": ["king"]}}, "M_INVALID_PARAM"),
    ({"organisation": "mha", "body": "x", "audience": {"users": "amy"}}, "M_BAD_JSON"),
])
def test_bad_input_is_refused_and_recorded(scene: Scene, body: dict[str, Any],
                                           errcode: str) -> None:
    scene.node.refused(scene.node.api_as("bea", "POST", "/broadcasts", body), 400, errcode)


def test_a_broadcaster_may_send_for_its_organisation_only(scene: Scene) -> None:
    scene.node.user("una")  # holds no role
    scene.node.refused(scene.node.api_as("una", "POST", "/broadcasts",
                                         {"organisation": "mha", "body": "x"}), 403,
                       "M_FORBIDDEN")
    scene.node.refused(scene.node.api_as("bea", "POST", "/broadcasts",
                                         {"organisation": "mea", "body": "x"}), 403,
                       "M_FORBIDDEN")


def test_html_is_sent_formatted_with_a_plain_body(scene: Scene) -> None:
    scene.send({"organisation": "mha", "body": "<b>Closed</b> &amp; locked", "format": "html",
                "audience": {"users": [scene.amy]}})
    [message] = scene.messages("amy")
    assert message["content"]["body"] == "Closed & locked"
    assert message["content"]["format"] == "org.matrix.custom.html"
    assert message["content"]["formatted_body"] == "<b>Closed</b> &amp; locked"


def test_statistics_follow_sync_progress_and_read_receipts(scene: Scene) -> None:
    broadcast_id = scene.send({"organisation": "mha", "body": "read me"})["broadcast_id"]
    assert scene.show(broadcast_id)["delivered"] == 0
    token = scene.sync("amy")["next_batch"]
    scene.sync("amy", since=token)  # amy's device received what came before the token
    [message] = scene.messages("dev")
    got, body = scene.node.client("dev", "POST", f"/rooms/{quote(message['room_id'])}/receipt"
                                  f"/m.read/{quote(message['event_id'])}", {})
    assert got == 200, body
    shown = scene.show(broadcast_id)
    assert (shown["recipients"], shown["delivered"], shown["read"]) == (3, 2, 1)
    assert shown["unread"] == [scene.amy, scene.eli]


def test_the_listing_shows_the_organisations_broadcasts_newest_first(scene: Scene) -> None:
    first = scene.send({"organisation": "mha", "body": "one"})["broadcast_id"]
    scene.node.local.advance(1)
    second = scene.send({"organisation": "mha", "body": "two"})["broadcast_id"]
    got, answer = scene.node.api_as("bea", "GET", "/broadcasts?organisation=mha")
    assert got == 200, answer
    assert [b["broadcast_id"] for b in answer["broadcasts"]] == [second, first]


def test_the_organisation_setting_lets_members_leave_its_room(scene: Scene) -> None:
    scene.node.ok("PATCH", "/organisations/mha",
                  {"settings": {"broadcast_leave_allowed": True}})
    scene.send({"organisation": "mha", "body": "leave if you like"})
    [message] = scene.messages("amy")
    got, body = scene.node.client("amy", "GET",
                                  f"/rooms/{quote(message['room_id'])}/state/{NOTICE_ROOM}/")
    assert (got, body["leave_allowed"]) == (200, True)
    got, body = scene.node.client("amy", "POST", f"/rooms/{quote(message['room_id'])}/leave",
                                  {})
    assert got == 200, body


def test_a_broadcast_a_stop_interrupted_goes_on_from_where_it_was(scene: Scene) -> None:
    node = scene.node.node
    real = node.broadcast_jobs
    calls: list[list[str]] = []

    async def stops_after_one_batch(sender: str, users: list[str], **options: Any) -> Any:
        if calls:
            raise RuntimeError("the node stopped")
        calls.append(users)
        return await node.notice_rooms.deliver(sender, users, **options)

    interrupted = BroadcastJobs(real.store, node.notice_rooms, node.clock, batch=2)
    interrupted.notice_rooms = type("Stopping", (), {"deliver": staticmethod(
        stops_after_one_batch)})()  # type: ignore[assignment]
    node.broadcasts.start_job = interrupted.start
    broadcast_id = scene.send({"organisation": "mha", "body": "once each"})["broadcast_id"]
    scene.settle(interrupted)  # until it stops
    assert scene.show(broadcast_id)["progress"]["done"] == 2
    assert scene.node.local.run(real.resume()) == 1  # as at the next start
    scene.settle()
    assert scene.show(broadcast_id)["progress"] == {"state": "done", "done": 3, "total": 3}
    for who in ("amy", "dev", "eli"):
        assert len(scene.messages(who)) == 1


def test_a_change_of_the_setting_reaches_the_room_with_the_next_broadcast(
        scene: Scene) -> None:
    scene.send({"organisation": "mha", "body": "stay", "audience": {"users": [scene.amy]}})
    [message] = scene.messages("amy")
    room = quote(message["room_id"])
    got, body = scene.node.client("amy", "POST", f"/rooms/{room}/leave", {})
    assert got == 403, body
    scene.node.ok("PATCH", "/organisations/mha",
                  {"settings": {"broadcast_leave_allowed": True}})
    scene.send({"organisation": "mha", "body": "go if you like",
                "audience": {"users": [scene.amy]}})
    got, body = scene.node.client("amy", "POST", f"/rooms/{room}/leave", {})
    assert got == 200, body


def test_a_setting_that_is_not_a_boolean_is_refused(scene: Scene) -> None:
    scene.node.refused(scene.node.api("PATCH", "/organisations/mha", scene.node.root, {
        "settings": {"broadcast_leave_allowed": "yes"}}), 400, "M_BAD_JSON")


def test_a_member_who_left_the_room_is_not_reached_again(scene: Scene) -> None:
    scene.node.ok("PATCH", "/organisations/mha",
                  {"settings": {"broadcast_leave_allowed": True}})
    scene.send({"organisation": "mha", "body": "one", "audience": {"users": [scene.amy]}})
    [message] = scene.messages("amy")
    got, body = scene.node.client("amy", "POST", f"/rooms/{quote(message['room_id'])}/leave",
                                  {})
    assert got == 200, body
    second = scene.send({"organisation": "mha", "body": "two",
                         "audience": {"users": [scene.amy]}})["broadcast_id"]
    token = scene.sync("amy")["next_batch"]
    scene.sync("amy", since=token)
    shown = scene.show(second)
    assert (shown["recipients"], shown["delivered"], shown["unread"]) == (1, 0, [scene.amy])
    assert shown["progress"]["state"] == "done"
