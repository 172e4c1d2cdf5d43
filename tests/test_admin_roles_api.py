"""Roles through the admin API, on both engines: grants scoped to a sub-tree or the node, one
permission decision for every call, and no escalation."""

from __future__ import annotations

from typing import Any

import pytest

from broker.http.endpoint import Access, Call, Endpoints, endpoint
from storage.roles import NODE
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]


@pytest.fixture
def tree(admin: AdminNode) -> AdminNode:
    """mha (with mha.dm) and mea; ``alice`` is org admin of mha."""
    admin.ministries("alice", "org_admin")
    return admin


def _forbidden(admin: AdminNode, answer: tuple[int, Any]) -> None:
    status, body = answer
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    entry = admin.last_entry()
    assert entry["outcome"] == "refused" and entry["detail"]["error"] == body["error"]


def test_put_replaces_a_users_roles_and_get_reads_them(admin: AdminNode) -> None:
    admin.org("mha")
    bob, _ = admin.user("bob")
    answer = admin.ok("PUT", f"/users/{bob}/roles", {"roles": [
        {"role": "verifier", "organisation": "mha"}, {"role": "auditor"}]})
    assert answer == {"user_id": bob, "roles": [{"role": "auditor"},
                                                {"role": "verifier", "organisation": "mha"}]}
    assert admin.ok("GET", f"/users/{bob}/roles") == answer
    admin.ok("PUT", f"/users/{bob}/roles", {"roles": [{"role": "auditor"}]})
    assert admin.ok("GET", f"/users/{bob}/roles")["roles"] == [{"role": "auditor"}]


def test_the_change_is_recorded_with_what_was_added_and_removed(admin: AdminNode) -> None:
    bob, _ = admin.user("bob")
    admin.grant(bob, ("auditor", None))
    entry = admin.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"]) == ("roles.change", bob, "ok")
    assert entry["detail"]["added"] == [{"role": "auditor"}]


def test_existing_node_admins_hold_node_admin(admin: AdminNode) -> None:
    assert admin.ok("GET", f"/users/{admin.root_id}/roles")["roles"] == [{"role": "node_admin"}]


def test_granting_node_admin_sets_the_node_admin_flag_at_once(admin: AdminNode) -> None:
    bob, bob_token = admin.user("bob")
    assert admin.local.run(admin.node.auth.requester_for_token(bob_token)).is_admin is False
    admin.grant(bob, ("node_admin", None))
    assert (result_of(admin.stores.users.get_user(bob)) or {}).get("is_admin")
    assert admin.local.run(admin.node.auth.requester_for_token(bob_token)).is_admin is True
    admin.grant(bob)
    assert admin.local.run(admin.node.auth.requester_for_token(bob_token)).is_admin is False


def test_a_user_without_a_role_is_refused_everywhere(admin: AdminNode) -> None:
    admin.org("mha")
    _, token = admin.user("nobody")
    for method, path, body in (
            ("GET", "/organisations", None), ("GET", "/organisations/mha", None),
            ("POST", "/organisations", {"id": "x", "name": "x"}),
            ("PATCH", "/organisations/mha", {"name": "y"}),
            ("DELETE", "/organisations/mha", None),
            ("GET", f"/users/{admin.root_id}/roles", None),
            ("PUT", f"/users/{admin.root_id}/roles", {"roles": []}),
            ("GET", "/audit", None)):
        _forbidden(admin, admin.api(method, path, token, body))
    assert admin.organisation_ids() == ["mha"]


def test_an_org_admin_manages_its_sub_tree(tree: AdminNode) -> None:
    token = tree.tokens["alice"]
    assert tree.api("POST", "/organisations", token,
                    {"id": "mha.fire", "name": "Fire", "parent": "mha"})[0] == 201
    assert tree.api("PATCH", "/organisations/mha.dm", token, {"name": "DM"})[0] == 200
    assert tree.api("DELETE", "/organisations/mha.fire", token)[0] == 200


def test_an_org_admin_cannot_touch_another_organisation(tree: AdminNode) -> None:
    token = tree.tokens["alice"]
    _forbidden(tree, tree.api("PATCH", "/organisations/mea", token, {"name": "x"}))
    _forbidden(tree, tree.api("DELETE", "/organisations/mea", token))
    _forbidden(tree, tree.api("POST", "/organisations", token,
                              {"id": "mea.x", "name": "x", "parent": "mea"}))
    _forbidden(tree, tree.api("GET", "/organisations/mea", token))
    assert tree.ok("GET", "/organisations/mea")["name"] == "MEA"


def test_an_org_admin_cannot_act_on_the_node(tree: AdminNode) -> None:
    token = tree.tokens["alice"]
    _forbidden(tree, tree.api("POST", "/organisations", token, {"id": "new", "name": "x"}))
    _forbidden(tree, tree.api("PATCH", "/organisations/mha.dm", token, {"parent": None}))
    _forbidden(tree, tree.api("PATCH", "/organisations/mha.dm", token, {"parent": "mea"}))
    assert tree.ok("GET", "/organisations/mha.dm")["parent"] == "mha"


def test_an_org_admin_sees_only_its_sub_tree(tree: AdminNode) -> None:
    status, body = tree.api("GET", "/organisations", tree.tokens["alice"])
    assert status == 200
    assert [o["id"] for o in body["organisations"]] == ["mha"]


