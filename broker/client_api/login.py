"""``GET/POST /login``: password login, giving a device an access token.

The user may be named by ``identifier`` {type ``m.id.user``, user} or the legacy ``user`` field, as a
localpart or a full user ID.  Attempts are rate-limited per client address and per user
(``rate_limits.login``).  A wrong password (or an unknown user) is 403 M_FORBIDDEN; a deactivated
account is 403 M_USER_DEACTIVATED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.client_api.uia import PASSWORD, check_password, user_id_from_identifier
from broker.http.errors import MatrixError, forbidden
from broker.http.parsing import parse_json_body
from broker.http.validation import optional, require

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

MAX_DEVICE_ID_LENGTH = 255
MAX_DEVICE_NAME_LENGTH = 100


def client_ip(request: Request) -> str:
    """The address the request came from (the key for per-address rate limits)."""
    address = request.getClientAddress()
    return str(getattr(address, "host", "") or "unknown")


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


async def session_response(
    node: Node, request: Request, user_id: str, device_id: str | None, name: str | None
) -> dict[str, Any]:
    """A new access token for ``user_id`` as the body of a login or register response."""
    token, device_id = await node.auth.create_session(user_id, device_id, name, client_ip(request))
    response: dict[str, Any] = {"user_id": user_id, "access_token": token,
                                "device_id": device_id, "home_server": node.server_name}
    if node.config.public_baseurl:
        response["well_known"] = {"m.homeserver": {"base_url": node.config.public_baseurl}}
    return response


def register_servlets(node: Node, router: Router) -> None:
    async def get_flows(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"flows": [{"type": PASSWORD}]}

    async def login(request: Request) -> tuple[int, dict[str, Any]]:
        node.ratelimiter.check("login", f"ip:{client_ip(request)}")
        body = parse_json_body(request)
        kind = require(body, "type", str)
        if kind != PASSWORD:
            raise MatrixError(400, "M_UNKNOWN", f"Unknown login type {kind!r}")
        user_id = user_id_from_identifier(node, body)
        password = require(body, "password", str)
        device_id, name = device_fields(body)
        node.ratelimiter.check("login", f"user:{user_id}")
        if not await check_password(node, user_id, password):
            user = await node.stores.users.get_user(user_id)
            if user is not None and user["deactivated"]:
                raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
            raise forbidden("Invalid username or password")
        return 200, await session_response(node, request, user_id, device_id, name)

    router.register("GET", f"{CLIENT_PREFIX}/login", get_flows)
    router.register("POST", f"{CLIENT_PREFIX}/login", login)
