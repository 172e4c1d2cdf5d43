"""Verifying government accounts through the admin API, on both engines: who verified, when,
on what basis, until when; revocation; the history; and the class every path reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

BOB = "@bob:admin.test"
VERIFY = f"/users/{BOB}/verification"
DAY_MS = 86_400_000


@pytest.fixture
def tree(admin: AdminNode) -> AdminNode:
    """mha (with mha.dm) and mea; ``vera`` verifies for mha; ``bob`` has no organisation."""
    admin.ministries("vera", "verifier")
    admin.user("bob")
    return admin


def _verify(admin: AdminNode, token: str, org: str = "mha", **more: Any) -> tuple[int, Any]:
    return admin.api("POST", VERIFY, token, {"organisation": org, "basis": "document", **more})


def test_a_verifier_verifies_a_user_for_its_organisation(tree: AdminNode) -> None:
    status, answer = _verify(tree, tree.tokens["vera"], "mha.dm")
    assert status == 200, answer
    assert (answer["class"], answer["organisation"]) == ("verified", "mha.dm")
    verification = answer["verification"]
    assert (verification["basis"], verification["verified_by"], verification["state"]) == (
        "document", "@vera:admin.test", "active")
    assert verification["verified_at"] == tree.node.clock.time_ms()
    assert tree.node.admin.classes.class_of(BOB) == "verified"


def test_the_verification_is_recorded_in_the_audit_log(tree: AdminNode) -> None:
    _verify(tree, tree.tokens["vera"])
    entry = tree.last_entry()
    assert (entry["action"], entry["target"], entry["organisation"], entry["outcome"]) == (
        "users.verify", BOB, "mha", "ok")
    assert entry["detail"]["basis"] == "document"


def test_a_verifier_cannot_verify_for_another_organisation(tree: AdminNode) -> None:
    tree.refused(_verify(tree, tree.tokens["vera"], "mea"), 403, "M_FORBIDDEN")
    assert tree.node.admin.classes.class_of(BOB) == "public"
    assert tree.ok("GET", VERIFY)["history"] == []


def test_a_verifier_cannot_verify_another_organisations_user(tree: AdminNode) -> None:
    tree.ok("PATCH", f"/users/{BOB}", {"organisation": "mea"})
    tree.refused(_verify(tree, tree.tokens["vera"], "mha"), 403, "M_FORBIDDEN")
    assert tree.ok("GET", f"/users/{BOB}")["organisation"] == "mea"


def test_revoking_makes_the_user_public_at_once_and_keeps_the_history(
        tree: AdminNode) -> None:
    _verify(tree, tree.tokens["vera"])
    tree.local.advance(60)
    status, answer = tree.api("DELETE", VERIFY, tree.tokens["vera"])
    assert status == 200 and answer["class"] == "public" and answer["verification"] is None
    assert tree.node.admin.classes.class_of(BOB) == "public"
    history = tree.ok("GET", VERIFY)
    assert history["class"] == "public"
    (only,) = history["history"]
    assert (only["state"], only["revoked_by"]) == ("revoked", "@vera:admin.test")
    assert only["revoked_at"] - only["verified_at"] == 60_000


def test_verifying_again_replaces_the_verification_and_both_stay_in_the_history(
        tree: AdminNode) -> None:
    _verify(tree, tree.root)
    tree.local.advance(1)
    _verify(tree, tree.root, basis="in_person")
    states = [(v["basis"], v["state"]) for v in tree.ok("GET", VERIFY)["history"]]
    assert states == [("document", "revoked"), ("in_person", "active")]


def test_a_user_is_public_from_the_moment_the_verification_expires(tree: AdminNode) -> None:
    expires = tree.node.clock.time_ms() + DAY_MS
    _verify(tree, tree.root, expires_at=expires)
    tree.local.advance(DAY_MS / 1000 - 1)
    assert tree.node.admin.classes.class_of(BOB) == "verified"
    tree.local.advance(1)
    assert tree.node.admin.classes.class_of(BOB) == "public"
    answer = tree.ok("GET", f"/users/{BOB}")
    assert (answer["class"], answer["verification"]["state"]) == ("public", "expired")


def test_a_user_deactivating_their_own_account_is_public_at_once(tree: AdminNode) -> None:
    _verify(tree, tree.root)
    node = tree.node
    requester = tree.local.run(node.auth.requester_for_token(tree.tokens["bob"]))
    tree.local.run(node.accounts.deactivate(requester, False))  # the client API's deactivation
    assert node.admin.classes.class_of(BOB) == "public"


def test_the_class_cache_loads_current_verifications_and_skips_ended_ones(
        tree: AdminNode) -> None:
    _verify(tree, tree.root)
    carol, _ = tree.user("carol")
    tree.ok("POST", f"/users/{carol}/verification", {"organisation": "mea",
                                                    "basis": "in_person"})
    tree.ok("POST", f"/users/{carol}/deactivate", {})
    classes = tree.node.admin.classes
    classes._current.clear()  # as at a restart
    assert tree.local.run(classes.load()) == 1
    assert (classes.class_of(BOB), classes.class_of(carol)) == ("verified", "public")


def test_a_deactivated_account_cannot_be_verified(tree: AdminNode) -> None:
    tree.ok("POST", f"/users/{BOB}/deactivate", {})
    tree.refused(_verify(tree, tree.root), 409, "M_UNKNOWN")


def test_revoking_without_a_verification_is_refused(tree: AdminNode) -> None:
    tree.refused(tree.api("DELETE", VERIFY, tree.root), 404, "M_NOT_FOUND")


def test_a_verifier_of_another_organisation_cannot_revoke(tree: AdminNode) -> None:
    _verify(tree, tree.root, "mea")
    tree.refused(tree.api("DELETE", VERIFY, tree.tokens["vera"]), 403, "M_FORBIDDEN")
    assert tree.node.admin.classes.class_of(BOB) == "verified"


@pytest.mark.parametrize("body, field", [
    ({"organisation": "mha"}, "basis"),
    ({"basis": "document"}, "organisation"),
    ({"organisation": "mha", "basis": "hearsay"}, "basis"),
    ({"organisation": "nowhere", "basis": "document"}, "organisation"),
    ({"organisation": "mha", "basis": "document", "expires_at": 1}, "expires_at"),
    ({"organisation": "mha", "basis": "document", "expires_at": "soon"}, "expires_at"),
    ({"organisation": "mha", "basis": "document", "by": "me"}, "by"),
])
def test_a_bad_verification_body_is_refused_naming_the_field_and_nothing_is_written(
        tree: AdminNode, body: dict[str, Any], field: str) -> None:
    status, answer = tree.api("POST", VERIFY, tree.root, body)
    assert status == 400 and field in answer["error"], answer
    assert tree.last_entry()["outcome"] == "refused"
    assert result_of(tree.stores.accounts.history(BOB)) == []
    assert result_of(tree.stores.organisations.member(BOB)) is None
