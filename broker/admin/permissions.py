"""The one place that decides every admin permission.

:data:`PERMISSIONS` is the table (action x role -> allowed); a grant allows an action on an
organisation when its role is allowed the action and its scope covers the organisation (a
grant over an organisation covers its whole sub-tree; a node-wide grant covers everything,
and only it covers what belongs to no organisation: top-level organisations, the node's own
settings, the whole audit log).  Every admin call asks :func:`require` before it acts; role
changes also ask :func:`require_grant_authority` for each grant added or removed, which holds
the no-escalation rule: nobody grants or revokes wider than their own grants.  The table is
printed in docs/admin/organisations.md (``tests/test_admin_permissions.py`` checks the two
agree).
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.admin.model import ROLES, BadField, Grant, Tree
from broker.errors import Forbidden

ORG_READ = "organisations.read"
ORG_CREATE = "organisations.create"
ORG_UPDATE = "organisations.update"
ORG_DELETE = "organisations.delete"
ROLES_READ = "roles.read"
ROLES_CHANGE = "roles.change"
AUDIT_READ = "audit.read"
USERS_READ = "users.read"
USERS_CREATE = "users.create"
USERS_UPDATE = "users.update"
USERS_DEACTIVATE = "users.deactivate"
USERS_RENEW = "users.renew"
VERIFY = "users.verify"
ROOMS_READ = "rooms.read"
ROOMS_SHUTDOWN = "rooms.shutdown"
REPORTS_READ = "reports.read"
REPORTS_CONTENT = "reports.content"
REPORTS_RESOLVE = "reports.resolve"
POLICY_READ = "policy.read"
IMAGE_PACKS_READ = "image_packs.read"
IMAGE_PACKS_CHANGE = "image_packs.change"
STATISTICS_READ = "statistics.read"
APPS_READ = "apps.read"
APPS_CHANGE = "apps.change"
BROADCASTS_SEND = "broadcasts.send"
BROADCASTS_READ = "broadcasts.read"

ADMINS = frozenset({"node_admin", "org_admin"})
PERMISSIONS: dict[str, frozenset[str]] = {
    ORG_READ: frozenset(ROLES),
    ORG_CREATE: ADMINS,
    ORG_UPDATE: ADMINS,
    ORG_DELETE: ADMINS,
    ROLES_READ: ADMINS | {"auditor"},
    ROLES_CHANGE: ADMINS,
    AUDIT_READ: frozenset({"node_admin", "auditor"}),
    USERS_READ: ADMINS | {"verifier", "auditor"},
    USERS_CREATE: ADMINS,
    USERS_UPDATE: ADMINS,
    USERS_DEACTIVATE: ADMINS,
    USERS_RENEW: ADMINS,
    VERIFY: ADMINS | {"verifier"},
    # A room belongs to its creator's organisation (none: only node-wide grants cover it).
    ROOMS_READ: ADMINS | {"auditor"},
    ROOMS_SHUTDOWN: frozenset({"node_admin"}),
    # Reports concern the whole node: only node-wide grants cover them.
    REPORTS_READ: frozenset({"node_admin", "auditor"}),
    REPORTS_CONTENT: frozenset({"node_admin"}),
    REPORTS_RESOLVE: frozenset({"node_admin"}),
    # The node's effective separation policy (GET /policy) concerns the whole node.
    POLICY_READ: frozenset({"node_admin"}),
    # An organisation's image packs (emoji and stickers its members get).
    IMAGE_PACKS_READ: ADMINS | {"auditor"},
    IMAGE_PACKS_CHANGE: ADMINS,
    # Usage counts per organisation and day; the node's own row needs a node-wide grant.
    STATISTICS_READ: ADMINS | {"auditor"},
    # An organisation's eGov applications (registration, token rotation, revocation).
    APPS_READ: ADMINS | {"app_manager", "auditor"},
    APPS_CHANGE: ADMINS | {"app_manager"},
    # Broadcasts from the portal to an organisation's members, and their statistics.
    BROADCASTS_SEND: ADMINS | {"broadcaster"},
    BROADCASTS_READ: ADMINS | {"broadcaster", "auditor"},
}

# Which roles a grantor of each role may grant or revoke (within the grantor's scope).
GRANTABLE_BY: dict[str, frozenset[str]] = {
    "node_admin": frozenset(ROLES),
    "org_admin": frozenset(ROLES) - {"node_admin"},
}
NODE_ONLY = frozenset({"node_admin"})  # granted over the whole node only
ORGANISATION_ONLY = frozenset({"org_admin"})  # granted over an organisation only


def covers(grant: Grant, organisation: str | None, tree: Tree) -> bool:
    """Whether ``grant``'s scope covers ``organisation`` (None: the node itself)."""
    if grant.organisation is None:
        return True
    return organisation is not None and tree.covers(grant.organisation, organisation)


