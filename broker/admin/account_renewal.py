"""Renewing an account's validity through the admin API
(``POST /_broker/admin/v1/users/{user_id}/renew``).

A renewal needs ``users.renew`` over the user's organisation and is recorded in the audit log
in the transaction that stores the new expiry: the one given (``expires_at``, milliseconds
since the epoch, in the future) or a period from now.
"""

from __future__ import annotations

from typing import Any

from broker.account_validity import AccountValidity
from broker.admin import permissions
from broker.admin.accounts import AdminAccounts
from broker.admin.model import Actor, BadField, check_body
from broker.errors import Conflict
from storage.account_validity import AccountValidityStore


class AccountRenewal:
    def __init__(self, accounts: AdminAccounts, validity: AccountValidity,
                 store: AccountValidityStore) -> None:
        self.accounts = accounts
        self.validity = validity
        self.store = store

    async def renew(self, actor: Actor, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        audit = self.accounts.audit
        async with audit.recording(actor, permissions.USERS_RENEW, user_id) as entry:
            check_body(body, ("expires_at",))
            if not self.validity.enabled:
                raise Conflict("Account validity is not enabled on this node")
            expires_ts = self._expiry(body.get("expires_at"))
            row = await self.accounts.located(entry)
            await self.accounts.authority.require(actor, permissions.USERS_RENEW,
                                                  entry.organisation)
            if row.deactivated:
                raise Conflict(f"{user_id} is deactivated")
            entry.detail["expires_at"] = expires_ts
            await self.store.renew(user_id, expires_ts, entry.draft())
            self.validity.renewed(user_id)
            return {"user_id": user_id, "expires_at": expires_ts}

    def _expiry(self, given: Any) -> int:
        if given is None:
            return self.validity.renewed_expiry()
        if not isinstance(given, int) or isinstance(given, bool) or \
                given <= self.validity.clock.time_ms():
            raise BadField("expires_at", "expected a time in the future, in milliseconds"
                           " since the epoch", errcode="M_INVALID_PARAM")
        return given
