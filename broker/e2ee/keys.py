"""Device identity keys, one-time keys and fallback keys: upload, query and claim.

The node keeps public keys only and checks what it can without any secret: an uploaded
``DeviceKeys`` object must name the uploading user and device and carry a valid signature by the
device's own ed25519 key.  Queries and claims for users of other servers go to those servers
(``/_matrix/federation/v1/user/keys/query`` and ``/user/keys/claim``); what a server could not
answer is listed under ``failures``.  Remote device keys are cached while a local user shares a
room with their owner (their server then tells us of every change, see
:mod:`broker.e2ee.device_lists`).

One-time key counts are asked on every /sync, so they are cached in memory per device and
invalidated by every upload and claim.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from twisted.internet import defer

from broker.errors import (
    DomainError,
    InvalidInput,
    MalformedContent,
    MissingInput,
    NotFound,
    Unavailable,
)
from protocol.canonical import decode_b64
from protocol.identifiers import is_user_id
from protocol.signing import server_name_of
from storage.device_keys import (
    DeviceKeyMap,
    JsonDict,
    KeyCounts,
    OneTimeKeyConflict,
    UnknownDevice,
)

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.e2ee.context import E2ee

logger = logging.getLogger(__name__)

QUERY_PATH = "/_matrix/federation/v1/user/keys/query"
CLAIM_PATH = "/_matrix/federation/v1/user/keys/claim"
DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 60_000
MAX_KEYS_PER_UPLOAD = 1000
MAX_USERS_PER_REQUEST = 1000
MAX_DEVICES_PER_REQUEST = 10_000
MAX_ID_LENGTH = 255
# Advertised in every /sync so that clients know the server counts signed one-time keys.
DEFAULT_COUNTED_ALGORITHM = "signed_curve25519"


def invalid(message: str) -> InvalidInput:
    return InvalidInput(message)


def bad_json(message: str) -> MalformedContent:
    return MalformedContent(message)


# -- validation -------------------------------------------------------------------------------------
def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def check_device_keys(keys: Any, user_id: str, device_id: str) -> JsonDict:
    """A ``DeviceKeys`` object the device may publish: well formed, naming ``user_id`` and
    ``device_id``, signed by the device's own ed25519 key.  Returns it without ``unsigned``."""
    if not isinstance(keys, dict):
        raise bad_json("'device_keys' must be an object")
    if keys.get("user_id") != user_id:
        raise invalid("'device_keys.user_id' does not match the logged-in user")
    if keys.get("device_id") != device_id:
        raise invalid("'device_keys.device_id' does not match the logged-in device")
    algorithms = keys.get("algorithms")
    if not isinstance(algorithms, list) or not algorithms \
            or not all(_is_id(a) for a in algorithms):
        raise bad_json("'device_keys.algorithms' must be a non-empty array of strings")
    public = keys.get("keys")
    if not isinstance(public, dict) or not public:
        raise bad_json("'device_keys.keys' must be a non-empty object")
    for key_id, value in public.items():
        algorithm, _, key_device = key_id.partition(":")
        if not algorithm or key_device != device_id or not isinstance(value, str) or not value:
            raise invalid(f"'device_keys.keys' entry {key_id!r} must be"
                          f" '<algorithm>:{device_id}' mapping to a key string")
    signatures = keys.get("signatures")
    if not isinstance(signatures, dict) or not all(
            isinstance(v, dict) and all(isinstance(s, str) for s in v.values())
            for v in signatures.values()):
        raise bad_json("'device_keys.signatures' must be an object of signature objects")
    signing_key_id = f"ed25519:{device_id}"
    if signing_key_id not in public:
        raise invalid(f"'device_keys.keys' must contain the device's {signing_key_id} key")
    if signing_key_id not in signatures.get(user_id, {}):
        raise invalid("'device_keys' must be signed by the device's ed25519 key")
    try:
        verify_key = decode_verify_key_bytes(signing_key_id, decode_b64(public[signing_key_id]))
        verify_signed_json(keys, user_id, verify_key)
    except (SignatureVerifyException, ValueError, TypeError) as e:
        raise invalid("The signature of 'device_keys' does not verify") from e
    return {k: v for k, v in keys.items() if k != "unsigned"}


