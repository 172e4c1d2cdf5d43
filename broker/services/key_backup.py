"""Server-side key backups of a user: versions (the newest live one is current) and the
encrypted session keys in them.

Keys may be stored only in the current version: another one is refused with
``M_WRONG_ROOM_KEYS_VERSION`` naming the current version.  Reading and deleting work on any live
version; an unknown or deleted one is ``M_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Any

from broker.errors import Forbidden, InvalidInput, NotFound
from storage.key_backup import (
    BackupVersion,
    KeyBackupStore,
    KeysUpdated,
    NoBackup,
    RoomKey,
    WrongVersion,
)


def _unknown_version() -> NotFound:
    return NotFound("Unknown backup version")


class KeyBackups:
    def __init__(self, store: KeyBackupStore) -> None:
        self.store = store

    # -- versions ----------------------------------------------------------------------------
    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]
                             ) -> str:
        return await self.store.create_version(user_id, algorithm, auth_data)

    async def version(self, user_id: str, version: str | None) -> BackupVersion:
        """The named version, or the current one when ``version`` is None."""
        info = await self.store.get_version(user_id, version)
        if info is None:
            raise NotFound("No current backup version") if version is None \
                else _unknown_version()
        return info

    async def update_version(self, user_id: str, version: str, algorithm: str,
                             auth_data: dict[str, Any]) -> None:
        info = await self.version(user_id, version)
        if info.algorithm != algorithm:
            raise InvalidInput("Algorithm does not match the backup's algorithm")
        if not await self.store.update_auth_data(user_id, version, auth_data):
            raise _unknown_version()

    async def delete_version(self, user_id: str, version: str) -> None:
        if not await self.store.delete_version(user_id, version):
            raise _unknown_version()

    # -- keys --------------------------------------------------------------------------------
    async def put_keys(self, user_id: str, version: str, keys: list[RoomKey]) -> KeysUpdated:
        result = await self.store.put_keys(user_id, version, keys)
        if isinstance(result, NoBackup):
            raise _unknown_version()
        if isinstance(result, WrongVersion):
            raise Forbidden("Wrong backup version.", errcode="M_WRONG_ROOM_KEYS_VERSION",
                            current_version=result.current)
        return result

    async def get_keys(self, user_id: str, version: str, room_id: str | None,
                       session_id: str | None) -> list[RoomKey]:
        """The keys of a version (of one room, of one session: that one must exist)."""
        keys = await self.store.get_keys(user_id, version, room_id, session_id)
        if keys is None:
            raise _unknown_version()
        if session_id is not None and not keys:
            raise NotFound("Key not found.")
        return keys

    async def delete_keys(self, user_id: str, version: str, room_id: str | None,
                          session_id: str | None) -> KeysUpdated:
        result = await self.store.delete_keys(user_id, version, room_id, session_id)
        if result is None:
            raise _unknown_version()
        return result
