"""Server-side key backups (``/room_keys/version`` and ``/room_keys/keys``).

A user's devices back up their megolm session keys encrypted to a backup public key that only
the user holds; the node stores the ciphertexts and the metadata that decides which copy of a
session to keep (see :func:`storage.key_backup.should_replace`).  Keys may be stored only in the
current (newest live) version: another one gets 403 ``M_WRONG_ROOM_KEYS_VERSION`` naming the
current version.  Reading and deleting work on any live version; an unknown or deleted one is
404 ``M_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge
from pydantic import model_validator

from broker.client_api import CLIENT_PREFIX
from broker.errors import InvalidInput, MalformedContent
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import bad_param, missing_param
from broker.services.key_backup import KeyBackups
from storage.key_backup import KeysUpdated, RoomKey

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ALGORITHMS = (ALGORITHM,)
BASE = f"{CLIENT_PREFIX}/room_keys"
VERSION = f"{BASE}/version/(?P<version>[^/]+)"
KEYS = f"{BASE}/keys"
ROOM_KEYS = f"{KEYS}/(?P<room_id>[^/]+)"
SESSION_KEYS = f"{ROOM_KEYS}/(?P<session_id>[^/]+)"

Response = tuple[int, dict[str, Any]]


class BackupVersion(Body):
    """A backup version's algorithm and its public ``auth_data`` (``version`` on update)."""

    algorithm: str
    auth_data: dict[str, Any]
    version: str | None = None

    @model_validator(mode="after")
    def _supported(self) -> BackupVersion:
        if self.algorithm not in ALGORITHMS:
            raise InvalidInput(f"Unsupported backup algorithm {self.algorithm!r}")
        if self.algorithm == ALGORITHM and not isinstance(self.auth_data.get("public_key"), str):
            raise MalformedContent("auth_data.public_key must be a string")
        return self


class KeyBackupData(Body):
    """One backed-up session key."""

    first_message_index: Annotated[int, Ge(0)]
    forwarded_count: Annotated[int, Ge(0)]
    is_verified: bool
    session_data: dict[str, Any]

    def key(self, room_id: str, session_id: str) -> RoomKey:
        return RoomKey(room_id, session_id, self.first_message_index, self.forwarded_count,
                       self.is_verified, self.session_data)


class RoomKeyBackup(Body):
    """The backed-up session keys of one room."""

    sessions: dict[str, KeyBackupData]

    def keys(self, room_id: str) -> list[RoomKey]:
        return [data.key(room_id, session_id) for session_id, data in self.sessions.items()]


class KeysBackup(Body):
    """The backed-up session keys of several rooms."""

    rooms: dict[str, RoomKeyBackup]

    def keys(self) -> list[RoomKey]:
        return [key for room_id, room in self.rooms.items() for key in room.keys(room_id)]


def _version_arg(call: Call) -> str:
    version = call.arg("version")
    if not version:
        raise missing_param("Missing 'version' query parameter")
    return version


def _keys_json(keys: list[RoomKey], room_id: str | None, session_id: str | None
               ) -> dict[str, Any]:
    if session_id is not None:
        return keys[0].to_json()
    sessions: dict[str, dict[str, Any]] = {}
    for key in keys:
        sessions.setdefault(key.room_id, {})[key.session_id] = key.to_json()
    if room_id is not None:
        return {"sessions": sessions.get(room_id, {})}
    return {"rooms": {rid: {"sessions": s} for rid, s in sessions.items()}}


def _updated_json(result: KeysUpdated) -> dict[str, Any]:
    return {"etag": result.etag, "count": result.count}


class KeyBackupEndpoints(Endpoints):
    def __init__(self, backups: KeyBackups) -> None:
        self.backups = backups

    # -- versions ----------------------------------------------------------------------------
    @endpoint("POST", f"{BASE}/version", access=Access.USER, body=BackupVersion)
    async def create_version(self, call: Call, body: BackupVersion) -> Response:
        return 200, {"version": await self.backups.create_version(
            call.user.user_id, body.algorithm, body.auth_data)}

    @endpoint("GET", f"{BASE}/version", access=Access.USER)
    @endpoint("GET", VERSION, access=Access.USER)
    async def get_version(self, call: Call, version: str | None = None) -> Response:
        return 200, (await self.backups.version(call.user.user_id, version)).to_json()

    @endpoint("PUT", VERSION, access=Access.USER, body=BackupVersion)
    async def update_version(self, call: Call, version: str, body: BackupVersion) -> Response:
        if body.version is not None and body.version != version:
            raise bad_param("The version in the body does not match the version in the path")
        await self.backups.update_version(call.user.user_id, version, body.algorithm,
                                          body.auth_data)
        return 200, {}

    @endpoint("DELETE", VERSION, access=Access.USER)
    async def delete_version(self, call: Call, version: str) -> Response:
        await self.backups.delete_version(call.user.user_id, version)
        return 200, {}

    # -- keys --------------------------------------------------------------------------------
    async def _put(self, call: Call, keys: list[RoomKey]) -> Response:
        version = _version_arg(call)
        return 200, _updated_json(await self.backups.put_keys(call.user.user_id, version, keys))

    @endpoint("PUT", KEYS, access=Access.USER, body=KeysBackup)
    async def put_keys(self, call: Call, body: KeysBackup) -> Response:
        return await self._put(call, body.keys())

    @endpoint("PUT", ROOM_KEYS, access=Access.USER, body=RoomKeyBackup)
    async def put_room_keys(self, call: Call, room_id: str, body: RoomKeyBackup) -> Response:
        return await self._put(call, body.keys(room_id))

    @endpoint("PUT", SESSION_KEYS, access=Access.USER, body=KeyBackupData)
    async def put_session_key(self, call: Call, room_id: str, session_id: str,
                              body: KeyBackupData) -> Response:
        return await self._put(call, [body.key(room_id, session_id)])

    @endpoint("GET", KEYS, access=Access.USER)
    @endpoint("GET", ROOM_KEYS, access=Access.USER)
    @endpoint("GET", SESSION_KEYS, access=Access.USER)
    async def get_keys(self, call: Call, room_id: str | None = None,
                       session_id: str | None = None) -> Response:
        keys = await self.backups.get_keys(call.user.user_id, _version_arg(call), room_id,
                                           session_id)
        return 200, _keys_json(keys, room_id, session_id)

    @endpoint("DELETE", KEYS, access=Access.USER)
    @endpoint("DELETE", ROOM_KEYS, access=Access.USER)
    @endpoint("DELETE", SESSION_KEYS, access=Access.USER)
    async def delete_keys(self, call: Call, room_id: str | None = None,
                          session_id: str | None = None) -> Response:
        result = await self.backups.delete_keys(call.user.user_id, _version_arg(call), room_id,
                                                session_id)
        return 200, _updated_json(result)
