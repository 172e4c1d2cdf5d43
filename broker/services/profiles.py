"""Users' profiles (display name, avatar, and the government fields the node sets: class,
organisation, designation, official email, phone): reads pass the policy decision point and
show each viewer what the owner's organisation lets their audience see
(:mod:`broker.admin.profile_visibility`); a change is restated in the user's joined rooms, as
each room's audiences may see it.  A profile of another server's user is asked of that
server, naming the reader when this node verified them (so that a node of ours answers what
verified users of other nodes see), and kept nowhere.  A hidden field is left out, never
refused: reading a profile, inviting and joining always work (see docs/admin/profiles.md)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer

from broker.access_policy import AccessPolicy, RoomFacts
from broker.admin import permissions
from broker.admin.profile_visibility import ProfileVisibility
from broker.errors import DomainError, Forbidden, InvalidInput, NotFound, Unavailable
from broker.rooms.service import Rooms
from protocol.errors import DestinationRefused, HttpResponseError
from protocol.identifiers import is_user_id
from storage.audit import Change
from storage.users import UserStore

logger = logging.getLogger(__name__)

# Fields the node sets from the user's government account; nobody sets them through the
# profile API (see :func:`broker.admin.accounts.AdminAccounts.profile_fields`).
GOVERNMENT_FIELDS = ("in.gov.broker.class", "in.gov.broker.organisation",
                     "in.gov.broker.designation", "in.gov.broker.email", "in.gov.broker.phone")
ORGANISATION_KEY = "in.gov.broker.organisation"
GovernmentFields = Callable[[str], Awaitable[dict[str, str]]]
# Asks a user's server for their profile as a local user reads it: (server, user ID, the
# reader named, "" for nobody) -> the answer's body.
AskProfile = Callable[[str, str, str], Awaitable[Any]]
# What is taken from another server's answer: the standard fields and the node's own.
REMOTE_FIELDS = ("displayname", "avatar_url", *GOVERNMENT_FIELDS)
MembersIn = Callable[[list[str]], Awaitable[list[str]]]  # the users placed in organisations

# The admin changes that may place a user in another organisation (read from the audit log).
PLACING_ACTIONS = frozenset({permissions.USERS_UPDATE, permissions.VERIFY})

# Longest value accepted per field (characters).
FIELD_LIMITS = {"displayname": 256, "avatar_url": 1000}


def validate_field(field: str, value: str | None) -> str | None:
    """The value to store for ``field`` (None clears it); ``InvalidInput`` if unusable."""
    if value is None or value == "":
        return None
    if len(value) > FIELD_LIMITS[field]:
        raise InvalidInput(f"'{field}' must be at most {FIELD_LIMITS[field]} characters")
    if field == "avatar_url" and not value.startswith("mxc://"):
        raise InvalidInput("'avatar_url' must be an mxc:// URI")
    return value


class Profiles:
    def __init__(self, users: UserStore, rooms: Rooms, policy: AccessPolicy,
                 server_name: str, government: GovernmentFields,
                 visibility: ProfileVisibility, members_in: MembersIn,
                 ask: AskProfile | None = None) -> None:
        self.users = users
        self.ask = ask  # asks another server for its user's profile; None: federation is off
        self.government = government
        self.rooms = rooms
        self.policy = policy
        self.server_name = server_name
        self.visibility = visibility
        self.members_in = members_in
        # Asked about an unknown local user before the answer is "no such user" (an
        # application service's user); True: read it again.
        self.ask_unknown_user: Callable[[str], Awaitable[bool]] | None = None

    async def profile(self, viewer: str, user_id: str) -> dict[str, Any]:
        """``user_id``'s profile as ``viewer`` ("" when unauthenticated) may read it."""
        if not is_user_id(user_id):
            raise InvalidInput(f"{user_id!r} is not a user ID")
        self.policy.may_read_profile(viewer, user_id)
        if user_id.split(":", 1)[1] != self.server_name:
            return await self.remote_profile(user_id, self.named_reader(viewer))
        found = await self.shown(user_id, viewer)
        if found is None and self.ask_unknown_user is not None \
                and await self.ask_unknown_user(user_id):
            found = await self.shown(user_id, viewer)  # an application service created it
        if found is None:
            raise NotFound("No such user")
        return found

    def named_reader(self, viewer: str) -> str:
        """Whom the profile query to another server names as the reader: ``viewer`` when
        they are a verified user of this node (a node of ours shows them what the owner's
        organisation shows verified users of other nodes, once this node attests them);
        nobody for anyone else, who would see what the public sees anyway, and whose reading
        the other server need not learn."""
        return viewer if viewer and self.visibility.classes.verification(viewer) is not None \
            else ""

    async def remote_profile(self, user_id: str, reader: str = "") -> dict[str, Any]:
        """A user of another server's profile, as their server's profile query answers it
        for ``reader`` (named in the query; "" for nobody: what the public sees).  ``ask`` may
        remember answers, per reader only (broker/services/remote_profiles.py).  Only string values of the known
        fields are taken; NotFound when the server does not know the user or is not one this
        node federates with, Unavailable when it cannot answer."""
        if self.ask is None:
            raise NotFound("Profiles of users on other servers are not available")
        server = user_id.split(":", 1)[1]
        try:
            answer = await self.ask(server, user_id, reader)
        except HttpResponseError as e:
            if e.status == 404:
                raise NotFound("No such user") from e
            raise Unavailable(f"{server} did not give the profile: {e}") from e
        except DestinationRefused as e:  # not a server this node federates with
            raise NotFound(f"No such user: {e}") from e
        except Exception as e:
            raise Unavailable(f"{server} did not give the profile: {e}") from e
        if not isinstance(answer, dict):
            raise Unavailable(f"{server} gave no profile")
        return {k: v for k, v in answer.items() if k in REMOTE_FIELDS and isinstance(v, str)}

    async def shown(self, user_id: str, viewer: str) -> dict[str, Any] | None:
        """A local user's profile as ``viewer`` may see it: a user of this node, a user of
        another server (named by its profile query, believed by
        :meth:`broker.remote_classes.RemoteClasses.reader`), or "" for nobody named (the
        public's view); None for an unknown user."""
        profile = await self.users.get_profile(user_id)
        if profile is None:
            return None
        government = await self.government(user_id)
        return self.visibility.shown(viewer, user_id, government.get(ORGANISATION_KEY),
                                     {**profile, **government})

    async def in_room(self, user_id: str, room: RoomFacts | None) -> dict[str, Any]:
        """The display name and avatar a membership event of ``user_id`` restates in a room
        (``room`` None: a room not held here), as every audience the room may hold sees
        them; nothing for a user who is not local."""
        profile, organisation = await self.users.profile_and_organisation(user_id)
        return self.visibility.in_room(organisation, profile, room)

    @staticmethod
    def refuse_government_field(field: str) -> None:
        raise Forbidden(f"'{field}' is set by the node from your government account; ask"
                        " an admin of your organisation to change it")

    def check_owner(self, caller: str, user_id: str) -> None:
        """Only the owner may change a profile (checked before the body is read)."""
        if caller != user_id:
            raise Forbidden("You may only change your own profile")

    async def set_field(self, caller: str, user_id: str, field: str, value: str | None) -> None:
        self.check_owner(caller, user_id)
        await self.users.set_profile_field(user_id, field, validate_field(field, value))
        await self.restate(user_id)

    async def restate(self, user_id: str) -> None:
        """Restate the user's membership in each room they are joined to, as the room's
        audiences may see their profile now."""
        profile, organisation = await self.users.profile_and_organisation(user_id)
        await self.rooms.propagate_profile(
            user_id, lambda room: self.visibility.in_room(organisation, profile, room))

    def organisations_changed(self, org_ids: list[str]) -> None:
        """The visibility of these organisations' members changed: restate their
        memberships, in the background, one user after the other."""
        d = defer.ensureDeferred(self.restate_members(org_ids))
        d.addErrback(lambda f: logger.error("restating the members of %s failed: %s",
                                            ", ".join(org_ids), f.getErrorMessage()))

    def user_moved(self, user_id: str) -> None:
        """The user was moved to another organisation: its visibility holds for them now;
        restate their memberships in the background."""
        d = defer.ensureDeferred(self.restate(user_id))
        d.addErrback(lambda f: logger.error("restating %s's membership failed: %s", user_id,
                                            f.getErrorMessage()))

    def changes_seen(self, changes: list[Change]) -> None:
        """The audit log's feed: a user an admin change may have moved to another
        organisation (an update of their account, a verification; also made by another
        process, a ``broker`` command) has their memberships restated as the visibility of
        their organisation now says, in the background, one user after the other (rooms
        that already show it are left as they are)."""
        users = list(dict.fromkeys(c.target for c in changes
                                   if c.action in PLACING_ACTIONS and c.target.startswith("@")))
        if users:
            d = defer.ensureDeferred(self.restate_each(users))
            d.addErrback(lambda f: logger.error("restating moved users' memberships failed:"
                                                " %s", f.getErrorMessage()))

    async def restate_members(self, org_ids: list[str]) -> int:
        """Restate every member of ``org_ids``; how many users were restated (a user whose
        restating fails is logged and passed over)."""
        return await self.restate_each(await self.members_in(org_ids))

    async def restate_each(self, user_ids: list[str]) -> int:
        """Restate each of ``user_ids``; how many were restated (a user whose restating fails
        is logged and passed over)."""
        done = 0
        for user_id in user_ids:
            try:
                await self.restate(user_id)
                done += 1
            except DomainError as e:
                logger.warning("could not restate %s's membership: %s", user_id, e.message)
        return done
