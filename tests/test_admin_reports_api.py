"""Reports made with the client ``/report`` endpoints, read and resolved through the admin API
on both engines; the reported event's content only for node admins, on record."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]

ALICE, BOB = "@alice:admin.test", "@bob:admin.test"


class Scene:
    """``alice`` sent "offensive" into a room ``bob`` joined; bob reported the event (report
    1), the room (2) and alice (3)."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        for localpart in ("alice", "bob", "carol"):
            node.user(localpart)
        self.room_id = self.client("alice", "POST", "/createRoom",
                                   {"preset": "public_chat"})["room_id"]
        self.client("bob", "POST", f"/join/{quote(self.room_id)}", {})
        self.event_id = self.client(
            "alice", "PUT", f"/rooms/{quote(self.room_id)}/send/m.room.message/t1",
            {"msgtype": "m.text", "body": "offensive"})["event_id"]
        room = quote(self.room_id)
        self.client("bob", "POST", f"/rooms/{room}/report/{quote(self.event_id)}",
                    {"reason": "abuse", "score": -100})
        self.client("bob", "POST", f"/rooms/{room}/report", {"reason": "spam room"})
        self.client("bob", "POST", f"/users/{quote(ALICE)}/report", {"reason": "troll"})

    def client(self, localpart: str, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.node.client(localpart, method, path, body)
        assert status == 200, answer
        return answer


@pytest.fixture
def scene(admin: AdminNode) -> Scene:
    return Scene(admin)


def test_the_list_shows_every_report_newest_first_with_the_reported_sender(
        scene: Scene) -> None:
    reports = scene.node.ok("GET", "/reports")["reports"]
    assert [(r["id"], r["kind"], r["state"]) for r in reports] == [
        (3, "user", "open"), (2, "room", "open"), (1, "event", "open")]
    event_report = reports[2]
    assert event_report == {
        "id": 1, "kind": "event", "room_id": scene.room_id, "event_id": scene.event_id,
        "reported_user_id": ALICE, "user_id": BOB, "reason": "abuse", "score": -100,
        "received_ts": event_report["received_ts"], "state": "open", "resolved_ts": None,
        "resolved_by": None, "resolution": None}


def test_the_list_pages_with_from_and_next_from(scene: Scene) -> None:
    page = scene.node.ok("GET", "/reports?limit=2")
    assert [r["id"] for r in page["reports"]] == [3, 2] and page["next_from"] == 2
    rest = scene.node.ok("GET", "/reports?limit=2&from=2")
    assert [r["id"] for r in rest["reports"]] == [1] and "next_from" not in rest


def test_the_list_filters_by_room(scene: Scene) -> None:
    reports = scene.node.ok("GET", f"/reports?room_id={quote(scene.room_id)}")["reports"]
    assert [r["id"] for r in reports] == [2, 1]


def test_the_list_filters_by_state(scene: Scene) -> None:
    scene.node.ok("POST", "/reports/2/resolve", {})
    assert [r["id"] for r in scene.node.ok("GET", "/reports?state=open")["reports"]] == [3, 1]
    assert [r["id"] for r in scene.node.ok("GET", "/reports?state=resolved")["reports"]] \
        == [2]


def test_an_unknown_state_is_refused_and_recorded(scene: Scene) -> None:
    scene.node.refused(scene.node.api("GET", "/reports?state=pending", scene.node.root),
                       400, "M_INVALID_PARAM")


def test_one_report_shows_its_metadata_without_the_content(scene: Scene) -> None:
    answer = scene.node.ok("GET", "/reports/1")
    assert answer["reported_user_id"] == ALICE and "event" not in answer


def test_a_node_admin_sees_the_reported_event_when_asking_and_the_read_is_recorded(
        scene: Scene) -> None:
    answer = scene.node.ok("GET", "/reports/1?content=true")
    assert answer["event"]["content"] == {"msgtype": "m.text", "body": "offensive"}
    assert (answer["event"]["sender"], answer["event"]["event_id"]) == (ALICE, scene.event_id)
    entry = scene.node.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"], entry["actor"]) == (
        "reports.content", "1", "ok", scene.node.root_id)


def test_a_node_wide_auditor_reads_reports_but_never_their_content(scene: Scene) -> None:
    scene.node.grant("@carol:admin.test", ("auditor", None))
    status, answer = scene.node.api_as("carol", "GET", "/reports/1")
    assert status == 200 and "event" not in answer
    scene.node.refused(scene.node.api_as("carol", "GET", "/reports/1?content=true"), 403,
                       "M_FORBIDDEN")
    assert scene.node.last_entry()["action"] == "reports.content"


def test_an_auditor_over_an_organisation_may_not_read_reports(scene: Scene) -> None:
    scene.node.org("mha")
    scene.node.grant("@carol:admin.test", ("auditor", "mha"))
    scene.node.refused(scene.node.api_as("carol", "GET", "/reports"), 403, "M_FORBIDDEN")


def test_an_org_admin_may_not_read_reports(scene: Scene) -> None:
    scene.node.org("mha")
    scene.node.grant("@carol:admin.test", ("org_admin", "mha"))
    scene.node.refused(scene.node.api_as("carol", "GET", "/reports/1"), 403, "M_FORBIDDEN")


def test_resolving_records_who_when_and_the_resolution(scene: Scene) -> None:
    scene.node.local.advance(5)
    answer = scene.node.ok("POST", "/reports/1/resolve", {"resolution": "User warned"})
    now = scene.node.node.clock.time_ms()
    assert (answer["state"], answer["resolved_by"], answer["resolved_ts"],
            answer["resolution"]) == ("resolved", scene.node.root_id, now, "User warned")
    assert scene.node.ok("GET", "/reports/1") == answer
    entry = scene.node.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"], entry["detail"]) == (
        "reports.resolve", "1", "ok", {"resolution": "User warned"})


def test_resolving_a_resolved_report_is_a_conflict(scene: Scene) -> None:
    scene.node.ok("POST", "/reports/1/resolve", {"resolution": "First"})
    scene.node.refused(scene.node.api("POST", "/reports/1/resolve", scene.node.root,
                                      {"resolution": "Second"}), 409, "M_UNKNOWN")
    assert scene.node.ok("GET", "/reports/1")["resolution"] == "First"


def test_an_auditor_may_not_resolve_a_report(scene: Scene) -> None:
    scene.node.grant("@carol:admin.test", ("auditor", None))
    scene.node.refused(scene.node.api_as("carol", "POST", "/reports/1/resolve", {}), 403,
                       "M_FORBIDDEN")
    assert scene.node.ok("GET", "/reports/1")["state"] == "open"


def test_an_unknown_report_is_404(scene: Scene) -> None:
    scene.node.refused(scene.node.api("GET", "/reports/99", scene.node.root), 404,
                       "M_NOT_FOUND")


@pytest.mark.parametrize("report_id", ["abc", "0", "-1", "\u00b3"])
def test_a_report_id_that_is_not_a_positive_integer_is_refused(scene: Scene,
                                                               report_id: str) -> None:
    scene.node.refused(scene.node.api("GET", f"/reports/{report_id}", scene.node.root), 400,
                       "M_INVALID_PARAM")


def test_a_resolution_of_the_wrong_type_is_refused_and_nothing_changes(scene: Scene) -> None:
    scene.node.refused(scene.node.api("POST", "/reports/1/resolve", scene.node.root,
                                      {"resolution": 5}), 400, "M_BAD_JSON")
    assert scene.node.ok("GET", "/reports/1")["state"] == "open"
