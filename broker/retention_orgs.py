"""Organisation defaults for retention: an organisation's ``settings.retention.max_lifetime``
(checked by :func:`broker.admin.model.check_retention`) is the default lifetime of the rooms
its members create.

A room that states no ``m.room.retention`` of its own takes the default of the organisation its
creator (the sender of ``m.room.create``) is verified in now, else of the nearest organisation
above it that sets one, else the node's ``default_policy``; whatever the source, the node's
bounds clamp it (:class:`broker.retention.Retention`).  The tree with its settings and who is
verified where are held in memory (:class:`broker.admin.profile_visibility.ProfileVisibility`
and :class:`broker.admin.classes.UserClasses`), so the read paths ask no database; each
organisation's resolved default is kept until the tree changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from broker.admin.model import RETENTION, Tree, check_retention
from broker.errors import DomainError
from storage.organisations import Organisation

logger = logging.getLogger(__name__)

# (the organisation whose setting applies, its max_lifetime in ms)
OrgDefault = tuple[str, int]


def setting_of(org: Organisation) -> int | None:
    """The lifetime ``org`` itself states; one stored before the check existed and not
    readable is ignored (logged)."""
    value = org.settings.get(RETENTION)
    if value is None:
        return None
    try:
        return check_retention(value, RETENTION)
    except DomainError as e:
        logger.warning("organisation %s: ignoring its %s: %s", org.org_id, RETENTION, e.message)
        return None


class OrganisationDefaults:
    """``tree()``: the organisations as memory holds them now; ``organisation_of(user)``: the
    organisation a user is verified in now (None: none)."""

    def __init__(self, tree: Callable[[], Tree],
                 organisation_of: Callable[[str], str | None]) -> None:
        self.tree = tree
        self.organisation_of = organisation_of
        self._resolved: dict[str, OrgDefault | None] = {}
        self._for_tree: Tree | None = None

    def of_user(self, user_id: str) -> OrgDefault | None:
        """The default that applies to rooms ``user_id`` creates (None: the node's)."""
        org_id = self.organisation_of(user_id)
        return self.of_organisation(org_id) if org_id is not None else None

    def of_organisation(self, org_id: str) -> OrgDefault | None:
        tree = self.tree()
        if tree is not self._for_tree:
            self._resolved, self._for_tree = {}, tree
        if org_id not in self._resolved:
            self._resolved[org_id] = next(
                ((o, lifetime) for o in tree.ancestors(org_id)
                 if (org := tree.get(o)) is not None
                 and (lifetime := setting_of(org)) is not None), None)
        return self._resolved[org_id]

    def stated(self) -> dict[str, int]:
        """Each organisation that states a default itself: its lifetime (ms)."""
        return {org_id: lifetime for org_id, org in sorted(self.tree().orgs.items())
                if (lifetime := setting_of(org)) is not None}
