"""Server-side key backups (``/room_keys/version`` and ``/room_keys/keys``).

A user's devices back up their megolm session keys encrypted to a backup public key that only
the user holds; the node stores the ciphertexts and the metadata that decides which copy of a
session to keep (see :func:`storage.key_backup.should_replace`).  Keys may be stored only in the
current (newest live) version: another one gets 403 ``M_WRONG_ROOM_KEYS_VERSION`` naming the
current version.  Reading and deleting work on any live version; an unknown or deleted one is
404 ``M_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import bad_param, bad_type, missing_param
from broker.http.validation import optional, require
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


def _check_algorithm(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    algorithm = require(body, "algorithm", str)
    auth_data = require(body, "auth_data", dict)
    if algorithm not in ALGORITHMS:
        raise bad_param(f"Unsupported backup algorithm {algorithm!r}")
    if algorithm == ALGORITHM and not isinstance(auth_data.get("public_key"), str):
        raise bad_type("auth_data.public_key must be a string")
    return algorithm, auth_data


def _key_data(room_id: str, session_id: str, data: Any) -> RoomKey:
    """One KeyBackupData object, checked."""
    where = f"key {room_id} {session_id}"
    if not isinstance(data, dict):
        raise bad_type(f"{where} must be an object")
    numbers = {}
    for name in ("first_message_index", "forwarded_count"):
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad_type(f"{where}: '{name}' must be a non-negative integer")
        numbers[name] = value
    if not isinstance(data.get("is_verified"), bool):
        raise bad_type(f"{where}: 'is_verified' must be a boolean")
    if not isinstance(data.get("session_data"), dict):
        raise bad_type(f"{where}: 'session_data' must be an object")
    return RoomKey(room_id, session_id, numbers["first_message_index"],
                   numbers["forwarded_count"], data["is_verified"], data["session_data"])


def _room_sessions(room_id: str, room: Any) -> list[RoomKey]:
    if not isinstance(room, dict) or not isinstance(room.get("sessions"), dict):
        raise bad_type(f"room {room_id} must be an object with 'sessions'")
    return [_key_data(room_id, session_id, data) for session_id, data in room["sessions"].items()]


def _version_arg(call: Call) -> str:
    version = call.arg("version")
    if not version:
        raise missing_param("Missing 'version' query parameter")
    return version


def _uploaded_keys(body: dict[str, Any], room_id: str | None, session_id: str | None
                   ) -> list[RoomKey]:
    """The keys of a PUT on /keys, /keys/{roomId} or /keys/{roomId}/{sessionId}."""
    if room_id is None:
        rooms = require(body, "rooms", dict)
        return [k for rid, room in rooms.items() for k in _room_sessions(rid, room)]
    if session_id is None:
        return _room_sessions(room_id, body)
    return [_key_data(room_id, session_id, body)]


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
    @endpoint("POST", f"{BASE}/version", access=Access.USER)
    async def create_version(self, call: Call) -> Response:
        algorithm, auth_data = _check_algorithm(call.json())
        return 200, {"version": await self.backups.create_version(call.user.user_id, algorithm,
                                                                  auth_data)}

    @endpoint("GET", f"{BASE}/version", access=Access.USER)
    @endpoint("GET", VERSION, access=Access.USER)
    async def get_version(self, call: Call, version: str | None = None) -> Response:
        return 200, (await self.backups.version(call.user.user_id, version)).to_json()

    @endpoint("PUT", VERSION, access=Access.USER)
    async def update_version(self, call: Call, version: str) -> Response:
        body = call.json()
        algorithm, auth_data = _check_algorithm(body)
        body_version = optional(body, "version", str)
        if body_version is not None and body_version != version:
            raise bad_param("The version in the body does not match the version in the path")
        await self.backups.update_version(call.user.user_id, version, algorithm, auth_data)
        return 200, {}

    @endpoint("DELETE", VERSION, access=Access.USER)
    async def delete_version(self, call: Call, version: str) -> Response:
        await self.backups.delete_version(call.user.user_id, version)
        return 200, {}

    # -- keys --------------------------------------------------------------------------------
    @endpoint("PUT", KEYS, access=Access.USER)
    @endpoint("PUT", ROOM_KEYS, access=Access.USER)
    @endpoint("PUT", SESSION_KEYS, access=Access.USER)
    async def put_keys(self, call: Call, room_id: str | None = None,
                       session_id: str | None = None) -> Response:
        version = _version_arg(call)
        keys = _uploaded_keys(call.json(), room_id, session_id)
        return 200, _updated_json(await self.backups.put_keys(call.user.user_id, version, keys))

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