def device_keys_signature_valid(keys: Any, user_id: str, device_id: str) -> bool:
    """Whether a DeviceKeys object (e.g. from another server) is well formed and self-signed."""
    try:
        check_device_keys(keys, user_id, device_id)
    except DomainError:
        return False
    return True


def check_one_time_keys(keys: Any, name: str) -> dict[str, Any]:
    """``{"<algorithm>:<key_id>": key}`` where a key is a string or an object with a ``key``
    string (a signed key)."""
    if keys is None:
        return {}
    if not isinstance(keys, dict):
        raise bad_json(f"'{name}' must be an object")
    if len(keys) > MAX_KEYS_PER_UPLOAD:
        raise invalid(f"At most {MAX_KEYS_PER_UPLOAD} keys in '{name}'")
    for full_id, key in keys.items():
        algorithm, _, key_id = full_id.partition(":")
        if not algorithm or not key_id or len(full_id) > MAX_ID_LENGTH:
            raise invalid(f"'{name}' key ID {full_id!r} must be '<algorithm>:<key_id>'")
        if isinstance(key, str):
            if not key:
                raise invalid(f"'{name}' key {full_id!r} is empty")
        elif not isinstance(key, dict) or not isinstance(key.get("key"), str) \
                or not key["key"] or not isinstance(key.get("signatures", {}), dict):
            raise invalid(f"'{name}' key {full_id!r} must be a key string or an object"
                          " with a 'key' string")
    return keys


def check_fallback_keys(keys: Any) -> dict[str, Any]:
    checked = check_one_time_keys(keys, "fallback_keys")
    algorithms = [full_id.partition(":")[0] for full_id in checked]
    if len(algorithms) != len(set(algorithms)):
        raise invalid("'fallback_keys' holds at most one key per algorithm")
    return checked


def parse_timeout(body: Mapping[str, Any]) -> float:
    """The request's ``timeout`` in seconds (default 10 s, at most 60 s)."""
    timeout = body.get("timeout", DEFAULT_TIMEOUT_MS)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_MS
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise bad_json("'timeout' must be a non-negative integer")
    return min(timeout, MAX_TIMEOUT_MS) / 1000.0


