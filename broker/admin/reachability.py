"""Who may reach whom: a public user cannot invite a verified user of this node (into any room,
a direct chat included), nor knock on a direct chat to reach one, unless that user is reachable
by the public.  (A knock on any other room asks its moderators in, not one person: informal
rooms mix both classes, and official groups refuse public users by their own rule.)

A user chooses with their global account data ``in.gov.broker.reachability``
(``{"public": true}``; absent or false: not reachable); their organisation's admin may force it
either way (``PATCH /_broker/admin/v1/users/{user_id}`` ``{"reachable_by_public": ...}``, null
gives the choice back to the user), and a forced value wins.  A verified user may always reach
a public one.  Both are held in memory (loaded at start, updated with each write), so the
access policy's rule reads no database; a value forced by another process (a second node
process on the database) is read again when the audit log's feed shows its ``users.update``.  A user of another server is verified here while their node
attests it (:mod:`broker.remote_classes`); an invite over federation asks the inviter's node
first when memory holds nothing fresh.  The same choice decides whom the user directory shows
public searchers (:meth:`findable_by`).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from broker.access_policy import Decision, InstalledRule, Refusal
from broker.admin import permissions
from broker.admin.classes import UserClasses
from broker.errors import MalformedContent
from broker.remote_classes import RemoteClasses
from protocol.signing import server_name_of
from storage.audit import Change
from storage.reachability import ReachabilityStore

logger = logging.getLogger(__name__)

ACCOUNT_DATA_TYPE = "in.gov.broker.reachability"
UNREACHABLE = "public_cannot_reach_verified"
RULE = InstalledRule(
    "reachability", (UNREACHABLE,),
    "A public user (every user of another server) cannot invite a verified user who is not"
    " reachable by the public, nor knock on a direct chat with one; the user directory shows public searchers only the verified"
    " users reachable by them or sharing a room with them")


def choice_of(content: dict[str, Any]) -> bool:
    """What an ``in.gov.broker.reachability`` account data content chooses; MalformedContent
    for one the node cannot read."""
    value = content.get("public", False)
    if not isinstance(value, bool):
        raise MalformedContent(f"{ACCOUNT_DATA_TYPE}: 'public' must be true or false")
    return value


class Reachability:
    def __init__(self, store: ReachabilityStore, classes: UserClasses, server_name: str
                 ) -> None:
        self.store = store
        self.classes = classes
        self.server_name = server_name
        # What other nodes attest of their users (the node sets it); None: all public.
        self.remote: RemoteClasses | None = None
        self._chosen: dict[str, bool] = {}
        self._forced: dict[str, bool] = {}
        # The node's own forced changes, counted; user -> the count at their last one (a read
        # started before it may be older than memory).
        self._generation = 0
        self._written: dict[str, int] = {}

    async def load(self) -> None:
        """Read every choice and forced value (at start)."""
        chosen = await self.store.chosen(ACCOUNT_DATA_TYPE)
        self._chosen = {user_id: value is True for user_id, content in chosen.items()
                        if isinstance(content, dict)
                        for value in (content.get("public"),)}
        self._forced = await self.store.forced()

    # -- the account data watcher (the user's choice) ------------------------------------------
    def check(self, content: dict[str, Any]) -> None:
        choice_of(content)

    def written(self, user_id: str, content: dict[str, Any]) -> None:
        self._chosen[user_id] = choice_of(content)

    # -- what an admin forced ------------------------------------------------------------------
    def forced_of(self, user_id: str) -> bool | None:
        return self._forced.get(user_id)

    def forget(self, user_id: str) -> None:
        """The user's forced value was deleted (a deactivated account's data)."""
        self._set(user_id, None)

    def force(self, user_id: str, value: bool | None) -> None:
        self._generation += 1
        self._written[user_id] = self._generation
        self._set(user_id, value)

    def _set(self, user_id: str, value: bool | None) -> None:
        if value is None:
            self._forced.pop(user_id, None)
        else:
            self._forced[user_id] = value

    def changes_seen(self, changes: list[Change]) -> None:
        """The audit log's feed: read again the forced values of the users changed."""
        users = list(dict.fromkeys(
            c.target for c in changes if c.action == permissions.USERS_UPDATE))
        if users:
            d = defer.ensureDeferred(self.reread(users))
            d.addErrback(lambda f: logger.error("reading reachability again failed: %s",
                                                f.getErrorMessage()))

    async def reread(self, user_ids: list[str]) -> None:
        since = self._generation
        forced = await self.store.forced(user_ids)
        for user_id in user_ids:
            if self._written.get(user_id, 0) <= since:  # else memory is newer than the read
                self._set(user_id, forced.get(user_id))

    def summary(self) -> dict[str, Any]:
        """What the policy document says of reachability: the default, and how many users
        chose it or had it forced either way."""
        return {"default": False, "account_data_type": ACCOUNT_DATA_TYPE,
                "chosen_reachable": sum(self._chosen.values()),
                "forced_reachable": sum(self._forced.values()),
                "forced_unreachable": sum(not v for v in self._forced.values())}

    def reachable_by_public(self, user_id: str) -> bool:
        forced = self._forced.get(user_id)
        return self._chosen.get(user_id, False) if forced is None else forced

    def _verified(self, user_id: str) -> bool:
        if not user_id.startswith("@"):
            return False
        if server_name_of(user_id) != self.server_name:
            return self.remote is not None and self.remote.verification_org(user_id) is not None
        return self.classes.verification(user_id) is not None

    def findable_by(self, searcher: str, user_id: str, shares_room: bool) -> bool:
        """Whether the user directory shows ``user_id`` to ``searcher``: a public searcher
        finds a verified user only when that user is reachable by the public or already
        shares a room with them."""
        if shares_room or self._verified(searcher) or not self._verified(user_id):
            return True
        return self.reachable_by_public(user_id)

    def rule(self, decision: Decision) -> Refusal | None:
        """The access policy rule: a public user inviting a verified one who is not
        reachable by the public, or knocking on a direct chat with one, is refused."""
        knocks_direct = decision.action == "knock" and decision.room is not None and \
            decision.room.direct
        if decision.action != "invite" and not knocks_direct:
            return None
        if not self._verified(decision.target):
            return None
        if self._verified(decision.actor) or self.reachable_by_public(decision.target):
            return None
        return Refusal(UNREACHABLE, f"{decision.target} cannot be reached by public users")
