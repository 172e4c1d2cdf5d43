"""Server signing keys on the wire: ``/_matrix/key/v2/server`` and notary ``/query``.

Pure building blocks (no I/O): build and parse a server's own keys response, add and
check a notary's signature, and decide whether a key may verify something signed at a
given time (``key_valid_at``, honouring ``valid_until_ts`` for room v5+ and
``expired_ts`` for old keys).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from protocol.canonical import MAX_SAFE_INT
from protocol.errors import InvalidServerKeys, SignatureVerifyError
from protocol.signing import (
    SigningKey,
    VerifyKey,
    decode_verify_key,
    encode_verify_key,
    sign_json,
    verify_json_signature,
    verify_key_id,
)

__all__ = [
    "MAX_KEY_VALIDITY_MS",
    "ServerKeys",
    "build_server_keys_response",
    "parse_server_keys_response",
    "add_notary_signature",
    "build_notary_query",
    "parse_notary_response",
    "merge_server_keys",
    "key_valid_at",
    "unsatisfied_requests",
    "is_valid_key_id",
]

#: The spec: use the lesser of ``valid_until_ts`` and 7 days into the future.
MAX_KEY_VALIDITY_MS: Final = 7 * 24 * 3600 * 1000

_KEY_ID = re.compile(r"ed25519:[A-Za-z0-9_]+")
_ANY_KEY_ID = re.compile(r"[A-Za-z0-9_]+:[A-Za-z0-9_]+")


@dataclass(frozen=True)
class ServerKeys:
    """A server's verified keys.

    ``valid_until_ts`` is already capped at fetch time + 7 days; the value the server
    published is kept in ``published_valid_until_ts``. ``old_verify_keys`` maps a key
    ID to ``(key, expired_ts)``.
    """

    server_name: str
    verify_keys: dict[str, VerifyKey]
    old_verify_keys: dict[str, tuple[VerifyKey, int]]
    valid_until_ts: int
    published_valid_until_ts: int = field(default=-1, compare=False)

    def __post_init__(self) -> None:
        if self.published_valid_until_ts == -1:
            object.__setattr__(self, "published_valid_until_ts", self.valid_until_ts)


def is_valid_key_id(key_id: Any) -> bool:
    """Whether ``key_id`` is ``ed25519:<version>`` with version ``[A-Za-z0-9_]+``."""
    return isinstance(key_id, str) and _KEY_ID.fullmatch(key_id) is not None


def _is_ts(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INT


# Building ----------------------------------------------------------------------------------
def build_server_keys_response(
    server_name: str,
    signing_keys: list[SigningKey],
    old_keys: Iterable[tuple[VerifyKey, str, int]],
    valid_until_ts: int,
) -> dict[str, Any]:
    """Our ``GET /_matrix/key/v2/server`` body, signed by every current key.

    ``old_keys`` holds ``(verify key, key id, expired_ts)`` for retired keys.
    """
    if not signing_keys:
        raise ValueError("at least one current signing key is required")
    if not _is_ts(valid_until_ts):
        raise ValueError(f"invalid valid_until_ts {valid_until_ts!r}")
    verify_keys: dict[str, Any] = {}
    for key in signing_keys:
        key_id = verify_key_id(key)
        if not is_valid_key_id(key_id):
            raise ValueError(f"invalid signing key id {key_id!r}")
        verify_keys[key_id] = {"key": encode_verify_key(key)}
    old: dict[str, Any] = {}
    for verify_key, key_id, expired_ts in old_keys:
        if not is_valid_key_id(key_id):
            raise ValueError(f"invalid old key id {key_id!r}")
        if key_id in verify_keys:
            raise ValueError(f"key {key_id} is listed as both current and old")
        if not _is_ts(expired_ts):
            raise ValueError(f"invalid expired_ts {expired_ts!r} for {key_id}")
        old[key_id] = {"key": encode_verify_key(verify_key), "expired_ts": expired_ts}
    response: dict[str, Any] = {
        "server_name": server_name,
        "verify_keys": verify_keys,
        "old_verify_keys": old,
        "valid_until_ts": valid_until_ts,
    }
    for key in signing_keys:
        sign_json(response, server_name, key)
    return response


def add_notary_signature(
    response: Mapping[str, Any], notary_name: str, key: SigningKey
) -> dict[str, Any]:
    """A copy of a server keys ``response`` with ``notary_name``'s signature added.

    The origin's own signatures are kept; the input is left untouched (it is typically
    a cached copy shared between requests).
    """
    signed = copy.deepcopy(dict(response))
    return sign_json(signed, notary_name, key)


def build_notary_query(requested: Mapping[str, Mapping[str, int | None]]) -> dict[str, Any]:
    """The ``POST /_matrix/key/v2/query`` body for ``{server: {key_id: min_valid_until}}``.

    A ``None`` minimum leaves ``minimum_valid_until_ts`` out (the notary then uses its
    own clock). An empty key map asks for all of that server's keys.
    """
    server_keys: dict[str, dict[str, dict[str, int]]] = {}
    for server, keys in requested.items():
        criteria: dict[str, dict[str, int]] = {}
        for key_id, minimum in keys.items():
            criteria[key_id] = {} if minimum is None else {"minimum_valid_until_ts": minimum}
        server_keys[server] = criteria
    return {"server_keys": server_keys}


# Parsing -----------------------------------------------------------------------------------
def _decode_key(server: str, key_id: str, entry: Any, old: bool) -> tuple[VerifyKey, int | None]:
    where = f"{'old_verify_keys' if old else 'verify_keys'}[{key_id!r}] of {server}"
    if not isinstance(entry, dict):
        raise InvalidServerKeys(f"{where} is not an object")
    key_b64 = entry.get("key")
    if not isinstance(key_b64, str):
        raise InvalidServerKeys(f"{where} has no 'key' string")
    try:
        verify_key = decode_verify_key(key_id, key_b64)
    except (ValueError, TypeError) as exc:
        raise InvalidServerKeys(f"{where} is not a valid ed25519 key") from exc
    if len(verify_key.encode()) != 32:
        raise InvalidServerKeys(f"{where} is not a 32-byte ed25519 key")
    expired_ts: int | None = None
    if old:
        expired_ts = entry.get("expired_ts")
        if not _is_ts(expired_ts):
            raise InvalidServerKeys(f"{where} has no valid 'expired_ts'")
    return verify_key, expired_ts


def _key_map(server: str, body: dict[str, Any], name: str, required: bool) -> dict[str, Any]:
    value = body.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidServerKeys(f"{name!r} of {server} must be an object")
    selected: dict[str, Any] = {}
    for key_id, entry in value.items():
        if not isinstance(key_id, str) or not _ANY_KEY_ID.fullmatch(key_id):
            raise InvalidServerKeys(f"malformed key id {key_id!r} in {name!r} of {server}")
        # Keys of algorithms we do not speak are skipped, not fatal.
        if key_id.startswith("ed25519:"):
            selected[key_id] = entry
    return selected


def _parse_unverified(body: Any, expected_server_name: str, now_ms: int) -> ServerKeys:
    if not isinstance(body, dict):
        raise InvalidServerKeys("server keys response must be a JSON object")
    server_name = body.get("server_name")
    if not isinstance(server_name, str):
        raise InvalidServerKeys("server keys response has no 'server_name' string")
    if server_name != expected_server_name:
        raise InvalidServerKeys(
            f"server keys response is for {server_name!r}, expected {expected_server_name!r}"
        )
    valid_until = body.get("valid_until_ts")
    if not _is_ts(valid_until):
        raise InvalidServerKeys(f"server keys of {server_name} have no valid 'valid_until_ts'")
    verify_keys: dict[str, VerifyKey] = {}
    for key_id, entry in _key_map(server_name, body, "verify_keys", True).items():
        verify_keys[key_id], _ = _decode_key(server_name, key_id, entry, old=False)
    old_verify_keys: dict[str, tuple[VerifyKey, int]] = {}
    for key_id, entry in _key_map(server_name, body, "old_verify_keys", False).items():
        if key_id in verify_keys:
            continue  # listed as current: the current entry wins
        old_key, expired_ts = _decode_key(server_name, key_id, entry, old=True)
        assert expired_ts is not None
        old_verify_keys[key_id] = (old_key, expired_ts)
    return ServerKeys(
        server_name=server_name,
        verify_keys=verify_keys,
        old_verify_keys=old_verify_keys,
        valid_until_ts=min(valid_until, now_ms + MAX_KEY_VALIDITY_MS),
        published_valid_until_ts=valid_until,
    )


def _check_signed_by(
    body: dict[str, Any], signer: str, known_keys: Mapping[str, VerifyKey], what: str
) -> None:
    """At least one signature of ``signer`` by a key in ``known_keys``; all of those valid."""
    signatures = body.get("signatures")
    if not isinstance(signatures, dict):
        raise InvalidServerKeys(f"{what} has no 'signatures' object")
    by_signer = signatures.get(signer)
    if not isinstance(by_signer, dict):
        raise InvalidServerKeys(f"{what} is not signed by {signer}")
    checked = 0
    for key_id in by_signer:
        verify_key = known_keys.get(key_id)
        if verify_key is None:
            continue  # signed with a key we cannot check: neither proof nor disproof
        try:
            verify_json_signature(body, signer, verify_key)
        except SignatureVerifyError as exc:
            raise InvalidServerKeys(f"{what}: bad signature by {signer} {key_id}") from exc
        checked += 1
    if not checked:
        raise InvalidServerKeys(f"{what} carries no signature by a known key of {signer}")


def parse_server_keys_response(body: Any, expected_server_name: str, now_ms: int) -> ServerKeys:
    """Validate and verify a server's own keys response (``/_matrix/key/v2/server``).

    The response must be for ``expected_server_name`` and carry that server's signature
    by at least one of its listed ``verify_keys``; every signature it made with a listed
    key must verify (signatures by unlisted key IDs are ignored). Raises
    ``InvalidServerKeys``.
    """
    keys = _parse_unverified(body, expected_server_name, now_ms)
    _check_signed_by(body, keys.server_name, keys.verify_keys, f"keys of {keys.server_name}")
    return keys


def merge_server_keys(a: ServerKeys, b: ServerKeys) -> ServerKeys:
    """Combine two responses for one server (e.g. a notary's cached and fresh copies).

    The response valid the longest is the base; current keys of the other that the base
    no longer lists become old keys expiring at that response's ``valid_until_ts``. The
    same key ID bound to different key material is refused (``InvalidServerKeys``).
    """
    if a.server_name != b.server_name:
        raise ValueError("cannot merge keys of different servers")
    newer, older = (a, b) if a.valid_until_ts >= b.valid_until_ts else (b, a)
    all_new: dict[str, bytes] = {k: v.encode() for k, v in newer.verify_keys.items()}
    all_new.update({k: v.encode() for k, (v, _) in newer.old_verify_keys.items()})
    old = dict(newer.old_verify_keys)
    candidates = [(k, v, older.valid_until_ts) for k, v in older.verify_keys.items()]
    candidates += [(k, v, ts) for k, (v, ts) in older.old_verify_keys.items()]
    for key_id, key, expired_ts in candidates:
        known = all_new.get(key_id)
        if known is not None and known != key.encode():
            raise InvalidServerKeys(f"{a.server_name} key {key_id} has conflicting key material")
        if key_id in newer.verify_keys:
            continue
        if key_id in old:
            old[key_id] = (old[key_id][0], max(old[key_id][1], expired_ts))
        else:
            old[key_id] = (key, expired_ts)
            all_new[key_id] = key.encode()
    return ServerKeys(
        server_name=newer.server_name,
        verify_keys=dict(newer.verify_keys),
        old_verify_keys=old,
        valid_until_ts=newer.valid_until_ts,
        published_valid_until_ts=newer.published_valid_until_ts,
    )


def parse_notary_response(
    body: Any,
    requested: Mapping[str, Mapping[str, int | None]],
    notary_name: str,
    notary_verify_keys: Mapping[str, VerifyKey],
    now_ms: int,
) -> dict[str, ServerKeys]:
    """Validate a notary's ``/_matrix/key/v2/query`` answer.

    Every entry must be signed by its own server (as in ``parse_server_keys_response``)
    and by ``notary_name`` with one of ``notary_verify_keys`` (the keys we trust for
    that notary, configured or fetched beforehand). Entries for servers not in
    ``requested`` are ignored; several entries for one server are merged
    (``merge_server_keys``). Servers the notary had nothing for are absent; use
    ``unsatisfied_requests`` to see what is still missing. Raises ``InvalidServerKeys``
    if the answer or any requested entry is malformed or badly signed.
    """
    if not isinstance(body, dict) or not isinstance(body.get("server_keys"), list):
        raise InvalidServerKeys(f"notary {notary_name}: response has no 'server_keys' list")
    results: dict[str, ServerKeys] = {}
    for entry in body["server_keys"]:
        if not isinstance(entry, dict):
            raise InvalidServerKeys(f"notary {notary_name}: entry is not an object")
        server = entry.get("server_name")
        if not isinstance(server, str) or server not in requested:
            continue
        keys = _parse_unverified(entry, server, now_ms)
        _check_signed_by(entry, server, keys.verify_keys, f"keys of {server} via {notary_name}")
        # Even when the notary vouches for itself: its keys must chain to the trusted ones.
        _check_signed_by(
            entry, notary_name, notary_verify_keys, f"keys of {server} via {notary_name}"
        )
        previous = results.get(server)
        results[server] = keys if previous is None else merge_server_keys(previous, keys)
    return results


# Validity ----------------------------------------------------------------------------------
def key_valid_at(
    keys: ServerKeys, key_id: str, ts: int, *, enforce_key_validity: bool = True
) -> VerifyKey | None:
    """The key ``key_id`` if it may verify something signed at ``ts``, else ``None``.

    A current key is valid while ``ts <= valid_until_ts`` (room v5+ "enforce key
    validity": the event's ``origin_server_ts`` must not be after it); an old key while
    ``ts <= expired_ts``. With ``enforce_key_validity=False`` (room v1-v4, where
    ``valid_until_ts`` must be ignored) any known key is valid at any time.
    """
    current = keys.verify_keys.get(key_id)
    if current is not None:
        if not enforce_key_validity or ts <= keys.valid_until_ts:
            return current
        return None
    old = keys.old_verify_keys.get(key_id)
    if old is not None and (not enforce_key_validity or ts <= old[1]):
        return old[0]
    return None


def unsatisfied_requests(
    requested: Mapping[str, Mapping[str, int | None]],
    results: Mapping[str, ServerKeys],
    now_ms: int,
) -> dict[str, list[str]]:
    """Requested key IDs that ``results`` cannot vouch for at their minimum validity.

    A missing minimum means "now". A server requested with no key IDs is unsatisfied
    only if no keys came back for it at all.
    """
    missing: dict[str, list[str]] = {}
    for server, wanted in requested.items():
        keys = results.get(server)
        if not wanted:
            if keys is None:
                missing[server] = []
            continue
        for key_id, minimum in wanted.items():
            at = now_ms if minimum is None else minimum
            if keys is None or key_valid_at(keys, key_id, at) is None:
                missing.setdefault(server, []).append(key_id)
    return missing
