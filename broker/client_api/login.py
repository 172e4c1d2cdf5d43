"""``GET/POST /login``: password login, giving a device an access token.

The user may be named by ``identifier`` {type ``m.id.user``, user} or the legacy ``user`` field, as a
localpart or a full user ID.  Attempts are rate-limited per client address and per user
(``rate_limits.login``).  A wrong password (or an unknown user) is 403 M_FORBIDDEN; a deactivated
account is 403 M_USER_DEACTIVATED.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.client_api.uia import PASSWORD, user_id_from_identifier
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.http.validation import optional, require
from broker.services.accounts import Accounts, Credentials

MAX_DEVICE_ID_LENGTH = 255
MAX_DEVICE_NAME_LENGTH = 100
LOGIN = f"{CLIENT_PREFIX}/login"


def device_fields(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The optional ``device_id`` and ``initial_device_display_name`` of a login or register
    request, checked (400 M_INVALID_PARAM when empty or too long)."""
    device_id = optional(body, "device_id", str)
    if device_id is not None and not 0 < len(device_id) <= MAX_DEVICE_ID_LENGTH:
        raise MatrixError(400, "M_INVALID_PARAM",
                          f"'device_id' must be 1 to {MAX_DEVICE_ID_LENGTH} characters")
    name = optional(body, "initial_device_display_name", str)
    if name is not None and len(name) > MAX_DEVICE_NAME_LENGTH:
        raise MatrixError(400, "M_INVALID_PARAM", "'initial_device_display_name' is too long")
    return device_id, name


class LoginEndpoints(Endpoints):
    def __init__(self, credentials: Credentials, accounts: Accounts) -> None:
        self.credentials = credentials
        self.accounts = accounts

    @endpoint("GET", LOGIN, access=Access.PUBLIC)
    async def get_flows(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"flows": [{"type": PASSWORD}]}

    @endpoint("POST", LOGIN, access=Access.PUBLIC, rate_limit="login")
    async def login(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.json()
        kind = require(body, "type", str)
        if kind != PASSWORD:
            raise MatrixError(400, "M_UNKNOWN", f"Unknown login type {kind!r}")
        user_id = user_id_from_identifier(self.credentials, body)
        password = require(body, "password", str)
        device_id, name = device_fields(body)
        await self.credentials.login(user_id, password)
        return 200, await self.accounts.new_session(user_id, device_id, name, call.client_ip)
