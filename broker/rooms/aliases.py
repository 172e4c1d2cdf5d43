"""Room alias rules: syntax, uniqueness and who may delete one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from broker.errors import Conflict, InvalidInput, NotFound
from protocol.identifiers import is_room_alias
from storage.aliases import AliasStore
from storage.database import IntegrityError


class Aliases:
    def __init__(self, store: AliasStore, server_name: str) -> None:
        self.store = store
        self.server_name = server_name
        # Application services: asked about an unknown alias of their namespaces before the
        # answer is "not found" (True: it was created, read it again), and told each new
        # alias's creator to refuse one in another's exclusive namespace.
        self.ask_unknown: Callable[[str], Awaitable[bool]] | None = None
        self.check_claim: Callable[[str, str], None] | None = None

    def validate(self, alias: str, *, must_be_local: bool = True) -> None:
        if not is_room_alias(alias):
            raise InvalidInput(f"Invalid room alias {alias!r}")
        server = alias[1:].partition(":")[2]
        if must_be_local and server != self.server_name:
            raise InvalidInput(f"Room alias {alias} does not belong to this node")

    async def check_alias_free(self, alias: str) -> None:
        self.validate(alias)
        if await self.store.get_alias(alias) is not None:
            raise InvalidInput(f"Room alias {alias} is already in use", errcode="M_ROOM_IN_USE")

    async def create_alias(self, alias: str, room_id: str, creator: str) -> None:
        self.validate(alias)
        if self.check_claim is not None:
            self.check_claim(alias, creator)
        try:
            await self.store.create_alias(alias, room_id, creator)
        except IntegrityError as e:
            raise Conflict(f"Room alias {alias} already exists") from e

    async def resolve(self, alias: str) -> str:
        self.validate(alias, must_be_local=False)
        found = await self.store.get_alias(alias)
        if found is None and self.ask_unknown is not None and await self.ask_unknown(alias):
            found = await self.store.get_alias(alias)
        if found is None:
            raise NotFound(f"Room alias {alias} not found")
        return found[0]
