"""``POST /register`` and ``GET /register/available``: open registration of local accounts.

Registration is off unless ``registration.enabled`` is true (403 M_FORBIDDEN otherwise).  It uses
user-interactive auth with the single flow ``m.login.dummy``; the final request must carry the
username (optional: one is generated) and the password again.  Guest accounts are refused with
403 M_GUEST_ACCESS_FORBIDDEN.  Passwords are hashed with Argon2id.
"""

from __future__ import annotations

from typing import Any

from broker.appservice.services import APPSERVICE_LOGIN, AppServices
from broker.client_api import CLIENT_PREFIX
from broker.client_api.login import NewDevice
from broker.client_api.uia import DUMMY, AuthenticatedBody, UserInteractiveAuth
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.http.user_auth import token_from_request
from broker.services.accounts import Accounts, check_new_password

REGISTER_FLOWS = [[DUMMY]]


class Registration(NewDevice, AuthenticatedBody):
    username: str | None = None
    password: str | None = None
    inhibit_login: bool = False
    type: str | None = None  # m.login.application_service: an application service's user


class RegisterEndpoints(Endpoints):
    def __init__(self, accounts: Accounts, uia: UserInteractiveAuth,
                 app_services: AppServices) -> None:
        self.accounts = accounts
        self.uia = uia
        self.app_services = app_services

    @endpoint("POST", f"{CLIENT_PREFIX}/register", access=Access.PUBLIC, body=Registration,
              body_optional=True)
    async def register(self, call: Call, body: Registration) -> tuple[int, dict[str, Any]]:
        if body.type == APPSERVICE_LOGIN:
            return await self._register_for_service(call, body)
        self.accounts.check_registration_open()
        kind = call.arg("kind", "user")
        if kind == "guest":
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
        if kind != "user":
            raise MatrixError(400, "M_INVALID_PARAM", f"Unknown registration kind {kind!r}")
        user_id = self.accounts.user_id_for_username(body.username) if body.username else None
        if user_id is not None:
            self.app_services.refuse_exclusive(user_id)
            await self.accounts.ensure_available(user_id)
        if body.password is not None:
            check_new_password(body.password)

        await self.uia.check(call.request, body.auth, REGISTER_FLOWS)

        # Asked for only now: the first request of a registration carries no password.
        if body.password is None:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'password'")
        user_id = await self.accounts.register(user_id, body.password, call.client_ip)
        if body.inhibit_login:
            return 200, {"user_id": user_id, "home_server": self.accounts.server_name}
        return 200, await self.accounts.new_session(
            user_id, body.device_id, body.initial_device_display_name, call.client_ip)

    async def _register_for_service(self, call: Call, body: Registration
                                    ) -> tuple[int, dict[str, Any]]:
        """A user of an application service's namespace, registered with its as_token
        (open registration is not needed; no password)."""
        user_id = self.accounts.user_id_for_username(body.username) if body.username else None
        user_id = await self.app_services.register(token_from_request(call.request), user_id)
        if body.inhibit_login:
            return 200, {"user_id": user_id, "home_server": self.accounts.server_name}
        return 200, await self.accounts.new_session(
            user_id, body.device_id, body.initial_device_display_name, call.client_ip)

    @endpoint("GET", f"{CLIENT_PREFIX}/register/available", access=Access.PUBLIC,
              rate_limit="registration", rate_scope="available")
    async def available(self, call: Call) -> tuple[int, dict[str, Any]]:
        username = call.arg("username")
        if not username:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'username'")
        user_id = self.accounts.user_id_for_username(username)
        self.app_services.refuse_exclusive(user_id)
        await self.accounts.ensure_available(user_id)
        return 200, {"available": True}
