"""``GET/POST /login``: password login, giving a device an access token.

The user may be named by ``identifier`` {type ``m.id.user``, user} or the legacy ``user`` field, as a
localpart or a full user ID.  Attempts are rate-limited per client address and per user
(``rate_limits.login``).  A wrong password (or an unknown user) is 403 M_FORBIDDEN; a deactivated
account is 403 M_USER_DEACTIVATED.  An application service logs in a user of its namespace with
``type: m.login.application_service`` and its as_token (offered when services are configured).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints, model_validator

from broker.appservice.services import APPSERVICE_LOGIN, AppServices
from broker.client_api import CLIENT_PREFIX
from broker.client_api.uia import PASSWORD, NamesUser, user_id_from_identifier
from broker.errors import MissingInput
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.http.user_auth import token_from_request
from broker.services.accounts import Accounts, Credentials

MAX_DEVICE_ID_LENGTH = 255
MAX_DEVICE_NAME_LENGTH = 100
LOGIN = f"{CLIENT_PREFIX}/login"

#: A device name a client chooses (400 M_INVALID_PARAM when too long).
DeviceName = Annotated[str, StringConstraints(max_length=MAX_DEVICE_NAME_LENGTH)]


class NewDevice(Body):
    """The optional device of a login or register request."""

    device_id: Annotated[str, StringConstraints(min_length=1,
                                                max_length=MAX_DEVICE_ID_LENGTH)] | None = None
    initial_device_display_name: DeviceName | None = None


class LoginBody(NewDevice, NamesUser):
    type: str
    password: str | None = None

    @model_validator(mode="after")
    def _password_login(self) -> LoginBody:
        if self.type == APPSERVICE_LOGIN:
            return self
        if self.type != PASSWORD:
            raise MatrixError(400, "M_UNKNOWN", f"Unknown login type {self.type!r}")
        if self.password is None:
            raise MissingInput("Missing 'password'")
        return self


class LoginEndpoints(Endpoints):
    def __init__(self, credentials: Credentials, accounts: Accounts,
                 app_services: AppServices) -> None:
        self.credentials = credentials
        self.accounts = accounts
        self.app_services = app_services

    @endpoint("GET", LOGIN, access=Access.PUBLIC)
    async def get_flows(self, call: Call) -> tuple[int, dict[str, Any]]:
        flows = [{"type": PASSWORD}]
        if self.app_services:
            flows.append({"type": APPSERVICE_LOGIN})
        return 200, {"flows": flows}

    @endpoint("POST", LOGIN, access=Access.PUBLIC, rate_limit="login", body=LoginBody)
    async def login(self, call: Call, body: LoginBody) -> tuple[int, dict[str, Any]]:
        user_id = user_id_from_identifier(self.credentials, body)
        if body.type == APPSERVICE_LOGIN:
            await self.app_services.login(token_from_request(call.request), user_id)
        else:
            assert body.password is not None  # a password login (checked by the body type)
            await self.credentials.login(user_id, body.password)
        return 200, await self.accounts.new_session(
            user_id, body.device_id, body.initial_device_display_name, call.client_ip)