def allows(grants: Iterable[Grant], action: str, organisation: str | None, tree: Tree) -> bool:
    allowed = PERMISSIONS[action]
    return any(g.role in allowed and covers(g, organisation, tree) for g in grants)


def require(grants: Iterable[Grant], action: str, organisation: str | None, tree: Tree) -> None:
    """Go on, or :class:`Forbidden` saying what is missing."""
    grants = list(grants)
    if not grants:
        raise Forbidden("You hold no admin role on this node")
    if not allows(grants, action, organisation, tree):
        where = f"organisation {organisation!r}" if organisation else "the whole node"
        raise Forbidden(f"No role of yours allows {action} on {where}")


def require_some(grants: Iterable[Grant], action: str) -> list[Grant]:
    """The grants whose role allows ``action`` somewhere; :class:`Forbidden` if none does."""
    grants = list(grants)
    if not grants:
        raise Forbidden("You hold no admin role on this node")
    found = [g for g in grants if g.role in PERMISSIONS[action]]
    if not found:
        raise Forbidden(f"No role of yours allows {action}")
    return found


def check_grant_shape(grant: Grant, tree: Tree, field: str = "roles") -> None:
    """Refuse a grant that cannot exist: an unknown role or organisation, a node-only role
    over an organisation or an organisation-only role over the node."""
    if grant.role not in ROLES:
        raise BadField(f"{field}.role", f"unknown role {grant.role!r} (expected one of:"
                       f" {', '.join(ROLES)})", errcode="M_INVALID_PARAM")
    if grant.organisation is not None and grant.organisation not in tree:
        raise BadField(f"{field}.organisation", f"unknown organisation {grant.organisation!r}",
                       errcode="M_INVALID_PARAM")
    if grant.role in NODE_ONLY and grant.organisation is not None:
        raise BadField(f"{field}.organisation", f"{grant.role} is granted over the whole node"
                       " only", errcode="M_INVALID_PARAM")
    if grant.role in ORGANISATION_ONLY and grant.organisation is None:
        raise BadField(f"{field}.organisation", f"{grant.role} needs an organisation",
                       errcode="M_INVALID_PARAM")


def require_grant_authority(grants: Iterable[Grant], change: Grant, tree: Tree) -> None:
    """The actor may grant or revoke ``change``: one of their grants may grant its role and
    covers its scope.  Otherwise :class:`Forbidden` (an escalation attempt)."""
    for grant in grants:
        if change.role in GRANTABLE_BY.get(grant.role, ()) and \
                covers(grant, change.organisation, tree):
            return
    where = f"organisation {change.organisation!r}" if change.organisation else "the whole node"
    raise Forbidden(f"You may not grant or revoke {change.role} over {where}: no role of yours"
                    " is that wide")


def visible_roots(grants: Iterable[Grant], tree: Tree) -> list[str] | None:
    """The organisations whose sub-trees the grants cover, outermost only; None when a grant
    covers the whole node.  (What the caller sees of the tree and of the audit log.)"""
    scopes = {g.organisation for g in grants}
    if None in scopes:
        return None
    named = {s for s in scopes if s is not None and s in tree}
    return sorted(s for s in named
                  if not any(a in named for a in list(tree.ancestors(s))[1:]))
