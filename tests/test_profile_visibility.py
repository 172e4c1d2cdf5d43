"""Profile visibility at organisation level, through the client and admin APIs on both engines:
each audience (same organisation, other verified users of this node, the public) sees the
fields the owner's organisation (or the one above it, or the node's default) lets it see; the
setting is checked and recorded like every organisation change."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest

from broker.admin import permissions
from storage.organisations import Organisation
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

PROFILE = "/_matrix/client/v3/profile"
FULL = {"displayname": "Bob Rao", "in.gov.broker.class": "verified",
        "in.gov.broker.organisation": "mha.dm", "in.gov.broker.designation": "Under Secretary",
        "in.gov.broker.email": "bob@mha.gov.in", "in.gov.broker.phone": "+91 11 2309 2011"}


class Staff:
    """mha (with mha.dm) and mea; ``bob`` a verified Under Secretary of mha.dm with every
    field, ``vera`` verified for mha (the same organisation), ``mira`` for mea (another one),
    ``pat`` public."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha")
        node.org("mha.dm", "mha")
        node.org("mea")
        self.ids = {name: node.user(name)[0] for name in ("bob", "vera", "mira", "pat")}
        node.ok("PATCH", f"/users/{self.ids['bob']}", {
            "organisation": "mha.dm", "designation": "Under Secretary",
            "email": "bob@mha.gov.in", "phone": "+91 11 2309 2011"})
        for name, org in (("bob", "mha.dm"), ("vera", "mha"), ("mira", "mea")):
            node.ok("POST", f"/users/{self.ids[name]}/verification",
                    {"organisation": org, "basis": "document"})
        assert node.client("bob", "PUT", f"/profile/{quote(self.ids['bob'])}/displayname",
                           {"displayname": "Bob Rao"})[0] == 200

    def read(self, viewer: str | None, field: str = "") -> tuple[int, Any]:
        token = self.node.tokens[viewer] if viewer else None
        path = f"{PROFILE}/{quote(self.ids['bob'])}" + (f"/{field}" if field else "")
        return self.node.local.call("GET", path, token)

    def profile(self, viewer: str | None) -> dict[str, Any]:
        status, answer = self.read(viewer)
        assert status == 200, answer
        return dict(answer)

    def set_visibility(self, org: str, visibility: dict[str, list[str]]) -> None:
        self.node.ok("PATCH", f"/organisations/{org}",
                     {"settings": {"profile_visibility": visibility}})


@pytest.fixture
def staff(admin: AdminNode) -> Staff:
    return Staff(admin)


def test_a_public_user_sees_only_the_name_and_the_class_by_default(staff: Staff) -> None:
    assert staff.profile("pat") == {"displayname": "Bob Rao",
                                    "in.gov.broker.class": "verified"}


def test_a_reader_without_a_token_sees_what_the_public_sees(staff: Staff) -> None:
    assert staff.profile(None) == staff.profile("pat")


def test_the_same_organisation_sees_every_field(staff: Staff) -> None:
    assert staff.profile("vera") == FULL


def test_a_verified_user_of_another_organisation_sees_all_but_the_phone(staff: Staff) -> None:
    assert staff.profile("mira") == {k: v for k, v in FULL.items()
                                     if k != "in.gov.broker.phone"}


def test_the_owner_sees_their_whole_profile(staff: Staff) -> None:
    assert staff.profile("bob") == FULL


def test_a_hidden_field_read_on_its_own_is_not_found(staff: Staff) -> None:
    status, answer = staff.read("pat", "in.gov.broker.designation")
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")
    assert staff.read("vera", "in.gov.broker.designation") == (
        200, {"in.gov.broker.designation": "Under Secretary"})


def test_an_organisation_can_hide_the_display_name_from_the_public(staff: Staff) -> None:
    staff.set_visibility("mha", {"public": []})
    assert staff.profile("pat") == {"in.gov.broker.class": "verified"}
    assert staff.read("pat", "displayname") == (200, {})
    assert staff.profile("vera") == FULL  # the audiences it leaves out keep the default


