"""Government accounts through the admin API, on both engines: creating, reading, listing,
changing and deactivating them, each call decided by the permission module and recorded."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

BOB = "@bob:admin.test"


@pytest.fixture
def tree(admin: AdminNode) -> AdminNode:
    """mha (with mha.dm) and mea; ``alice`` is org admin of mha."""
    admin.ministries("alice", "org_admin")
    return admin


def test_a_new_account_answers_201_with_its_user_id_and_is_public(tree: AdminNode) -> None:
    answer = tree.ok("POST", "/users", {"localpart": "bob", "organisation": "mha.dm",
                                        "designation": "Under Secretary",
                                        "employee_id": "E-17", "email": "bob@mha.gov.in",
                                        "phone": "+91 11 2309 2011"}, status=201)
    assert answer["user_id"] == BOB
    assert (answer["class"], answer["organisation"], answer["designation"]) == (
        "public", "mha.dm", "Under Secretary")
    assert answer["verification"] is None and answer["roles"] == []
    assert tree.ok("GET", f"/users/{BOB}") == answer


def test_an_account_created_verified_by_an_org_admin_is_verified(tree: AdminNode) -> None:
    answer = tree.api("POST", "/users", tree.tokens["alice"], {
        "localpart": "bob", "organisation": "mha", "class": "verified", "basis": "document"})[1]
    assert answer["class"] == "verified"
    assert answer["verification"]["basis"] == "document"
    assert answer["verification"]["verified_by"] == "@alice:admin.test"


def test_a_verified_account_needs_the_right_to_verify_for_its_organisation(
        tree: AdminNode) -> None:
    tree.refused(tree.api("POST", "/users", tree.tokens["alice"], {
        "localpart": "bob", "organisation": "mea", "class": "verified"}), 403, "M_FORBIDDEN")
    assert tree.api("GET", f"/users/{BOB}", tree.root)[0] == 404


def test_a_verified_account_needs_an_organisation(tree: AdminNode) -> None:
    tree.refused(tree.api("POST", "/users", tree.root, {"localpart": "bob",
                                                          "class": "verified"}),
             400, "M_INVALID_PARAM")


def test_an_account_created_with_a_password_stores_its_argon2_hash(tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob", "password": "a long password"}, status=201)
    stored = (result_of(tree.stores.users.get_user(BOB)) or {})["password_hash"]
    assert PasswordHasher().verify(stored, "a long password")


def test_an_account_created_without_a_password_has_none(tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob"}, status=201)
    assert (result_of(tree.stores.users.get_user(BOB)) or {})["password_hash"] is None


def test_a_taken_localpart_is_refused_with_user_in_use(tree: AdminNode) -> None:
    tree.refused(tree.api("POST", "/users", tree.root, {"localpart": "alice"}),
             409, "M_USER_IN_USE")


@pytest.mark.parametrize("body, field", [
    ({"localpart": "Bob!"}, "localpart"),
    ({"localpart": "bob", "colour": "red"}, "colour"),
    ({"localpart": "bob", "organisation": "nowhere"}, "organisation"),
    ({"localpart": "bob", "email": "not-an-address"}, "email"),
    ({"localpart": "bob", "designation": "Clerk"}, "designation"),
    ({"localpart": "bob", "class": "royal"}, "class"),
    ({"localpart": "bob", "password": "short"}, ""),
    ({"organisation": "mha"}, "localpart"),
])
def test_a_bad_create_body_is_refused_naming_the_field_and_nothing_is_written(
        tree: AdminNode, body: dict[str, Any], field: str) -> None:
    status, answer = tree.api("POST", "/users", tree.root, body)
    assert status == 400 and field in answer["error"], answer
    assert tree.last_entry()["outcome"] == "refused"
    assert tree.api("GET", f"/users/{BOB}", tree.root)[0] == 404


def test_an_org_admin_cannot_create_or_read_accounts_outside_its_sub_tree(
        tree: AdminNode) -> None:
    alice = tree.tokens["alice"]
    tree.refused(tree.api("POST", "/users", alice, {"localpart": "bob",
                                                      "organisation": "mea"}),
             403, "M_FORBIDDEN")
    tree.refused(tree.api("POST", "/users", alice, {"localpart": "bob"}), 403, "M_FORBIDDEN")
    tree.ok("POST", "/users", {"localpart": "carol", "organisation": "mea"}, status=201)
    tree.refused(tree.api("GET", "/users/@carol:admin.test", alice), 403, "M_FORBIDDEN")


def test_patch_changes_the_details_and_keeps_the_rest(tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                               "designation": "Clerk", "phone": "+91 1"}, status=201)
    answer = tree.ok("PATCH", f"/users/{BOB}", {"designation": "Section Officer",
                                                "phone": None})
    assert (answer["designation"], answer["phone"], answer["organisation"]) == (
        "Section Officer", None, "mha")


def test_moving_a_user_to_another_organisation_ends_their_verification(
        tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                               "class": "verified"}, status=201)
    answer = tree.ok("PATCH", f"/users/{BOB}", {"organisation": "mea"})
    assert (answer["class"], answer["organisation"]) == ("public", "mea")
    assert tree.node.admin.classes.class_of(BOB) == "public"


def test_an_org_admin_cannot_move_a_user_out_of_its_sub_tree(tree: AdminNode) -> None:
    tree.api("POST", "/users", tree.tokens["alice"], {"localpart": "bob",
                                                      "organisation": "mha"})
    tree.refused(tree.api("PATCH", f"/users/{BOB}", tree.tokens["alice"],
                            {"organisation": "mea"}), 403, "M_FORBIDDEN")
    assert tree.ok("GET", f"/users/{BOB}")["organisation"] == "mha"


def test_the_listing_covers_the_organisations_sub_tree(tree: AdminNode) -> None:
    for localpart, org in (("bob", "mha"), ("carol", "mha.dm"), ("dave", "mea")):
        tree.ok("POST", "/users", {"localpart": localpart, "organisation": org}, status=201)
    users = tree.ok("GET", "/users?organisation=mha")["users"]
    assert [u["user_id"] for u in users] == [BOB, "@carol:admin.test"]


def test_an_org_admin_lists_only_its_sub_tree(tree: AdminNode) -> None:
    for localpart, org in (("bob", "mha.dm"), ("dave", "mea")):
        tree.ok("POST", "/users", {"localpart": localpart, "organisation": org}, status=201)
    status, answer = tree.api("GET", "/users", tree.tokens["alice"])
    assert status == 200 and [u["user_id"] for u in answer["users"]] == [BOB]


def test_the_listing_filters_by_class_and_text_and_pages(tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                               "class": "verified"}, status=201)
    tree.ok("POST", "/users", {"localpart": "bobby", "organisation": "mha"}, status=201)
    assert [u["user_id"] for u in tree.ok("GET", "/users?class=verified")["users"]] == [BOB]
    assert [u["user_id"] for u in tree.ok("GET", "/users?q=BOBB")["users"]] == [
        "@bobby:admin.test"]
    first = tree.ok("GET", "/users?q=bob&limit=1")
    assert first["next_from"] == BOB
    second = tree.ok("GET", f"/users?q=bob&limit=1&from={BOB}")
    assert [u["user_id"] for u in second["users"]] == ["@bobby:admin.test"]


def test_a_bad_class_filter_is_refused_and_recorded(tree: AdminNode) -> None:
    tree.refused(tree.api("GET", "/users?class=royal", tree.root), 400, "M_INVALID_PARAM")


def test_deactivating_ends_every_session_at_once_and_makes_the_user_public(
        tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                               "class": "verified"}, status=201)
    token, _ = tree.local.run(tree.node.auth.create_session(BOB, None, None, None))
    assert tree.local.call("GET", "/_matrix/client/v3/account/whoami", token)[0] == 200
    answer = tree.ok("POST", f"/users/{BOB}/deactivate", {})
    assert (answer["deactivated"], answer["class"]) == (True, "public")
    assert tree.local.call("GET", "/_matrix/client/v3/account/whoami", token)[0] == 401
    assert tree.node.admin.classes.class_of(BOB) == "public"
    entry = tree.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "users.deactivate", BOB, "ok")


def test_deactivating_twice_is_refused(tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob"}, status=201)
    tree.ok("POST", f"/users/{BOB}/deactivate", {})
    tree.refused(tree.api("POST", f"/users/{BOB}/deactivate", tree.root, {}),
             409, "M_UNKNOWN")


def test_a_node_admin_cannot_be_deactivated(tree: AdminNode) -> None:
    tree.refused(tree.api("POST", f"/users/{tree.root_id}/deactivate", tree.root, {}),
             403, "M_FORBIDDEN")


def test_a_verifier_may_read_but_not_create_accounts(tree: AdminNode) -> None:
    verifier, token = tree.user("vera")
    tree.grant(verifier, ("verifier", "mha"))
    tree.ok("POST", "/users", {"localpart": "bob", "organisation": "mha"}, status=201)
    assert tree.api("GET", f"/users/{BOB}", token)[0] == 200
    tree.refused(tree.api("POST", "/users", token, {"localpart": "x",
                                                      "organisation": "mha"}),
             403, "M_FORBIDDEN")


def test_deactivation_takes_an_empty_body_or_none_and_refuses_unknown_fields(
        tree: AdminNode) -> None:
    tree.ok("POST", "/users", {"localpart": "bob"}, status=201)
    status, answer = tree.api("POST", f"/users/{BOB}/deactivate", tree.root, {"erase": True})
    assert status == 400 and "erase" in answer["error"]
    assert tree.ok("GET", f"/users/{BOB}")["deactivated"] is False
    assert tree.api("POST", f"/users/{BOB}/deactivate", tree.root)[0] == 200