def check_query(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """``device_keys``: user ID -> list of device IDs (empty: every device)."""
    query = body.get("device_keys")
    if "device_keys" not in body:
        raise MissingInput("Missing 'device_keys'")
    if not isinstance(query, dict):
        raise bad_json("'device_keys' must be an object")
    if len(query) > MAX_USERS_PER_REQUEST:
        raise invalid(f"At most {MAX_USERS_PER_REQUEST} users per query")
    checked: dict[str, list[str]] = {}
    for user_id, device_ids in query.items():
        if not is_user_id(user_id):
            raise invalid(f"{user_id!r} is not a user ID")
        if device_ids is None:
            device_ids = []
        if not isinstance(device_ids, list) or not all(_is_id(d) for d in device_ids):
            raise bad_json(f"'device_keys.{user_id}' must be an array of device IDs")
        checked[user_id] = list(device_ids)
    if sum(len(d) for d in checked.values()) > MAX_DEVICES_PER_REQUEST:
        raise invalid(f"At most {MAX_DEVICES_PER_REQUEST} devices per query")
    return checked


def check_claim(body: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``one_time_keys``: user ID -> device ID -> algorithm."""
    if "one_time_keys" not in body:
        raise MissingInput("Missing 'one_time_keys'")
    query = body["one_time_keys"]
    if not isinstance(query, dict):
        raise bad_json("'one_time_keys' must be an object")
    checked: dict[str, dict[str, str]] = {}
    total = 0
    for user_id, devices in query.items():
        if not is_user_id(user_id):
            raise invalid(f"{user_id!r} is not a user ID")
        if not isinstance(devices, dict) or not all(
                _is_id(d) and _is_id(a) for d, a in devices.items()):
            raise bad_json(f"'one_time_keys.{user_id}' must map device IDs to algorithms")
        total += len(devices)
        checked[user_id] = dict(devices)
    if total > MAX_DEVICES_PER_REQUEST:
        raise invalid(f"At most {MAX_DEVICES_PER_REQUEST} devices per claim")
    return checked


# -- one-time key counts, cached per device ----------------------------------------------------------
@dataclass
class KeyCountCache:
    """The node's memory of its devices' key counts (the node builds one)."""

    counts: dict[tuple[str, str], KeyCounts] = field(default_factory=dict)
    # Bumped on every invalidation, so a read that raced with a change is not cached.
    versions: dict[tuple[str, str], int] = field(default_factory=dict)


def _cache(e2ee: E2ee) -> KeyCountCache:
    return e2ee.key_counts


async def key_counts(e2ee: E2ee, user_id: str, device_id: str) -> KeyCounts:
    """The device's unclaimed one-time keys and unused fallback key types (from memory when
    nothing changed since the last read)."""
    cache = _cache(e2ee)
    device = (user_id, device_id)
    found = cache.counts.get(device)
    if found is not None:
        return found
    version = cache.versions.get(device, 0)
    counts = await e2ee.stores.device_keys.get_key_counts(user_id, device_id)
    if cache.versions.get(device, 0) == version:
        cache.counts[device] = counts
    return counts


def forget_key_counts(e2ee: E2ee, devices: Iterable[tuple[str, str]]) -> None:
    cache = _cache(e2ee)
    for device in devices:
        cache.counts.pop(device, None)
        cache.versions[device] = cache.versions.get(device, 0) + 1


def _remember_counts(e2ee: E2ee, user_id: str, device_id: str, counts: KeyCounts) -> None:
    forget_key_counts(e2ee, [(user_id, device_id)])
    _cache(e2ee).counts[(user_id, device_id)] = counts


def counts_json(counts: KeyCounts) -> dict[str, int]:
    return {DEFAULT_COUNTED_ALGORITHM: 0, **counts.one_time}


def sync_share_key(e2ee: E2ee, requester: Requester, since: int, now: int,
                   member_events: bool) -> Hashable | None:
    """The device's counts when they are in memory (the fields are nothing else)."""
    counts = _cache(e2ee).counts.get((requester.user_id, requester.device_id))
    if counts is None:
        return None
    return (tuple(sorted(counts.one_time.items())), tuple(counts.unused_fallback))


async def sync_fields(e2ee: E2ee, requester: Requester, since: int | None,
                      now: int) -> dict[str, Any]:
    counts = await key_counts(e2ee, requester.user_id, requester.device_id)
    return {"device_one_time_keys_count": counts_json(counts),
            "device_unused_fallback_key_types": list(counts.unused_fallback)}


# -- upload ---------------------------------------------------------------------------------------
async def upload_keys(e2ee: E2ee, requester: Requester, body: Mapping[str, Any]
                      ) -> dict[str, Any]:
    """``POST /keys/upload``: store the device's keys; publish new identity keys."""
    from broker.e2ee.device_lists import DeviceUpdate, publish_device_updates, with_stream_ids

    user_id, device_id = requester.user_id, requester.device_id
    device_keys = None
    if body.get("device_keys") is not None:
        device_keys = check_device_keys(body["device_keys"], user_id, device_id)
    one_time_keys = check_one_time_keys(body.get("one_time_keys"), "one_time_keys")
    fallback_keys = check_fallback_keys(body.get("fallback_keys"))
    store = e2ee.stores.device_keys

    async def write(ids: list[int]) -> Any:
        return await store.upload_keys(
            user_id, device_id, device_keys=device_keys, one_time_keys=one_time_keys,
            fallback_keys=fallback_keys, now_ms=e2ee.clock.time_ms(),
            stream_id=ids[0] if ids else 0)

    try:
        # A stream id only where identity keys may change the device list.
        result = await with_stream_ids(e2ee, 1 if device_keys is not None else 0, write)
    except OneTimeKeyConflict as e:
        raise invalid(str(e)) from e
    except UnknownDevice as e:
        raise NotFound("The device no longer exists") from e
    _remember_counts(e2ee, user_id, device_id, result.counts)
    if result.change is not None:
        await publish_device_updates(e2ee, user_id, [DeviceUpdate(result.change, device_keys)])
    return {"one_time_key_counts": dict(result.counts.one_time)}


# -- query ----------------------------------------------------------------------------------------
async def query_local_keys(e2ee: E2ee, query: Mapping[str, list[str]], *,
                           viewer: str | None, over_federation: bool = False
                           ) -> dict[str, Any]:
    """The keys of local users: ``device_keys`` plus, where cross-signing keys exist,
    ``master_keys`` and ``self_signing_keys`` (and ``user_signing_keys`` of the viewer).
    Device display names are not shown to other servers."""
    local = {u: d for u, d in query.items() if e2ee.is_mine(u)}
    devices = await e2ee.stores.device_keys.get_device_keys(
        local, include_display_names=not over_federation)
    answer: dict[str, Any] = {"device_keys": devices}
    await add_cross_signing(e2ee, answer, list(local), viewer=viewer,
                            with_user_signing=not over_federation)
    return answer


async def add_cross_signing(e2ee: E2ee, answer: dict[str, Any], user_ids: Iterable[str], *,
                            viewer: str | None, with_user_signing: bool) -> None:
    """Complete an answer with the cross-signing keys and visible signatures the node holds
    (see broker.e2ee.cross_signing); the viewer's user-signing key only for clients."""
    from broker.e2ee.cross_signing import (
        add_cross_signing_to_federation_query,
        add_cross_signing_to_query,
    )

    if with_user_signing and viewer is not None:
        await add_cross_signing_to_query(e2ee, viewer, answer, user_ids)
    else:
        await add_cross_signing_to_federation_query(e2ee, answer, user_ids)

def _group_by_server(e2ee: E2ee, user_ids: Iterable[str]) -> dict[str, list[str]]:
    by_server: dict[str, list[str]] = {}
    for user_id in user_ids:
        if not e2ee.is_mine(user_id):
            by_server.setdefault(server_name_of(user_id), []).append(user_id)
    return by_server


async def _post(e2ee: E2ee, server: str, path: str, body: dict[str, Any], timeout: float
                ) -> Any:
    """Ask another server (unreachable when federation is off)."""
    client = e2ee.e2ee_federation.client
    if client is None:
        raise Unavailable("Federation is disabled")
    return await client.post_json(server, path, body, timeout=timeout)


def _failure(error: Exception) -> dict[str, Any]:
    status = getattr(error, "status", None)
    return {"status": status if isinstance(status, int) else 503,
            "message": str(error) or type(error).__name__}


async def query_keys(e2ee: E2ee, requester: Requester, body: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """``POST /keys/query``: local users from the database, remote users from the cache or
    their servers (queried in parallel)."""
    query = check_query(body)
    timeout = parse_timeout(body)
    local = {u: d for u, d in query.items() if e2ee.is_mine(u)}
    answer: dict[str, Any] = {
        "device_keys": await e2ee.stores.device_keys.get_device_keys(local),
        "master_keys": {}, "self_signing_keys": {}, "user_signing_keys": {}}
    failures: dict[str, Any] = {}
    by_server = _group_by_server(e2ee, query)
    if by_server:
        results: list[Any] = await defer.DeferredList(
            [defer.ensureDeferred(_query_server(e2ee, server, {u: query[u] for u in users},
                                                timeout))
             for server, users in by_server.items()],
            consumeErrors=True)
        for server, (ok, result) in zip(by_server, results, strict=True):
            if not ok:
                failures[server] = _failure(result.value)
                continue
            for section in ("device_keys", "master_keys", "self_signing_keys"):
                answer[section].update(result.get(section, {}))
    await add_cross_signing(e2ee, answer, query, viewer=requester.user_id,
                            with_user_signing=True)
    answer["failures"] = failures
    return answer


async def _query_server(e2ee: E2ee, server: str, query: dict[str, list[str]],
                        timeout: float) -> dict[str, Any]:
    from broker.e2ee.device_lists import local_users_sharing_rooms

    store = e2ee.stores.device_keys
    answer: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
    cached = await store.get_remote_cache(list(query))
    tracked = {u for u in query if await local_users_sharing_rooms(e2ee, u)}
    stale = [u for u in cached if u not in tracked]
    if stale:
        await store.forget_remote_cache(stale)
    for user_id, entry in cached.items():
        if user_id not in tracked:
            continue
        wanted = query[user_id]
        answer["device_keys"][user_id] = {
            d: k for d, k in entry.devices.items() if not wanted or d in wanted}
        for usage in ("master", "self_signing"):
            if usage in entry.cross_signing:
                answer[f"{usage}_keys"][user_id] = entry.cross_signing[usage]
    missing = {u: d for u, d in query.items() if u not in cached or u not in tracked}
    if not missing:
        return answer
    response = await _post(e2ee, server, QUERY_PATH, {"device_keys": missing}, timeout)
    fetched = _checked_remote_answer(server, response, set(missing))
    for section in ("device_keys", "master_keys", "self_signing_keys"):
        answer[section].update(fetched[section])
    now = e2ee.clock.time_ms()
    for user_id, wanted in missing.items():
        if wanted or user_id not in tracked:
            continue  # only a complete device list of a tracked user is worth caching
        cross = {usage: fetched[f"{usage}_keys"][user_id] for usage in ("master", "self_signing")
                 if user_id in fetched[f"{usage}_keys"]}
        await store.set_remote_cache(user_id, fetched["device_keys"].get(user_id, {}), cross,
                                     now)
    return answer


def _checked_remote_answer(server: str, response: Any, users: set[str]) -> dict[str, Any]:
    """What a server answered about its own users (anything else is ignored)."""
    checked: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
    if not isinstance(response, dict):
        return checked
    devices = response.get("device_keys")
    if isinstance(devices, dict):
        for user_id, by_device in devices.items():
            if user_id not in users or not isinstance(by_device, dict):
                continue
            checked["device_keys"][user_id] = {
                device_id: keys for device_id, keys in by_device.items()
                if isinstance(keys, dict) and keys.get("user_id") == user_id
                and keys.get("device_id") == device_id}
    for section in ("master_keys", "self_signing_keys"):
        keys = response.get(section)
        if isinstance(keys, dict):
            checked[section] = {u: k for u, k in keys.items()
                                if u in users and isinstance(k, dict)
                                and k.get("user_id") == u and server_name_of(u) == server}
    return checked


# -- claim ----------------------------------------------------------------------------------------
async def claim_local_keys(e2ee: E2ee, query: Mapping[str, Mapping[str, str]]) -> DeviceKeyMap:
    """Claim keys of local devices (one transaction); their cached counts are dropped."""
    wanted = [(user_id, device_id, algorithm)
              for user_id, devices in query.items() if e2ee.is_mine(user_id)
              for device_id, algorithm in devices.items()]
    if not wanted:
        return {}
    claimed = await e2ee.stores.device_keys.claim_keys(wanted)
    forget_key_counts(e2ee, [(user_id, device_id) for user_id, device_id, _ in wanted])
    return claimed


async def claim_keys(e2ee: E2ee, requester: Requester, body: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """``POST /keys/claim``."""
    query = check_claim(body)
    timeout = parse_timeout(body)
    one_time_keys: dict[str, Any] = dict(await claim_local_keys(e2ee, query))
    failures: dict[str, Any] = {}
    by_server = _group_by_server(e2ee, query)
    if by_server:
        results: list[Any] = await defer.DeferredList(
            [defer.ensureDeferred(_post(
                e2ee, server, CLAIM_PATH, {"one_time_keys": {u: query[u] for u in users}},
                timeout))
             for server, users in by_server.items()],
            consumeErrors=True)
        for (server, users), (ok, result) in zip(by_server.items(), results, strict=True):
            if not ok:
                failures[server] = _failure(result.value)
                continue
            claimed = result.get("one_time_keys") if isinstance(result, dict) else None
            if isinstance(claimed, dict):
                one_time_keys.update({u: k for u, k in claimed.items()
                                      if u in users and isinstance(k, dict)})
    return {"one_time_keys": one_time_keys, "failures": failures}
