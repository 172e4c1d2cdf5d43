"""The organisations admin API, on both engines: the tree, one organisation at a time, and
every bad input refused with a clear error, recorded in the audit log, nothing half-written."""

from __future__ import annotations

from storage.organisations import Member
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]


def test_creating_an_organisation_answers_201_with_it(admin: AdminNode) -> None:
    status, body = admin.api("POST", "/organisations", admin.root, {
        "id": "mha", "name": "Ministry of Home Affairs", "names": {"hi": "गृह मंत्रालय"},
        "email_domains": ["mha.gov.in"]})
    assert status == 201, body
    assert body == {"id": "mha", "name": "Ministry of Home Affairs",
                    "names": {"hi": "गृह मंत्रालय"}, "parent": None,
                    "email_domains": ["mha.gov.in"], "settings": {}}


def test_the_tree_nests_sub_organisations_at_any_depth(admin: AdminNode) -> None:
    admin.org("mha")
    admin.org("mha.dm", "mha")
    admin.org("mha.dm.ndrf", "mha.dm")
    admin.org("mea")
    tree = admin.ok("GET", "/organisations")["organisations"]
    assert [o["id"] for o in tree] == ["mea", "mha"]
    assert tree[1]["children"][0]["id"] == "mha.dm"
    assert tree[1]["children"][0]["children"][0]["id"] == "mha.dm.ndrf"


def test_one_organisation_lists_its_children(admin: AdminNode) -> None:
    admin.org("mha")
    admin.org("mha.dm", "mha")
    body = admin.ok("GET", "/organisations/mha")
    assert body["id"] == "mha" and body["children"] == ["mha.dm"]


def test_patch_changes_only_the_fields_given(admin: AdminNode) -> None:
    admin.org("mha", email_domains=["mha.gov.in"])
    body = admin.ok("PATCH", "/organisations/mha", {"name": "Home Affairs"})
    assert body["name"] == "Home Affairs" and body["email_domains"] == ["mha.gov.in"]
    assert admin.ok("GET", "/organisations/mha")["name"] == "Home Affairs"


def test_patch_moves_an_organisation_keeping_its_id(admin: AdminNode) -> None:
    admin.org("mha")
    admin.org("mea")
    admin.org("dm", "mha")
    assert admin.ok("PATCH", "/organisations/dm", {"parent": "mea"})["parent"] == "mea"
    assert admin.ok("GET", "/organisations/mea")["children"] == ["dm"]


def test_an_empty_organisation_can_be_deleted(admin: AdminNode) -> None:
    admin.org("mha")
    assert admin.ok("DELETE", "/organisations/mha") == {}
    status, body = admin.api("GET", "/organisations/mha", admin.root)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_every_change_is_recorded_with_who_what_and_from_where(admin: AdminNode) -> None:
    admin.org("mha")
    entry = admin.last_entry()
    assert entry["actor"] == admin.root_id
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "organisations.create", "mha", "ok")
    assert entry["client_ip"] and entry["ts"] == admin.node.clock.time_ms()


# -- bad input ---------------------------------------------------------------------------------
def _refused(admin: AdminNode, answer: tuple[int, dict[str, object]], status: int,
             errcode: str, before: list[str]) -> None:
    """Refused with ``status``/``errcode``, recorded as refused, no organisation changed."""
    got, body = answer
    assert (got, body.get("errcode")) == (status, errcode), body
    entry = admin.last_entry()
    assert entry["outcome"] == "refused" and entry["detail"]["errcode"] == errcode
    assert entry["detail"]["error"] == body["error"]
    assert admin.organisation_ids() == before


def test_a_duplicate_id_is_refused(admin: AdminNode) -> None:
    admin.org("mha")
    _refused(admin, admin.api("POST", "/organisations", admin.root, {"id": "mha", "name": "x"}),
             409, "M_UNKNOWN", ["mha"])


