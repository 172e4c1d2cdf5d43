"""The permission table: the one module that decides admin permissions, and the table printed
in docs/admin/organisations.md, which must be the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker.admin import permissions
from broker.admin.model import ROLES, Grant, Tree
from broker.errors import Forbidden
from storage.organisations import Organisation

DOC = Path(__file__).resolve().parent.parent / "docs" / "admin" / "organisations.md"
TREE = Tree([Organisation("mha", "MHA"), Organisation("mha.dm", "DM", "mha"),
             Organisation("mea", "MEA")])


def _documented_table() -> dict[str, frozenset[str]]:
    text = DOC.read_text()
    section = text[text.index("### Permission table"):]
    header = next(line for line in section.splitlines() if line.startswith("| action"))
    roles = [cell.strip() for cell in header.strip("|").split("|")][1:]
    table: dict[str, frozenset[str]] = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_.]+)` \|(.*)\|$", line)
        if match:
            cells = [cell.strip() for cell in match.group(2).split("|")]
            table[match.group(1)] = frozenset(r for r, c in zip(roles, cells, strict=True)
                                              if c == "yes")
    assert roles == list(ROLES)
    return table


def test_the_documented_table_is_the_table_the_code_decides_with() -> None:
    assert _documented_table() == permissions.PERMISSIONS


def test_a_grant_over_an_organisation_covers_its_sub_tree() -> None:
    grant = Grant("org_admin", "mha")
    assert permissions.covers(grant, "mha", TREE) and permissions.covers(grant, "mha.dm", TREE)
    assert not permissions.covers(grant, "mea", TREE)
    assert not permissions.covers(grant, None, TREE)


def test_a_node_wide_grant_covers_everything() -> None:
    assert permissions.covers(Grant("auditor"), None, TREE)
    assert permissions.covers(Grant("auditor"), "mha.dm", TREE)


@pytest.mark.parametrize("action", sorted(permissions.PERMISSIONS))
def test_no_role_is_no_permission(action: str) -> None:
    with pytest.raises(Forbidden):
        permissions.require([], action, "mha", TREE)


def test_a_verifier_may_read_but_not_change_its_organisation() -> None:
    grants = [Grant("verifier", "mha")]
    permissions.require(grants, permissions.ORG_READ, "mha.dm", TREE)
    with pytest.raises(Forbidden):
        permissions.require(grants, permissions.ORG_UPDATE, "mha", TREE)


@pytest.mark.parametrize("change", [Grant("node_admin"), Grant("auditor"),
                                    Grant("org_admin", "mea")])
def test_an_org_admin_cannot_grant_beyond_its_sub_tree(change: Grant) -> None:
    with pytest.raises(Forbidden):
        permissions.require_grant_authority([Grant("org_admin", "mha")], change, TREE)


def test_an_org_admin_may_grant_every_role_but_node_admin_inside_its_sub_tree() -> None:
    for role in set(ROLES) - {"node_admin"}:
        permissions.require_grant_authority([Grant("org_admin", "mha")],
                                            Grant(role, "mha.dm"), TREE)


def test_visible_roots_are_the_outermost_scopes() -> None:
    assert permissions.visible_roots([Grant("verifier", "mha.dm"), Grant("org_admin", "mha")],
                                     TREE) == ["mha"]
    assert permissions.visible_roots([Grant("auditor")], TREE) is None
