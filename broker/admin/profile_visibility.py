"""Which profile fields each audience sees of an organisation's members.

An organisation sets ``settings.profile_visibility`` (checked by
:func:`broker.admin.model.check_profile_visibility`): for each audience, the fields it sees.
An audience the organisation leaves out takes what its parent organisation gives it, up to the
top, then :data:`DEFAULT`.  A user without an organisation is nobody's staff: everything they
have (a display name, an avatar) is shown.

The audiences, from who reads (the viewer) and whose profile it is (the owner):

- ``same_organisation``: a verified user of this node whose organisation lies in the same
  top-level organisation as the owner's (a ministry and its departments are one organisation);
- ``verified_this_node``: any other verified user of this node;
- ``verified_other_nodes``: a user of another node whose home node attests them verified
  (:mod:`broker.remote_classes`), reading through a room or through the federation profile
  query their node asks naming them; a user of another server without a current attestation
  is public here;
- ``public``: everyone else (public users, readers without a token, and a server's profile
  query that names no reader, or one of another server than its own).

The owner always sees all of their own profile.  ``in.gov.broker.class`` is not a field an
organisation hides: whether someone is verified is what the separation rules are about.

Membership events (the name and avatar a room's members read) are shared by every member of
the room and every server in it, and stay in the room's state for whoever joins later, so the
node restates there only what every audience the room may hold sees: in an official group
(verified users only, of this node or attested by theirs) what the three verified audiences
all see; in any other room what all four see.  A room's kind never changes, so what was restated never reaches
an audience it was not meant for.  When an organisation's setting changes what its members'
rooms may show, the node restates their memberships (:meth:`ProfileVisibility.on_changed`).

Everything is held in memory (the tree with its settings: loaded at start, updated by each
write on this node, read again when the audit log's feed shows an organisation change made by
another process), so the decisions read no database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer

from broker.access_policy import OFFICIAL, RoomFacts
from broker.admin.classes import UserClasses
from broker.admin.model import (
    AUDIENCES,
    PROFILE_FIELDS,
    PROFILE_VISIBILITY,
    PUBLIC_AUDIENCE,
    SAME_ORGANISATION,
    VERIFIED_OTHER_NODES,
    VERIFIED_THIS_NODE,
    Tree,
    check_profile_visibility,
)
from broker.errors import DomainError
from broker.remote_classes import RemoteClasses
from protocol.signing import server_name_of
from storage.audit import Change
from storage.organisations import Organisation, OrganisationStore

logger = logging.getLogger(__name__)

# The profile key each field is shown under (the government ones in the node's namespace).
PROFILE_KEYS = {"displayname": "displayname", "avatar_url": "avatar_url",
                "designation": "in.gov.broker.designation",
                "organisation": "in.gov.broker.organisation",
                "email": "in.gov.broker.email", "phone": "in.gov.broker.phone"}
HIDDEN_KEYS = frozenset(PROFILE_KEYS.values())
NAME_AND_AVATAR = frozenset({"displayname", "avatar_url"})
OTHER_VERIFIED = frozenset(PROFILE_FIELDS) - {"phone"}

# What an audience sees when neither the owner's organisation nor one above it says.
DEFAULT: dict[str, frozenset[str]] = {
    SAME_ORGANISATION: frozenset(PROFILE_FIELDS),
    VERIFIED_THIS_NODE: OTHER_VERIFIED,
    VERIFIED_OTHER_NODES: OTHER_VERIFIED,
    PUBLIC_AUDIENCE: NAME_AND_AVATAR,
}
# The audiences a room may hold, by kind: an official group admits verified users only (of
# this node, or of other nodes that attest them).
ROOM_AUDIENCES = {OFFICIAL: (SAME_ORGANISATION, VERIFIED_THIS_NODE, VERIFIED_OTHER_NODES)}
ORGANISATION_ACTIONS = ("organisations.",)


def setting_of(org: Organisation) -> dict[str, frozenset[str]]:
    """What ``org`` itself says.  Settings are checked when written; one stored before the
    check existed and not readable is ignored (the defaults hold) and logged."""
    value = org.settings.get(PROFILE_VISIBILITY)
    if value is None:
        return {}
    try:
        return check_profile_visibility(value, PROFILE_VISIBILITY)
    except DomainError as e:
        logger.warning("organisation %s: ignoring its %s: %s", org.org_id, PROFILE_VISIBILITY,
                       e.message)
        return {}


class ProfileVisibility:
    def __init__(self, store: OrganisationStore, classes: UserClasses, server_name: str
                 ) -> None:
        self.store = store
        self.classes = classes
        self.server_name = server_name
        self._tree = Tree(())
        self._settings: dict[str, dict[str, frozenset[str]]] = {}
        self._generation = 0  # counts the node's own writes (a read older than one is stale)
        self._loaded = False
        self.remote: RemoteClasses | None = None  # what other nodes attest (set by the node)
        self._listeners: list[Callable[[list[str]], None]] = []

    # -- what memory holds -----------------------------------------------------------------
    @property
    def tree(self) -> Tree:
        """The organisations with their settings as memory holds them now (a new object after
        each change; other settings read from it too: :mod:`broker.retention_orgs`)."""
        return self._tree

    async def load(self) -> None:
        """Read every organisation (at start, and when another process changed one)."""
        for _ in range(3):
            since = self._generation
            orgs = await self.store.all()
            if self._generation == since:
                self._hold(orgs)
                return
        logger.warning("organisations kept changing while read: profile visibility kept")

    def written(self, orgs: Iterable[Organisation]) -> None:
        """The node created or changed ``orgs``."""
        self._generation += 1
        self._hold([*self._tree.orgs.values(), *orgs])

    def deleted(self, org_id: str) -> None:
        self._generation += 1
        self._hold([o for o in self._tree.orgs.values() if o.org_id != org_id])

    def on_changed(self, listener: Callable[[list[str]], None]) -> None:
        """Tell ``listener`` the organisations whose members' visibility changed (after the
        first load: each change made by the node or taken in from the audit log)."""
        self._listeners.append(listener)

    def _hold(self, orgs: Iterable[Organisation]) -> None:
        before = self._resolved() if self._loaded else None
        by_id = {org.org_id: org for org in orgs}
        self._tree = Tree(by_id.values())
        self._settings = {org_id: setting_of(org) for org_id, org in by_id.items()}
        self._loaded = True
        if before is None:
            return
        changed = [org_id for org_id, fields in self._resolved().items()
                   if before.get(org_id, fields) != fields]
        if changed:
            for listener in self._listeners:
                listener(changed)

    def _resolved(self) -> dict[str, tuple[frozenset[str], ...]]:
        return {org_id: tuple(self.fields_for(org_id, a) for a in AUDIENCES)
                for org_id in self._tree.orgs}

    def changes_seen(self, changes: list[Change]) -> None:
        """The audit log's feed: an organisation changed (maybe by another process)."""
        if any(c.action.startswith(ORGANISATION_ACTIONS) for c in changes):
            d = defer.ensureDeferred(self.load())
            d.addErrback(lambda f: logger.error("reading organisations again failed: %s",
                                                f.getErrorMessage()))

    # -- the decisions -----------------------------------------------------------------------
    def fields_for(self, owner_org: str | None, audience: str) -> frozenset[str]:
        """The fields ``audience`` sees of a member of ``owner_org``."""
        if owner_org is None:
            return frozenset(PROFILE_FIELDS)
        for org_id in self._tree.ancestors(owner_org):
            found = self._settings.get(org_id, {}).get(audience)
            if found is not None:
                return found
        return DEFAULT[audience]

    def _top(self, org_id: str) -> str:
        return list(self._tree.ancestors(org_id))[-1]

    def audience(self, viewer: str, owner_org: str | None) -> str:
        """The audience ``viewer`` ("" for nobody named) belongs to for ``owner_org``'s
        members."""
        if not viewer:
            return PUBLIC_AUDIENCE
        if server_name_of(viewer) != self.server_name:
            attested = self.remote is not None and \
                self.remote.verification_org(viewer) is not None
            return VERIFIED_OTHER_NODES if attested else PUBLIC_AUDIENCE
        row = self.classes.verification(viewer)
        if row is None:
            return PUBLIC_AUDIENCE
        if owner_org is not None and self._top(row.org_id) == self._top(owner_org):
            return SAME_ORGANISATION
        return VERIFIED_THIS_NODE

    def shown(self, viewer: str, owner: str, owner_org: str | None,
              profile: dict[str, Any]) -> dict[str, Any]:
        """What ``viewer`` sees of ``owner``'s ``profile`` (keys as the profile API gives)."""
        if viewer == owner:
            return dict(profile)
        return self._only(profile, self.fields_for(owner_org, self.audience(viewer, owner_org)))

    def in_room(self, owner_org: str | None, profile: dict[str, Any],
                room: RoomFacts | None) -> dict[str, Any]:
        """The display name and avatar to restate in a membership event of a room (``room``
        None: not held here, so any audience)."""
        audiences = ROOM_AUDIENCES.get(room.kind, AUDIENCES) if room is not None else AUDIENCES
        fields = NAME_AND_AVATAR
        for audience in audiences:
            fields = fields & self.fields_for(owner_org, audience)
        return self._only({k: v for k, v in profile.items() if k in NAME_AND_AVATAR}, fields)

    @staticmethod
    def _only(profile: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
        keys = {PROFILE_KEYS[name] for name in fields}
        return {k: v for k, v in profile.items() if k not in HIDDEN_KEYS or k in keys}

    def effective(self) -> dict[str, Any]:
        """The default and each organisation's resolved visibility, for the policy document."""
        def listed(fields: frozenset[str]) -> list[str]:
            return [name for name in PROFILE_FIELDS if name in fields]

        return {
            "fields": list(PROFILE_FIELDS), "audiences": list(AUDIENCES),
            "default": {a: listed(DEFAULT[a]) for a in AUDIENCES},
            "organisations": {
                org_id: {"set": {a: listed(s[a]) for a in AUDIENCES if a in s},
                         "effective": {a: listed(self.fields_for(org_id, a))
                                       for a in AUDIENCES}}
                for org_id, s in sorted(self._settings.items())},
        }
