"""``POST /register`` and ``GET /register/available``: open registration of local accounts.

Registration is off unless ``registration.enabled`` is true (403 M_FORBIDDEN otherwise).  It uses
user-interactive auth with the single flow ``m.login.dummy``; the final request must carry the
username (optional: one is generated) and the password again.  Guest accounts are refused with
403 M_GUEST_ACCESS_FORBIDDEN.  Passwords are hashed with Argon2id.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.client_api.login import client_ip, device_fields, session_response
from broker.client_api.uia import DUMMY, uia_for
from broker.http.errors import MatrixError, forbidden
from broker.http.parsing import parse_json_body, query_arg
from broker.http.validation import optional
from protocol.identifiers import is_new_localpart
from storage.database import IntegrityError

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 512
MAX_USER_ID_LENGTH = 255
REGISTER_FLOWS = [[DUMMY]]


def check_new_password(password: str) -> None:
    """The password policy for new passwords: 400 M_WEAK_PASSWORD if too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise MatrixError(400, "M_WEAK_PASSWORD",
                          f"Password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MatrixError(400, "M_INVALID_PARAM",
                          f"Password must be at most {MAX_PASSWORD_LENGTH} characters")


def user_id_for_username(node: Node, username: str) -> str:
    """The user ID a requested username gives (lower-cased), or 400 M_INVALID_USERNAME."""
    localpart = username.lower()
    if not is_new_localpart(localpart):
        raise MatrixError(400, "M_INVALID_USERNAME",
                          "User names may only contain a-z, 0-9, '.', '_', '=', '-', '/' and '+'")
    user_id = node.user_id(localpart)
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise MatrixError(400, "M_INVALID_USERNAME",
                          f"User IDs may be at most {MAX_USER_ID_LENGTH} characters")
    return user_id


async def ensure_available(node: Node, user_id: str) -> None:
    """400 M_USER_IN_USE if the account exists (deactivated accounts keep their name)."""
    if await node.stores.users.get_user(user_id) is not None:
        raise MatrixError(400, "M_USER_IN_USE", "User ID already taken")


async def _create(node: Node, user_id: str | None, password_hash: str) -> str:
    """Create the account (a generated name when ``user_id`` is None); the ID created."""
    for _ in range(10):
        candidate = user_id or node.user_id("u" + secrets.token_hex(6))
        try:
            await node.stores.users.create_user(candidate, password_hash, node.clock.time_ms())
            return candidate
        except IntegrityError:
            if user_id is not None:
                raise MatrixError(400, "M_USER_IN_USE", "User ID already taken") from None
    raise MatrixError(500, "M_UNKNOWN", "Could not generate a free user name")


def register_servlets(node: Node, router: Router) -> None:
    async def register(request: Request) -> tuple[int, dict[str, Any]]:
        if not node.config.registration_enabled:
            raise forbidden("Registration is disabled")
        kind = query_arg(request, "kind", "user")
        if kind == "guest":
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
        if kind != "user":
            raise MatrixError(400, "M_INVALID_PARAM", f"Unknown registration kind {kind!r}")
        body = parse_json_body(request, allow_empty=True)
        username = optional(body, "username", str)
        password = optional(body, "password", str)
        inhibit_login = optional(body, "inhibit_login", bool, False)
        device_id, name = device_fields(body)
        user_id = user_id_for_username(node, username) if username else None
        if user_id is not None:
            await ensure_available(node, user_id)
        if password is not None:
            check_new_password(password)

        await uia_for(node).check(request, body, REGISTER_FLOWS)

        if password is None:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'password'")
        node.ratelimiter.check("registration", f"ip:{client_ip(request)}")
        password_hash = await node.auth.passwords.hash(password)
        user_id = await _create(node, user_id, password_hash)
        if inhibit_login:
            return 200, {"user_id": user_id, "home_server": node.server_name}
        return 200, await session_response(node, request, user_id, device_id, name)

    async def available(request: Request) -> tuple[int, dict[str, Any]]:
        node.ratelimiter.check("registration", f"available:{client_ip(request)}")
        username = query_arg(request, "username")
        if not username:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'username'")
        await ensure_available(node, user_id_for_username(node, username))
        return 200, {"available": True}

    router.register("POST", f"{CLIENT_PREFIX}/register", register)
    router.register("GET", f"{CLIENT_PREFIX}/register/available", available)