def test_an_org_admin_grants_roles_within_its_sub_tree(tree: AdminNode) -> None:
    bob, _ = tree.user("bob")
    status, body = tree.api("PUT", f"/users/{bob}/roles", tree.tokens["alice"],
                            {"roles": [{"role": "verifier", "organisation": "mha.dm"}]})
    assert status == 200, body


@pytest.mark.parametrize("grant", [
    {"role": "node_admin"},
    {"role": "auditor"},
    {"role": "org_admin", "organisation": "mea"},
    {"role": "verifier", "organisation": "mea"},
])
def test_an_org_admin_cannot_grant_wider_than_its_own(tree: AdminNode,
                                                      grant: dict[str, str]) -> None:
    bob, _ = tree.user("bob")
    _forbidden(tree, tree.api("PUT", f"/users/{bob}/roles", tree.tokens["alice"],
                              {"roles": [grant]}))
    assert result_of(tree.stores.roles.grants_of(bob)) == set()


def test_an_org_admin_cannot_make_itself_node_admin(tree: AdminNode) -> None:
    alice = tree.node.user_id("alice")
    _forbidden(tree, tree.api("PUT", f"/users/{alice}/roles", tree.tokens["alice"],
                              {"roles": [{"role": "org_admin", "organisation": "mha"},
                                         {"role": "node_admin"}]}))
    assert result_of(tree.stores.roles.grants_of(alice)) == {("org_admin", "mha")}


def test_an_org_admin_cannot_remove_a_grant_outside_its_sub_tree(tree: AdminNode) -> None:
    bob, _ = tree.user("bob")
    tree.grant(bob, ("verifier", "mea"), ("verifier", "mha"))
    _forbidden(tree, tree.api("PUT", f"/users/{bob}/roles", tree.tokens["alice"],
                              {"roles": [{"role": "verifier", "organisation": "mha"}]}))
    assert result_of(tree.stores.roles.grants_of(bob)) == {("verifier", "mea"),
                                                            ("verifier", "mha")}


def test_the_last_node_admin_cannot_be_removed(admin: AdminNode) -> None:
    _forbidden(admin, admin.api("PUT", f"/users/{admin.root_id}/roles", admin.root,
                                {"roles": []}))
    assert result_of(admin.stores.roles.grants_of(admin.root_id)) == {("node_admin", NODE)}
    assert (result_of(admin.stores.users.get_user(admin.root_id)) or {}).get("is_admin")


def test_a_node_admin_can_step_down_once_another_exists(admin: AdminNode) -> None:
    bob, _ = admin.user("bob")
    admin.grant(bob, ("node_admin", None))
    admin.grant(admin.root_id)
    assert result_of(admin.stores.roles.grants_of(admin.root_id)) == set()


@pytest.mark.parametrize("roles, errcode, names", [
    ([{"role": "emperor"}], "M_INVALID_PARAM", "roles.role"),
    ([{"role": "verifier", "organisation": "nowhere"}], "M_INVALID_PARAM", "roles.organisation"),
    ([{"role": "node_admin", "organisation": "mha"}], "M_INVALID_PARAM", "roles.organisation"),
    ([{"role": "org_admin"}], "M_INVALID_PARAM", "roles.organisation"),
    ([{"role": "verifier", "scope": "mha"}], "M_BAD_JSON", "roles[0].scope"),
    ("verifier", "M_BAD_JSON", "roles"),
])
def test_a_malformed_grant_is_refused_naming_the_field(admin: AdminNode, roles: Any,
                                                       errcode: str, names: str) -> None:
    admin.org("mha")
    bob, _ = admin.user("bob")
    status, body = admin.api("PUT", f"/users/{bob}/roles", admin.root, {"roles": roles})
    assert (status, body["errcode"]) == (400, errcode), body
    assert f"'{names}'" in body["error"]
    assert admin.last_entry()["outcome"] == "refused"
    assert result_of(admin.stores.roles.grants_of(bob)) == set()


def test_an_unknown_field_in_a_roles_body_is_refused(admin: AdminNode) -> None:
    bob, _ = admin.user("bob")
    status, body = admin.api("PUT", f"/users/{bob}/roles", admin.root,
                             {"roles": [], "reason": "x"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON") and "'reason'" in body["error"]


def test_roles_of_an_unknown_user_are_not_found(admin: AdminNode) -> None:
    status, body = admin.api("PUT", "/users/@ghost:admin.test/roles", admin.root,
                             {"roles": [{"role": "auditor"}]})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


class _AdminOnly(Endpoints):
    @endpoint("GET", "/_broker/test/admin_only", access=Access.ADMIN)
    async def admin_only(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"user_id": call.user.user_id}


def test_a_node_admin_granted_through_the_api_passes_access_admin_routes(
        admin: AdminNode) -> None:
    admin.node.router.add(_AdminOnly())
    admin.node.router.compile()
    bob, token = admin.user("bob")
    assert admin.local.call("GET", "/_broker/test/admin_only", token)[0] == 403
    admin.grant(bob, ("node_admin", None))
    assert admin.local.call("GET", "/_broker/test/admin_only", token) == (200, {"user_id": bob})
    admin.grant(bob)
    assert admin.local.call("GET", "/_broker/test/admin_only", token)[0] == 403
