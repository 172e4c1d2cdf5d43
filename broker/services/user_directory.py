"""Searching the user directory: every search passes the policy decision point."""

from __future__ import annotations

from typing import Any

from broker.access_policy import AccessPolicy
from storage.user_directory import UserDirectoryStore

MAX_LIMIT = 1000


class UserDirectory:
    def __init__(self, store: UserDirectoryStore, policy: AccessPolicy) -> None:
        self.store = store
        self.policy = policy

    async def search(self, searcher: str, term: str, limit: int) -> dict[str, Any]:
        """Up to ``limit`` (at most :data:`MAX_LIMIT`) users ``searcher`` may find."""
        self.policy.may_search_directory(searcher)
        users, limited = await self.store.search_users(searcher, term, min(limit, MAX_LIMIT))
        return {"results": [user.to_json() for user in users], "limited": limited}
