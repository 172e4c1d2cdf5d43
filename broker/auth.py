"""Who is calling: access tokens, passwords (hashed by :mod:`broker.passwords`) and the
requester of a request.

Tokens are random and only their SHA-256 hash is stored.  The tokens resolved last are cached in
memory (a budget of them, least recently used dropped first; a logout removes them from the
cache), so an authenticated request usually costs no database query and a token beyond the
budget one query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from broker.errors import Unauthenticated
from broker.passwords import PasswordHashing
from storage.users import UserStore


@dataclass(frozen=True)
class Requester:
    """The authenticated user and device behind a request."""

    user_id: str
    device_id: str
    is_admin: bool
    token_hash: str
    expires_ts: int | None = None  # when the account expires (account validity)
    app_service: str | None = None  # the id of the application service acting as the user
    rate_exempt: bool = False  # an application service's sender, or an unlimited service


# Access tokens kept resolved in memory (the ``caches.tokens`` config key).
DEFAULT_TOKENS = 50_000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "brk_" + secrets.token_urlsafe(32)


def new_device_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(10))


class Auth:
    """Resolves access tokens to requesters and issues new sessions."""

    def __init__(self, users: UserStore, clock: Any,
                 passwords: PasswordHashing | None = None, budget: int = DEFAULT_TOKENS) -> None:
        self.users = users
        self.clock = clock
        self.passwords = passwords or PasswordHashing()
        self._cache: LRUCache[str, Requester] = LRUCache(maxsize=budget)
        # Bumped by every revocation: a lookup that started before one is not cached.
        self._revocations = 0
        # (user, device) -> (last seen ms, address): written in batches by flush_last_seen.
        self._seen: dict[tuple[str, str], tuple[int, str | None]] = {}

    async def requester_seen_at(self, token: str, address: str | None) -> Requester:
        """The requester of ``token`` (Unauthenticated if unknown), noting the device's use
        now from ``address``."""
        requester = await self.requester_for_token(token)
        self._seen[(requester.user_id, requester.device_id)] = (self.clock.time_ms(), address)
        return requester

    async def flush_last_seen(self) -> None:
        """Write the devices' last use (time and address) noted since the previous flush."""
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        await self.users.update_last_seen(
            [(user, device, ts, ip) for (user, device), (ts, ip) in seen.items()])

    async def requester_for_token(self, token: str) -> Requester:
        token_hash = hash_token(token)
        cached = self._cache.get(token_hash)
        if cached is not None:
            return cached
        revocations = self._revocations
        owner = await self.users.get_token_owner(token_hash)
        if owner is None or owner.deactivated:
            raise Unauthenticated("Unrecognised access token", errcode="M_UNKNOWN_TOKEN",
                                  soft_logout=False)
        requester = Requester(owner.user_id, owner.device_id, owner.is_admin, token_hash,
                              owner.expires_ts)
        if revocations == self._revocations:  # else the answer may predate a revocation
            self._cache[token_hash] = requester
        return requester

    def forget_user(self, user_id: str) -> None:
        """Drop the user's cached sessions (their node admin flag changed, or another process
        ended them): the next request of each reads them again."""
        self._revocations += 1
        for token_hash in [h for h, r in self._cache.items() if r.user_id == user_id]:
            self._cache.pop(token_hash, None)

    def forget_tokens(self, token_hashes: list[str]) -> None:
        self._revocations += 1
        for token_hash in token_hashes:
            self._cache.pop(token_hash, None)

    def tokens_in_memory(self) -> int:
        return len(self._cache)

    async def create_session(
        self, user_id: str, device_id: str | None, display_name: str | None, ip: str | None
    ) -> tuple[str, str]:
        """A new access token for ``user_id`` on ``device_id`` (new device if None)."""
        device_id = device_id or new_device_id()
        token = new_token()
        replaced = await self.users.add_device_and_token(
            user_id, device_id, display_name, hash_token(token), self.clock.time_ms(), ip)
        self.forget_tokens(replaced)
        return token, device_id
