"""The verifier queue through the admin API, on both engines: requests a correct emailed
code queued, listed for the verifiers of their organisation, approved through the same path
as an admin's verification, or denied."""

from __future__ import annotations

from typing import Any

import pytest

from tests.email_harness import ALICE, EmailScene, scene
from tests.smtp_server import smtp_server

__all__ = ["scene", "smtp_server"]

VERA = "@vera:admin.test"


def _queued(scene: EmailScene, user: str = "alice", email: str = "alice@mha.gov.in",
            organisation: str = "mha") -> str:
    sid, code = scene.asked(user, email, organisation)
    status, answer = scene.submit(sid, code, user)
    assert status == 200, answer
    request_id: str = answer["pending"][0]["request_id"]
    return request_id


def _as(scene: EmailScene, user: str, method: str, path: str, body: Any = None
        ) -> tuple[int, Any]:
    return scene.admin.api(method, path, scene.admin.tokens[user], body)


@pytest.fixture
def queued(scene: EmailScene) -> tuple[EmailScene, str]:
    return scene, _queued(scene)


def test_a_verifier_sees_the_requests_of_its_organisation(
        queued: tuple[EmailScene, str]) -> None:
    scene, request_id = queued
    status, answer = _as(scene, "vera", "GET", "/verification_requests")
    assert status == 200, answer
    (only,) = answer["requests"]
    assert (only["request_id"], only["user_id"], only["organisation"], only["state"]) == (
        request_id, ALICE, "mha", "pending")


def test_the_queue_shows_only_the_sub_trees_the_caller_verifies_for(
        scene: EmailScene) -> None:
    _queued(scene)
    _queued(scene, "bob", "bob@mea.gov.in", "mea")
    seen = _as(scene, "vera", "GET", "/verification_requests")[1]["requests"]
    assert [r["organisation"] for r in seen] == ["mha"]
    every = scene.admin.ok("GET", "/verification_requests")["requests"]
    assert sorted(r["organisation"] for r in every) == ["mea", "mha"]
    status, answer = _as(scene, "vera", "GET", "/verification_requests?organisation=mea")
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")


def test_the_queue_filters_by_state_and_pages(scene: EmailScene) -> None:
    first = _queued(scene)
    scene.admin.local.advance(1)
    second = _queued(scene, "bob", "bob@mha.gov.in")
    scene.admin.ok("POST", f"/verification_requests/{first}/deny", {})
    pending = scene.admin.ok("GET", "/verification_requests?state=pending")["requests"]
    assert [r["request_id"] for r in pending] == [second]
    page = scene.admin.ok("GET", "/verification_requests?limit=1")
    assert [r["request_id"] for r in page["requests"]] == [first]
    rest = scene.admin.ok("GET", f"/verification_requests?limit=1&from={page['next_from']}")
    assert [r["request_id"] for r in rest["requests"]] == [second]


def test_approving_verifies_the_user_by_official_email(queued: tuple[EmailScene, str]) -> None:
    scene, request_id = queued
    status, answer = _as(scene, "vera", "POST", f"/verification_requests/{request_id}/approve",
                         {"reason": "checked the directory"})
    assert status == 200, answer
    assert (answer["state"], answer["decided_by"], answer["reason"]) == (
        "approved", VERA, "checked the directory")
    account = scene.admin.ok("GET", f"/users/{ALICE}")
    assert (account["class"], account["organisation"], account["email"]) == (
        "verified", "mha", "alice@mha.gov.in")
    assert (account["verification"]["basis"], account["verification"]["verified_by"]) == (
        "official_email", VERA)
    entry = scene.admin.last_entry()
    assert (entry["action"], entry["actor"], entry["target"], entry["detail"]["request"]) == (
        "users.verify", VERA, ALICE, request_id)


def test_denying_leaves_the_user_public(queued: tuple[EmailScene, str]) -> None:
    scene, request_id = queued
    status, answer = _as(scene, "vera", "POST", f"/verification_requests/{request_id}/deny",
                         {"reason": "not on the staff list"})
    assert (status, answer["state"], answer["reason"]) == (200, "denied",
                                                           "not on the staff list")
    assert scene.node.admin.classes.class_of(ALICE) == "public"
    entry = scene.admin.last_entry()
    assert (entry["action"], entry["outcome"], entry["detail"]["reason"]) == (
        "verification_requests.deny", "ok", "not on the staff list")


def test_a_request_is_decided_once(queued: tuple[EmailScene, str]) -> None:
    scene, request_id = queued
    scene.admin.ok("POST", f"/verification_requests/{request_id}/deny", {})
    scene.admin.refused(scene.admin.api(
        "POST", f"/verification_requests/{request_id}/approve", scene.admin.root, {}),
        409, "M_UNKNOWN")
    assert scene.node.admin.classes.class_of(ALICE) == "public"


def test_a_verifier_of_another_organisation_cannot_decide(scene: EmailScene) -> None:
    request_id = _queued(scene, "bob", "bob@mea.gov.in", "mea")
    scene.admin.refused(_as(scene, "vera", "POST",
                            f"/verification_requests/{request_id}/approve", {}),
                        403, "M_FORBIDDEN")
    scene.admin.refused(_as(scene, "vera", "POST", f"/verification_requests/{request_id}/deny",
                            {}), 403, "M_FORBIDDEN")
    assert scene.admin.ok("GET", "/verification_requests?state=pending")["requests"][0][
        "request_id"] == request_id


def test_a_user_without_a_role_sees_no_queue(queued: tuple[EmailScene, str]) -> None:
    scene, _ = queued
    scene.admin.refused(_as(scene, "alice", "GET", "/verification_requests"), 403,
                        "M_FORBIDDEN")


def test_an_unknown_request_is_not_found(scene: EmailScene) -> None:
    scene.admin.refused(scene.admin.api("POST", "/verification_requests/nope/approve",
                                        scene.admin.root, {}), 404, "M_NOT_FOUND")


def test_an_unknown_field_in_a_decision_is_refused(queued: tuple[EmailScene, str]) -> None:
    scene, request_id = queued
    scene.admin.refused(scene.admin.api(
        "POST", f"/verification_requests/{request_id}/approve", scene.admin.root,
        {"colour": "red"}), 400, "M_BAD_JSON")
    assert scene.node.admin.classes.class_of(ALICE) == "public"
