"""The one answer to "what class is user X now": ``verified`` or ``public``.

A user is verified while they hold a verification that is neither revoked nor past its expiry
(read on the injected clock, so expiry takes effect at its moment without any write) and their
account is not deactivated.  The answer comes from memory, never the database: the current
verifications are loaded once at start and every change (verify, revoke, deactivation, by the
admin API, a command or the client API) updates the cache in the same step as its write, so
the send and sync paths may ask freely.
"""

from __future__ import annotations

from typing import Any

from storage.accounts import AccountStore, VerificationRow

VERIFIED = "verified"
PUBLIC = "public"


class UserClasses:
    def __init__(self, store: AccountStore, clock: Any) -> None:
        self.store = store
        self.clock = clock
        self._current: dict[str, VerificationRow] = {}

    async def load(self) -> int:
        """Read every current verification (at start); how many."""
        rows = await self.store.current_all()
        self._current = {row.user_id: row for row in rows}
        return len(rows)

    def verification(self, user_id: str) -> VerificationRow | None:
        """The user's current verification if it is in force now."""
        row = self._current.get(user_id)
        if row is None or (row.expires_ts is not None
                           and row.expires_ts <= self.clock.time_ms()):
            return None
        return row

    def class_of(self, user_id: str) -> str:
        return VERIFIED if self.verification(user_id) is not None else PUBLIC

    def verified(self, row: VerificationRow) -> None:
        self._current[row.user_id] = row

    def ended(self, user_id: str) -> None:
        """The user's verification was revoked or their account deactivated."""
        self._current.pop(user_id, None)