def test_an_organisation_can_show_more_to_the_public(staff: Staff) -> None:
    staff.set_visibility("mha.dm", {"public": ["displayname", "designation"]})
    assert staff.profile("pat") == {"displayname": "Bob Rao",
                                    "in.gov.broker.class": "verified",
                                    "in.gov.broker.designation": "Under Secretary"}


def test_a_sub_organisation_takes_its_parents_setting_unless_it_has_its_own(
        staff: Staff) -> None:
    staff.set_visibility("mha", {"verified_this_node": ["displayname"]})
    assert staff.profile("mira") == {"displayname": "Bob Rao",
                                     "in.gov.broker.class": "verified"}
    staff.set_visibility("mha.dm", {"verified_this_node": ["displayname", "email"]})
    assert staff.profile("mira") == {"displayname": "Bob Rao",
                                     "in.gov.broker.class": "verified",
                                     "in.gov.broker.email": "bob@mha.gov.in"}


def test_the_setting_is_shown_with_the_organisation_and_kept_beside_others(
        staff: Staff) -> None:
    staff.node.ok("PATCH", "/organisations/mha", {"settings": {
        "email_verification": "auto", "profile_visibility": {"public": ["displayname"]}}})
    assert staff.node.ok("GET", "/organisations/mha")["settings"] == {
        "email_verification": "auto", "profile_visibility": {"public": ["displayname"]}}


@pytest.mark.parametrize(("visibility", "field"), [
    ({"everyone": ["displayname"]}, "settings.profile_visibility.everyone"),
    ({"public": ["shoe_size"]}, "settings.profile_visibility.public[0]"),
    ({"public": ["displayname", "displayname"]}, "settings.profile_visibility.public[1]"),
])
def test_a_setting_naming_an_unknown_audience_or_field_is_refused_and_recorded(
        staff: Staff, visibility: dict[str, list[str]], field: str) -> None:
    answer = staff.node.api("PATCH", "/organisations/mha", staff.node.root,
                            {"settings": {"profile_visibility": visibility}})
    staff.node.refused(answer, 400, "M_INVALID_PARAM")
    assert f"'{field}'" in answer[1]["error"]
    assert staff.profile("pat") == {"displayname": "Bob Rao",
                                    "in.gov.broker.class": "verified"}


@pytest.mark.parametrize("visibility", [["displayname"], {"public": "displayname"}])
def test_a_setting_of_the_wrong_shape_is_refused(staff: Staff, visibility: Any) -> None:
    answer = staff.node.api("PATCH", "/organisations/mha", staff.node.root,
                            {"settings": {"profile_visibility": visibility}})
    staff.node.refused(answer, 400, "M_BAD_JSON")


def test_a_setting_changed_by_another_process_is_taken_in_from_the_audit_log(
        staff: Staff) -> None:
    node = staff.node
    org = next(o for o in result_of(node.stores.organisations.all()) if o.org_id == "mha")
    changed = Organisation(org.org_id, org.name, org.parent, org.names, org.email_domains,
                           {"profile_visibility": {"public": []}}, org.created_ts,
                           org.updated_ts)
    draft = replace(node.last_entry_draft(), action=permissions.ORG_UPDATE, target="mha")
    result_of(node.stores.organisations.update(changed, draft))
    assert staff.profile("pat")["displayname"] == "Bob Rao"  # not taken in yet
    node.local.run(node.node.admin.changes.poll())
    assert staff.profile("pat") == {"in.gov.broker.class": "verified"}


def test_a_user_without_an_organisation_shows_everything_they_have(staff: Staff) -> None:
    pat = staff.ids["pat"]
    assert staff.node.client("pat", "PUT", f"/profile/{quote(pat)}/displayname",
                             {"displayname": "Pat"})[0] == 200
    staff.set_visibility("mha", {"public": []})
    assert staff.node.client("bob", "GET", f"/profile/{quote(pat)}") == (
        200, {"displayname": "Pat", "in.gov.broker.class": "public"})
