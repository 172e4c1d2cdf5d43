"""Filters a user uploads (validated against the spec's Filter schema) and reads back."""

from __future__ import annotations

from typing import Any

from broker.errors import NotFound
from broker.filtering import FILTER_ID, Filter
from storage.filters import FilterStore


class Filters:
    def __init__(self, store: FilterStore) -> None:
        self.store = store

    async def upload(self, user_id: str, body: dict[str, Any]) -> str:
        """Store ``body`` once it is a valid filter; its per-user id."""
        Filter.from_json(body)
        return str(await self.store.add_filter(user_id, body))

    async def get(self, user_id: str, filter_id: str) -> dict[str, Any]:
        stored = (await self.store.get_filter(user_id, int(filter_id))
                  if FILTER_ID.fullmatch(filter_id) else None)
        if stored is None:
            raise NotFound("No such filter.")
        return stored
