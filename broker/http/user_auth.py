"""Who a Client-Server request comes from: its access token (``Authorization: Bearer`` or the
deprecated ``access_token`` query argument), resolved by :class:`broker.auth.Auth`."""

from __future__ import annotations

from collections.abc import Callable

from twisted.web.http import Request

from broker.appservice.services import AppServices
from broker.auth import Auth, Requester
from broker.errors import Unauthenticated
from broker.http.parsing import query_arg


def token_from_request(request: Request) -> str | None:
    header = request.getHeader(b"authorization")
    if header:
        scheme, _, value = header.decode("utf-8", "replace").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthenticated("Authorization header is not a Bearer token",
                              errcode="M_MISSING_TOKEN")
    return query_arg(request, "access_token")


class RequestUsers:
    """The user authenticator the router's guards use; ``expired`` says whose account
    validity has passed (None: accounts do not expire); an application service's as_token
    is resolved by ``app_services`` (masquerading with ``?user_id=``)."""

    def __init__(self, auth: Auth, expired: Callable[[Requester], bool] | None = None,
                 app_services: AppServices | None = None) -> None:
        self.auth = auth
        self._expired = expired
        self.app_services = app_services

    def expired(self, requester: Requester) -> bool:
        return self._expired is not None and self._expired(requester)

    @staticmethod
    def has_credential(request: Request) -> bool:
        """Whether the request carries an access token (valid or not)."""
        return bool(request.getHeader(b"authorization")) or bool(
            request.args and b"access_token" in request.args)

    async def get_requester(self, request: Request) -> Requester:
        """The requester, or Unauthenticated (M_MISSING_TOKEN / M_UNKNOWN_TOKEN)."""
        token = token_from_request(request)
        if not token:
            raise Unauthenticated("Missing access token", errcode="M_MISSING_TOKEN")
        if self.app_services:
            service = self.app_services.for_token(token)
            if service is not None:
                return await self.app_services.requester(service, query_arg(request, "user_id"))
        address = request.getClientAddress()
        return await self.auth.requester_seen_at(token, getattr(address, "host", None))
