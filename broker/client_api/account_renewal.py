"""``GET /_broker/client/v1/account_validity/renew?token=``: the link of a renewal email
renews the account it was sent to (:meth:`broker.account_validity.AccountValidity.renew_by_token`).

Open to anyone (it is clicked from a mail reader, without a session); the token, 256 random
bits sent only to the account's official email and stored hashed, is the credential.  A GET,
as the link of Synapse's renewal emails is, so a mail reader can open it.
"""

from __future__ import annotations

from typing import Any

from broker.account_validity import RENEW_PATH, AccountValidity
from broker.http.endpoint import Access, Call, Endpoints, endpoint


class AccountRenewalEndpoints(Endpoints):
    def __init__(self, validity: AccountValidity) -> None:
        self.validity = validity

    @endpoint("GET", RENEW_PATH, access=Access.PUBLIC, rate_limit="login",
              rate_scope="account_renewal")
    async def renew(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, await self.validity.renew_by_token(call.arg("token") or "", call.client_ip)
