"""The government profile fields (``in.gov.broker.class``, ``.organisation``,
``.designation``), on both engines: served with the profile (here to its owner, who sees all
of it: what others see is tests/test_profile_visibility.py), following the account at once,
and never set by the user."""

from __future__ import annotations

import pytest

from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]

PROFILE = "/_matrix/client/v3/profile"
BOB = "@bob:admin.test"


@pytest.fixture
def bob(admin: AdminNode) -> AdminNode:
    """mha; ``bob`` a verified Under Secretary of mha, with a session."""
    admin.org("mha")
    admin.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                                "designation": "Under Secretary", "class": "verified"},
             status=201)
    token, _ = admin.local.run(admin.node.auth.create_session(BOB, None, None, None))
    admin.tokens["bob"] = token
    return admin


def test_the_profile_carries_class_organisation_and_designation(bob: AdminNode) -> None:
    status, profile = bob.local.call("GET", f"{PROFILE}/{BOB}", bob.tokens["bob"])
    assert status == 200
    assert {k: v for k, v in profile.items() if k.startswith("in.gov.broker.")} == {
        "in.gov.broker.class": "verified", "in.gov.broker.organisation": "mha",
        "in.gov.broker.designation": "Under Secretary"}


def test_each_field_is_read_on_its_own(bob: AdminNode) -> None:
    for key, value in (("in.gov.broker.class", "verified"),
                       ("in.gov.broker.organisation", "mha"),
                       ("in.gov.broker.designation", "Under Secretary")):
        assert bob.local.call("GET", f"{PROFILE}/{BOB}/{key}", bob.tokens["bob"]) == (
            200, {key: value})


def test_a_user_without_an_organisation_is_public_with_no_organisation(
        admin: AdminNode) -> None:
    status, profile = admin.local.call("GET", f"{PROFILE}/{admin.root_id}", None)
    assert profile["in.gov.broker.class"] == "public"
    assert "in.gov.broker.organisation" not in profile
    status, answer = admin.local.call(
        "GET", f"{PROFILE}/{admin.root_id}/in.gov.broker.organisation", None)
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")


def test_the_class_field_turns_public_the_moment_verification_is_revoked(
        bob: AdminNode) -> None:
    bob.ok("DELETE", f"/users/{BOB}/verification")
    assert bob.local.call("GET", f"{PROFILE}/{BOB}/in.gov.broker.class", None) == (
        200, {"in.gov.broker.class": "public"})


@pytest.mark.parametrize("key", ["in.gov.broker.class", "in.gov.broker.organisation",
                                 "in.gov.broker.designation"])
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_users_cannot_set_the_government_fields_themselves(bob: AdminNode, key: str,
                                                           method: str) -> None:
    body = {key: "verified"} if method == "PUT" else None
    status, answer = bob.local.call(method, f"{PROFILE}/{BOB}/{key}", bob.tokens["bob"], body)
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")
    profile = bob.local.call("GET", f"{PROFILE}/{BOB}", bob.tokens["bob"])[1]
    assert (profile["in.gov.broker.class"], profile["in.gov.broker.organisation"],
            profile["in.gov.broker.designation"]) == ("verified", "mha", "Under Secretary")


def test_a_deactivated_account_shows_only_that_it_is_public(bob: AdminNode) -> None:
    bob.ok("POST", f"/users/{BOB}/deactivate", {})
    profile = bob.local.call("GET", f"{PROFILE}/{BOB}", None)[1]
    assert {k: v for k, v in profile.items() if k.startswith("in.gov.broker.")} == {
        "in.gov.broker.class": "public"}
