"""Server-side key backups (``/room_keys/version`` and ``/room_keys/keys``).

A user's devices back up their megolm session keys encrypted to a backup public key that only
the user holds; the node stores the ciphertexts and the metadata that decides which copy of a
session to keep (see :func:`storage.key_backup.should_replace`).  Keys may be stored only in the
current (newest live) version: another one gets 403 ``M_WRONG_ROOM_KEYS_VERSION`` naming the
current version.  Reading and deleting work on any live version; an unknown or deleted one is
404 ``M_NOT_FOUND``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import MatrixError, bad_param, bad_type, missing_param, not_found
from broker.http.parsing import parse_json_body, query_arg
from broker.http.validation import optional, require
from storage.key_backup import KeysUpdated, NoBackup, RoomKey, WrongVersion

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ALGORITHMS = (ALGORITHM,)

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


def _version_arg(request: Request) -> str:
    version = query_arg(request, "version")
    if not version:
        raise missing_param("Missing 'version' query parameter")
    return version


def _unknown_version() -> MatrixError:
    return not_found("Unknown backup version")


def _updated_json(result: KeysUpdated) -> dict[str, Any]:
    return {"etag": result.etag, "count": result.count}


def register_servlets(node: Node, router: Router) -> None:
    store = node.stores.key_backup

    # -- versions ----------------------------------------------------------------------------
    async def create_version(request: Request) -> Response:
        requester = await node.auth.get_requester(request)
        algorithm, auth_data = _check_algorithm(parse_json_body(request))
        version = await store.create_version(requester.user_id, algorithm, auth_data)
        return 200, {"version": version}

    async def current_version(request: Request) -> Response:
        requester = await node.auth.get_requester(request)
        info = await store.get_version(requester.user_id)
        if info is None:
            raise not_found("No current backup version")
        return 200, info.to_json()

    async def get_version(request: Request, version: str) -> Response:
        requester = await node.auth.get_requester(request)
        info = await store.get_version(requester.user_id, version)
        if info is None:
            raise _unknown_version()
        return 200, info.to_json()

    async def update_version(request: Request, version: str) -> Response:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        algorithm, auth_data = _check_algorithm(body)
        body_version = optional(body, "version", str)
        if body_version is not None and body_version != version:
            raise bad_param("The version in the body does not match the version in the path")
        info = await store.get_version(requester.user_id, version)
        if info is None:
            raise _unknown_version()
        if info.algorithm != algorithm:
            raise bad_param("Algorithm does not match the backup's algorithm")
        if not await store.update_auth_data(requester.user_id, version, auth_data):
            raise _unknown_version()
        return 200, {}

    async def delete_version(request: Request, version: str) -> Response:
        requester = await node.auth.get_requester(request)
        if not await store.delete_version(requester.user_id, version):
            raise _unknown_version()
        return 200, {}

    # -- keys --------------------------------------------------------------------------------
    async def put_keys(request: Request, room_id: str | None = None,
                       session_id: str | None = None) -> Response:
        requester = await node.auth.get_requester(request)
        version = _version_arg(request)
        body = parse_json_body(request)
        if room_id is None:
            rooms = require(body, "rooms", dict)
            keys = [k for rid, room in rooms.items() for k in _room_sessions(rid, room)]
        elif session_id is None:
            keys = _room_sessions(room_id, body)
        else:
            keys = [_key_data(room_id, session_id, body)]
        result = await store.put_keys(requester.user_id, version, keys)
        if isinstance(result, NoBackup):
            raise _unknown_version()
        if isinstance(result, WrongVersion):
            raise MatrixError(403, "M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version.",
                              current_version=result.current)
        return 200, _updated_json(result)

    async def get_keys(request: Request, room_id: str | None = None,
                       session_id: str | None = None) -> Response:
        requester = await node.auth.get_requester(request)
        version = _version_arg(request)
        keys = await store.get_keys(requester.user_id, version, room_id, session_id)
        if keys is None:
            raise _unknown_version()
        if session_id is not None:
            if not keys:
                raise not_found("Key not found.")
            return 200, keys[0].to_json()
        sessions: dict[str, dict[str, Any]] = {}
        for key in keys:
            sessions.setdefault(key.room_id, {})[key.session_id] = key.to_json()
        if room_id is not None:
            return 200, {"sessions": sessions.get(room_id, {})}
        return 200, {"rooms": {rid: {"sessions": s} for rid, s in sessions.items()}}

    async def delete_keys(request: Request, room_id: str | None = None,
                          session_id: str | None = None) -> Response:
        requester = await node.auth.get_requester(request)
        version = _version_arg(request)
        result = await store.delete_keys(requester.user_id, version, room_id, session_id)
        if result is None:
            raise _unknown_version()
        return 200, _updated_json(result)

    base = f"{CLIENT_PREFIX}/room_keys"
    router.register("POST", f"{base}/version", create_version)
    router.register("GET", f"{base}/version", current_version)
    version_path = f"{base}/version/(?P<version>[^/]+)"
    router.register("GET", version_path, get_version)
    router.register("PUT", version_path, update_version)
    router.register("DELETE", version_path, delete_version)
    for path in (f"{base}/keys", f"{base}/keys/(?P<room_id>[^/]+)",
                 f"{base}/keys/(?P<room_id>[^/]+)/(?P<session_id>[^/]+)"):
        router.register("PUT", path, put_keys)
        router.register("GET", path, get_keys)
        router.register("DELETE", path, delete_keys)
