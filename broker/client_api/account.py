"""The logged-in account: ``/account/whoami``, ``/logout``, ``/logout/all``,
``/account/password`` and ``/account/deactivate``.

Changing the password and deactivating need user-interactive auth with ``m.login.password``
(the current password of the logged-in user).  Changing the password also takes
``m.login.email.identity`` (a code sent to the account's official email, see
:mod:`broker.client_api.password_email`), with or without an access token, when the node sends
email (``email.smtp.host``): that is how an account created without a password gets its first
one, and how a forgotten one is replaced.  Every revoked token is also dropped from the
node's token cache, so it stops working at once.
"""

from __future__ import annotations

from typing import Any

from broker.admin.password_by_email import PasswordByEmail
from broker.client_api import CLIENT_PREFIX
from broker.client_api.uia import (
    EMAIL_IDENTITY,
    PASSWORD,
    AuthenticatedBody,
    UserInteractiveAuth,
)
from broker.errors import Unauthenticated
from broker.http.bodies import NoBody
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.accounts import Accounts, check_new_password

PASSWORD_FLOWS = [[PASSWORD]]
CHANGE_FLOWS = [[PASSWORD], [EMAIL_IDENTITY]]  # with an access token
RESET_FLOWS = [[EMAIL_IDENTITY]]  # without one


class PasswordChange(AuthenticatedBody):
    new_password: str
    logout_devices: bool = True


class Deactivation(AuthenticatedBody):
    erase: bool = False
    id_server: str | None = None


class AccountEndpoints(Endpoints):
    def __init__(self, accounts: Accounts, uia: UserInteractiveAuth,
                 by_email: PasswordByEmail, sends_email: bool) -> None:
        self.accounts = accounts
        self.uia = uia
        self.by_email = by_email
        self.sends_email = sends_email  # without email, the password stage alone

    @endpoint("GET", f"{CLIENT_PREFIX}/account/whoami", access=Access.USER)
    async def whoami(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"user_id": call.user.user_id, "device_id": call.user.device_id,
                     "is_guest": False}

    @endpoint("POST", f"{CLIENT_PREFIX}/logout", access=Access.USER, body=NoBody,
              allow_expired=True)
    async def logout(self, call: Call) -> tuple[int, dict[str, Any]]:
        await self.accounts.logout(call.user)
        return 200, {}

    @endpoint("POST", f"{CLIENT_PREFIX}/logout/all", access=Access.USER, body=NoBody,
              allow_expired=True)
    async def logout_all(self, call: Call) -> tuple[int, dict[str, Any]]:
        await self.accounts.logout_all(call.user)
        return 200, {}

    @endpoint("POST", f"{CLIENT_PREFIX}/account/password", access=Access.ANYONE_OR_USER,
              body=PasswordChange)
    async def change_password(self, call: Call, body: PasswordChange
                              ) -> tuple[int, dict[str, Any]]:
        check_new_password(body.new_password)
        requester = call.requester
        if not self.sends_email:
            if requester is None:
                raise Unauthenticated("Missing access token", errcode="M_MISSING_TOKEN")
            flows = PASSWORD_FLOWS
        else:
            flows = CHANGE_FLOWS if requester else RESET_FLOWS
        completed = await self.uia.check(call.request, body.auth, flows, requester=requester)
        if EMAIL_IDENTITY in completed:
            assert body.auth is not None and body.auth.threepid_creds is not None
            creds = body.auth.threepid_creds
            await self.by_email.set_password(
                call.client_ip, (creds.sid, creds.client_secret), completed[EMAIL_IDENTITY],
                body.new_password, body.logout_devices,
                requester.device_id if requester else None)
        else:
            assert requester is not None
            await self.accounts.change_password(requester, body.new_password,
                                                body.logout_devices)
        return 200, {}

    @endpoint("POST", f"{CLIENT_PREFIX}/account/deactivate", access=Access.USER,
              body=Deactivation, body_optional=True)
    async def deactivate(self, call: Call, body: Deactivation) -> tuple[int, dict[str, Any]]:
        await self.uia.check(call.request, body.auth, PASSWORD_FLOWS, requester=call.user)
        await self.accounts.deactivate(call.user, body.erase)
        # No identity server is ever bound to accounts on this node.
        return 200, {"id_server_unbind_result": "no-support"}
