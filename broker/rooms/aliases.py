"""Room alias rules: syntax, uniqueness and who may delete one."""

from __future__ import annotations

from broker.http.errors import MatrixError, bad_param, not_found
from protocol.identifiers import is_room_alias
from storage.aliases import AliasStore
from storage.database import IntegrityError


class Aliases:
    def __init__(self, store: AliasStore, server_name: str) -> None:
        self.store = store
        self.server_name = server_name

    def validate(self, alias: str, *, must_be_local: bool = True) -> None:
        if not is_room_alias(alias):
            raise bad_param(f"Invalid room alias {alias!r}")
        server = alias[1:].partition(":")[2]
        if must_be_local and server != self.server_name:
            raise bad_param(f"Room alias {alias} does not belong to this node")

    async def check_alias_free(self, alias: str) -> None:
        self.validate(alias)
        if await self.store.get_alias(alias) is not None:
            raise MatrixError(400, "M_ROOM_IN_USE", f"Room alias {alias} is already in use")

    async def create_alias(self, alias: str, room_id: str, creator: str) -> None:
        self.validate(alias)
        try:
            await self.store.create_alias(alias, room_id, creator)
        except IntegrityError as e:
            raise MatrixError(409, "M_UNKNOWN", f"Room alias {alias} already exists") from e

    async def resolve(self, alias: str) -> str:
        self.validate(alias, must_be_local=False)
        found = await self.store.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        return found[0]
