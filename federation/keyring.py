"""The keyring: other servers' signing keys, and verification of what they signed.

``Keyring.get_verify_key(server, key_id, at_ts)`` looks a key up in memory, then in the
database, then fetches ``/_matrix/key/v2/server`` from that server, then asks each configured
notary (``POST /_matrix/key/v2/query``). Concurrent lookups for one server share one fetch, and
a key that could not be found is not fetched again for ``MIN_REFETCH_INTERVAL_MS`` (a server
that is down must not turn every incoming event into an outbound request).

Pinned servers (``federation.pinned_keys`` in the config) are never fetched: only their pinned
keys are accepted, whatever anyone serves. Our own keys come from ``own_keys``.

A notary's answers are trusted through the notary's own keys: its pinned keys if any, else the
keys it serves itself at ``/_matrix/key/v2/server`` (fetched over TLS).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet import defer

from protocol.errors import InvalidServerKeys, KeyFetchError, SignatureVerifyError
from protocol.request_auth import XMatrixAuth
from protocol.request_auth import verify_request as verify_request_signature
from protocol.room_versions import RoomVersion
from protocol.server_keys import (
    ServerKeys,
    build_notary_query,
    key_valid_at,
    parse_notary_response,
    parse_server_keys_response,
)
from protocol.signing import (
    VerifyKey,
    decode_verify_key,
    encode_verify_key,
    servers_required_to_sign,
    verify_event_signature,
)
from storage.server_keys import ServerKeyStore, StoredServerKey

__all__ = ["Keyring", "KeyClient", "MIN_REFETCH_INTERVAL_MS", "SERVER_KEYS_PATH", "QUERY_PATH"]

logger = logging.getLogger(__name__)

SERVER_KEYS_PATH = "/_matrix/key/v2/server"
QUERY_PATH = "/_matrix/key/v2/query"

#: After a fetch of a server's keys, the same missing key is not fetched again for this long.
MIN_REFETCH_INTERVAL_MS = 60_000

#: Timeout of one key request (direct or notary), in seconds.
KEY_REQUEST_TIMEOUT = 10.0


class KeyClient(Protocol):
    """What the keyring needs of the federation client (``FederationClient`` fits)."""

    async def get_json(
        self, destination: str, path: str, args: Mapping[str, Any] | None = None, *,
        signed: bool = True, timeout: float = ...,
    ) -> Any: ...

    async def post_json(
        self, destination: str, path: str, content: Any, args: Mapping[str, Any] | None = None,
        *, signed: bool = True, timeout: float = ...,
    ) -> Any: ...


class ClockLike(Protocol):
    def time_ms(self) -> int: ...


@dataclass(frozen=True)
class _Known:
    """A key in memory: ``expired_ts`` is set for old keys."""

    key: VerifyKey
    valid_until_ts: int
    expired_ts: int | None


def _valid_at(server: str, key_id: str, known: _Known, ts: int, enforce: bool) -> VerifyKey | None:
    if known.expired_ts is None:
        keys = ServerKeys(server, {key_id: known.key}, {}, known.valid_until_ts)
    else:
        keys = ServerKeys(server, {}, {key_id: (known.key, known.expired_ts)}, known.valid_until_ts)
    return key_valid_at(keys, key_id, ts, enforce_key_validity=enforce)


class Keyring:
    def __init__(
        self,
        store: ServerKeyStore,
        client: KeyClient,
        own_server_name: str,
        own_keys: Mapping[str, VerifyKey],
        clock: ClockLike,
        pinned_keys: Mapping[str, Mapping[str, str]] | None = None,
        notaries: Sequence[str] = (),
    ) -> None:
        self._store = store
        self._client = client
        self.server_name = own_server_name
        self._own_keys = dict(own_keys)
        self._clock = clock
        self._pinned: dict[str, dict[str, VerifyKey]] = {
            server: {key_id: decode_verify_key(key_id, b64) for key_id, b64 in keys.items()}
            for server, keys in (pinned_keys or {}).items()
        }
        self._notaries = tuple(n for n in notaries if n != own_server_name)
        self._memory: dict[str, dict[str, _Known]] = {}
        self._inflight: dict[str, list[defer.Deferred[None]]] = {}
        self._last_attempt: dict[tuple[str, str], int] = {}

    # Lookup ---------------------------------------------------------------------------------
    def is_pinned(self, server: str) -> bool:
        return server in self._pinned

    async def get_verify_key(
        self, server: str, key_id: str, at_ts: int, *, enforce_validity: bool = True
    ) -> VerifyKey:
        """``server``'s key ``key_id`` if it may verify something signed at ``at_ts``.

        Raises ``KeyFetchError`` if no such key can be found.
        """
        if server == self.server_name:
            own = self._own_keys.get(key_id)
            if own is None:
                raise KeyFetchError(f"we have no key {key_id}")
            return own
        pinned = self._pinned.get(server)
        if pinned is not None:
            key = pinned.get(key_id)
            if key is None:
                raise KeyFetchError(f"{server} is pinned and {key_id} is not a pinned key")
            return key
        found = self._lookup_memory(server, key_id, at_ts, enforce_validity)
        if found is not None:
            return found
        await self._load_from_db(server)
        found = self._lookup_memory(server, key_id, at_ts, enforce_validity)
        if found is not None:
            return found
        for _ in range(2):
            if server in self._inflight:
                await self._wait_for_fetch(server)
            else:
                last = self._last_attempt.get((server, key_id))
                if last is not None and self._clock.time_ms() - last < MIN_REFETCH_INTERVAL_MS:
                    break
                await self._fetch_shared(server, key_id, at_ts)
            found = self._lookup_memory(server, key_id, at_ts, enforce_validity)
            if found is not None:
                return found
        raise KeyFetchError(f"no key {key_id} of {server} valid at {at_ts}")

    def _lookup_memory(self, server: str, key_id: str, ts: int, enforce: bool) -> VerifyKey | None:
        known = self._memory.get(server, {}).get(key_id)
        return None if known is None else _valid_at(server, key_id, known, ts, enforce)

    def _remember(self, server: str, key_id: str, known: _Known) -> None:
        keys = self._memory.setdefault(server, {})
        previous = keys.get(key_id)
        if previous is None or previous.valid_until_ts <= known.valid_until_ts:
            keys[key_id] = known

    async def _load_from_db(self, server: str) -> None:
        rows: list[StoredServerKey] = await self._store.get_server_keys(server)
        for row in rows:
            try:
                key = decode_verify_key(row.key_id, row.verify_key)
            except ValueError:
                logger.warning("ignoring undecodable stored key %s of %s", row.key_id, server)
                continue
            self._remember(server, row.key_id, _Known(key, row.valid_until_ts, row.expired_ts))

    # Fetching -------------------------------------------------------------------------------
    async def _wait_for_fetch(self, server: str) -> None:
        waiter: defer.Deferred[None] = defer.Deferred()
        self._inflight[server].append(waiter)
        try:
            await waiter
        except Exception:  # the leader logged it; the caller re-checks memory
            pass

    async def _fetch_shared(self, server: str, key_id: str, at_ts: int) -> None:
        """Fetch ``server``'s keys once for every concurrent caller; failures are logged."""
        waiters: list[defer.Deferred[None]] = []
        self._inflight[server] = waiters
        self._last_attempt[(server, key_id)] = self._clock.time_ms()
        try:
            await self._fetch(server, key_id, at_ts)
        except Exception as exc:
            logger.warning("could not fetch key %s of %s: %s", key_id, server, exc)
        finally:
            del self._inflight[server]
            for waiter in waiters:
                waiter.callback(None)

    async def _fetch(self, server: str, key_id: str, at_ts: int) -> None:
        errors: list[str] = []
        try:
            await self._fetch_direct(server)
        except Exception as exc:
            errors.append(f"direct: {exc}")
        if self._lookup_memory(server, key_id, at_ts, True) is not None:
            return
        for notary in self._notaries:
            if notary == server:
                continue
            try:
                await self._fetch_from_notary(notary, server, key_id, at_ts)
            except Exception as exc:
                errors.append(f"notary {notary}: {exc}")
                continue
            if self._lookup_memory(server, key_id, at_ts, True) is not None:
                return
        if errors:
            raise KeyFetchError("; ".join(errors))

    async def _fetch_direct(self, server: str) -> ServerKeys:
        body = await self._client.get_json(
            server, SERVER_KEYS_PATH, signed=False, timeout=KEY_REQUEST_TIMEOUT
        )
        now = self._clock.time_ms()
        keys = parse_server_keys_response(body, server, now)
        await self._save(keys, body, from_server=server, fetched_ts=now)
        return keys

    async def _notary_keys(self, notary: str) -> dict[str, VerifyKey]:
        pinned = self._pinned.get(notary)
        if pinned is not None:
            return dict(pinned)
        now = self._clock.time_ms()
        if not self._memory.get(notary):
            await self._load_from_db(notary)
        current = {
            key_id: key
            for key_id, known in self._memory.get(notary, {}).items()
            if (key := _valid_at(notary, key_id, known, now, True)) is not None
        }
        if current:
            return current
        keys = await self._fetch_direct(notary)
        return dict(keys.verify_keys)

    async def _fetch_from_notary(self, notary: str, server: str, key_id: str, at_ts: int) -> None:
        trusted = await self._notary_keys(notary)
        requested = {server: {key_id: at_ts}}
        body = await self._client.post_json(
            notary, QUERY_PATH, build_notary_query(requested), timeout=KEY_REQUEST_TIMEOUT
        )
        if not isinstance(body, dict) or not isinstance(body.get("server_keys"), list):
            raise InvalidServerKeys(f"notary {notary}: response has no 'server_keys' list")
        now = self._clock.time_ms()
        for entry in body["server_keys"]:
            if not isinstance(entry, dict) or entry.get("server_name") != server:
                continue
            # One entry at a time, so each is stored with its own signed JSON.
            parsed = parse_notary_response(
                {"server_keys": [entry]}, requested, notary, trusted, now
            )
            await self._save(parsed[server], entry, from_server=notary, fetched_ts=now)

    async def _save(
        self, keys: ServerKeys, raw: dict[str, Any], *, from_server: str, fetched_ts: int
    ) -> None:
        await self._store.store_server_keys(
            keys.server_name,
            verify_keys={k: encode_verify_key(v) for k, v in keys.verify_keys.items()},
            old_verify_keys={
                k: (encode_verify_key(v), ts) for k, (v, ts) in keys.old_verify_keys.items()
            },
            valid_until_ts=keys.valid_until_ts,
            fetched_ts=fetched_ts,
            from_server=from_server,
            key_json=raw,
        )
        for key_id, key in keys.verify_keys.items():
            self._remember(keys.server_name, key_id, _Known(key, keys.valid_until_ts, None))
        for key_id, (key, expired_ts) in keys.old_verify_keys.items():
            self._remember(keys.server_name, key_id, _Known(key, keys.valid_until_ts, expired_ts))

    # Notary service -------------------------------------------------------------------------
    async def get_server_key_responses(
        self, server: str, key_ids: Sequence[str], minimum_valid_until_ts: int
    ) -> list[dict[str, Any]]:
        """Signed key responses of ``server`` we hold, for serving as a notary.

        If what we hold does not cover ``key_ids`` (every key when empty) until
        ``minimum_valid_until_ts``, the server is asked directly first (never through other
        notaries). Pinned servers and our own name give nothing here (the caller answers for
        itself). Responses come back as received, still carrying the origin's signature.
        """
        if server == self.server_name or server in self._pinned:
            return []
        rows = await self._store.get_server_keys(server)
        if not self._covers(rows, key_ids, minimum_valid_until_ts):
            try:
                await self._fetch_direct(server)
            except Exception as exc:
                logger.info("notary: could not refresh keys of %s: %s", server, exc)
            rows = await self._store.get_server_keys(server)
        wanted = set(key_ids)
        responses: dict[str, dict[str, Any]] = {}
        for row in rows:
            if wanted and row.key_id not in wanted:
                continue
            text = json.dumps(row.key_json, sort_keys=True)
            responses.setdefault(text, row.key_json)
        return list(responses.values())

    @staticmethod
    def _covers(rows: Sequence[StoredServerKey], key_ids: Sequence[str], minimum: int) -> bool:
        if not key_ids:
            return any(r.expired_ts is None and r.valid_until_ts >= minimum for r in rows)
        by_id = {r.key_id: r for r in rows}
        for key_id in key_ids:
            row = by_id.get(key_id)
            if row is None:
                return False
            if row.expired_ts is None and row.valid_until_ts < minimum:
                return False
        return True

    # Verification ---------------------------------------------------------------------------
    async def verify_event_signatures(self, pdu: dict[str, Any], room_version: RoomVersion) -> None:
        """Check every server that must sign ``pdu`` did, with a key valid when it was sent.

        For each required server (``servers_required_to_sign``) at least one of its ed25519
        signatures must come from a key we can obtain that is valid at the event's
        ``origin_server_ts`` (room versions with ``enforce_key_validity``), and every such
        signature we check must verify. Raises ``SignatureVerifyError``.
        """
        signatures = pdu.get("signatures")
        if not isinstance(signatures, dict):
            raise SignatureVerifyError("event has no signatures")
        ts = pdu.get("origin_server_ts")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise SignatureVerifyError("event has no integer origin_server_ts")
        try:
            required = servers_required_to_sign(pdu, room_version)
        except (KeyError, ValueError, TypeError) as exc:
            raise SignatureVerifyError(f"cannot tell who must sign the event: {exc}") from exc
        for server in sorted(required):
            by_server = signatures.get(server)
            if not isinstance(by_server, dict):
                raise SignatureVerifyError(f"event is not signed by {server}")
            key_ids = [k for k in by_server if isinstance(k, str) and k.startswith("ed25519:")]
            if not key_ids:
                raise SignatureVerifyError(f"event has no ed25519 signature by {server}")
            problems: list[str] = []
            for key_id in key_ids:
                try:
                    key = await self.get_verify_key(
                        server, key_id, ts, enforce_validity=room_version.enforce_key_validity
                    )
                except KeyFetchError as exc:
                    problems.append(str(exc))
                    continue
                verify_event_signature(pdu, server, key, room_version)
                break
            else:
                raise SignatureVerifyError(
                    f"no usable key for the signature of {server}: {'; '.join(problems)}"
                )

    async def verify_request(
        self, auth: XMatrixAuth, method: str, uri: str, content: Any | None
    ) -> None:
        """Check an X-Matrix request signature; the origin's key must be valid now.

        Raises ``KeyFetchError`` if the key cannot be obtained, ``SignatureVerifyError`` if
        the signature (or its destination) is wrong.
        """
        key = await self.get_verify_key(auth.origin, auth.key_id, self._clock.time_ms())
        verify_request_signature(auth, method, uri, content, self.server_name, key)
