"""Searching the user directory: every search passes the policy decision point, and each result
is shown as the searcher may see it.

- A public searcher finds a verified user only when that user is reachable by the public or
  already shares a room with them (:meth:`broker.admin.reachability.Reachability.findable_by`).
- A result shows the display name and avatar the owner's organisation lets the searcher's
  audience see (:mod:`broker.admin.profile_visibility`), and a hidden display name is not
  searched either: such a user is found by their user ID only.

Both read memory; the search itself is one query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from broker.access_policy import AccessPolicy
from broker.admin.profile_visibility import ProfileVisibility
from storage.user_directory import DirectoryUser, UserDirectoryStore, rank

MAX_LIMIT = 1000
# (searcher, user, whether they share a room) -> whether the directory shows the user.
Findable = Callable[[str, str, bool], bool]


class UserDirectory:
    def __init__(self, store: UserDirectoryStore, policy: AccessPolicy,
                 visibility: ProfileVisibility, findable: Findable) -> None:
        self.store = store
        self.policy = policy
        self.visibility = visibility
        self.findable = findable

    async def search(self, searcher: str, term: str, limit: int) -> dict[str, Any]:
        """Up to ``limit`` (at most :data:`MAX_LIMIT`) users ``searcher`` may find."""
        self.policy.may_search_directory(searcher)
        candidates, more = await self.store.candidates(searcher, term)
        shown = [self._shown(searcher, user) for user in candidates
                 if self.findable(searcher, user.user_id, user.shares_room)]
        users, limited = rank(shown, term, min(limit, MAX_LIMIT), more)
        return {"results": [user.to_json() for user in users], "limited": limited}

    def _shown(self, searcher: str, user: DirectoryUser) -> DirectoryUser:
        profile = self.visibility.shown(
            searcher, user.user_id, user.organisation,
            {"displayname": user.display_name, "avatar_url": user.avatar_url})
        return replace(user, display_name=profile.get("displayname"),
                       avatar_url=profile.get("avatar_url"))