def test_an_unknown_parent_is_refused(admin: AdminNode) -> None:
    _refused(admin, admin.api("POST", "/organisations", admin.root,
                              {"id": "dm", "name": "DM", "parent": "nowhere"}),
             400, "M_INVALID_PARAM", [])


def test_a_move_into_its_own_sub_tree_is_refused_as_a_cycle(admin: AdminNode) -> None:
    admin.org("mha")
    admin.org("mha.dm", "mha")
    answer = admin.api("PATCH", "/organisations/mha", admin.root, {"parent": "mha.dm"})
    _refused(admin, answer, 400, "M_INVALID_PARAM", ["mha", "mha.dm"])
    assert "cycle" in answer[1]["error"]
    assert admin.ok("GET", "/organisations/mha")["parent"] is None


def test_an_organisation_cannot_be_its_own_parent(admin: AdminNode) -> None:
    admin.org("mha")
    _refused(admin, admin.api("PATCH", "/organisations/mha", admin.root, {"parent": "mha"}),
             400, "M_INVALID_PARAM", ["mha"])


def test_an_invalid_id_is_refused(admin: AdminNode) -> None:
    answer = admin.api("POST", "/organisations", admin.root, {"id": "MHA/x", "name": "x"})
    _refused(admin, answer, 400, "M_INVALID_PARAM", [])
    assert "'id'" in answer[1]["error"]


def test_an_unknown_field_is_refused_naming_it(admin: AdminNode) -> None:
    answer = admin.api("POST", "/organisations", admin.root,
                       {"id": "mha", "name": "x", "colour": "red"})
    _refused(admin, answer, 400, "M_BAD_JSON", [])
    assert "'colour'" in answer[1]["error"]


def test_a_missing_name_is_refused(admin: AdminNode) -> None:
    _refused(admin, admin.api("POST", "/organisations", admin.root, {"id": "mha"}),
             400, "M_MISSING_PARAM", [])


def test_a_body_that_is_not_json_is_refused_and_recorded(admin: AdminNode) -> None:
    _refused(admin, admin.api("POST", "/organisations", admin.root, raw=b"{not json"),
             400, "M_NOT_JSON", [])


def test_an_email_domain_of_another_organisation_is_refused(admin: AdminNode) -> None:
    admin.org("mha", email_domains=["mha.gov.in"])
    answer = admin.api("POST", "/organisations", admin.root,
                       {"id": "mea", "name": "x", "email_domains": ["mha.gov.in"]})
    _refused(admin, answer, 409, "M_UNKNOWN", ["mha"])
    assert "'email_domains[0]'" in answer[1]["error"]


def test_deleting_an_organisation_with_sub_organisations_is_refused(admin: AdminNode) -> None:
    admin.org("mha")
    admin.org("mha.dm", "mha")
    _refused(admin, admin.api("DELETE", "/organisations/mha", admin.root), 409, "M_UNKNOWN",
             ["mha", "mha.dm"])


def test_deleting_an_organisation_with_members_is_refused(admin: AdminNode) -> None:
    admin.org("mha")
    officer, _ = admin.user("officer")
    result_of(admin.stores.organisations.set_member(
        Member(officer, "mha", "Under Secretary", "E123"), 0, admin.last_entry_draft()))
    answer = admin.api("DELETE", "/organisations/mha", admin.root)
    _refused(admin, answer, 409, "M_UNKNOWN", ["mha"])
    assert "1 member" in answer[1]["error"]


def test_deleting_an_organisation_with_role_grants_is_refused(admin: AdminNode) -> None:
    admin.org("mha")
    officer, _ = admin.user("officer")
    admin.grant(officer, ("verifier", "mha"))
    _refused(admin, admin.api("DELETE", "/organisations/mha", admin.root), 409, "M_UNKNOWN",
             ["mha"])


def test_deleting_an_unknown_organisation_is_not_found(admin: AdminNode) -> None:
    _refused(admin, admin.api("DELETE", "/organisations/nowhere", admin.root), 404,
             "M_NOT_FOUND", [])
