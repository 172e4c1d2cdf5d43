"""Enforcing a route's declared requirements before its handler runs.

:class:`Guards` admits a request to a route: it authenticates the caller the way the route's
``access`` says (an access token, a node admin's token, an X-Matrix signature), then takes a
token from the route's rate-limit class.  A user whose account has expired (account
validity) is refused unless the route allows it.  What it learns goes into the :class:`Call` the
handler receives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from twisted.web.http import Request

from broker.http.endpoint import Access, Call, Route
from broker.http.errors import MatrixError, forbidden

if TYPE_CHECKING:
    from broker.auth import Requester


class UserAuthenticator(Protocol):
    async def get_requester(self, request: Request) -> Requester: ...

    def has_credential(self, request: Request) -> bool: ...

    def expired(self, requester: Requester) -> bool: ...


class Limiter(Protocol):
    def check(self, action: str, key: str, *, exempt: bool = False) -> None: ...


# Synapse's code for an account whose validity has passed, which clients know.
EXPIRED_ERRCODE = "ORG_MATRIX_EXPIRED_ACCOUNT"

ServerAuthenticator = Callable[[Request], Awaitable[str]]


class AppAuthenticator(Protocol):
    """Who an application request comes from (``Access.APP``)."""

    def app_of(self, request: Request) -> object: ...  # Unauthenticated if nobody

    def rate_key(self, app: object) -> str: ...


class Guards:
    def __init__(self, users: UserAuthenticator, limiter: Limiter,
                 servers: ServerAuthenticator | None = None) -> None:
        self.users = users
        self.limiter = limiter
        self.servers = servers
        self.apps: AppAuthenticator | None = None  # set when the node serves applications

    async def admit(self, route: Route, request: Request) -> Call:
        """The call for ``request``, or the Matrix error that refuses it."""
        call = Call(request)
        requires = route.requires
        if requires is None:
            return call
        access = requires.access
        if access is Access.USER or access is Access.ADMIN:
            call.requester = await self.users.get_requester(request)
            if access is Access.ADMIN and not call.requester.is_admin:
                raise forbidden("You are not a server admin")
        elif access is Access.ANYONE_OR_USER:
            if self.users.has_credential(request):
                call.requester = await self.users.get_requester(request)
        elif access is Access.SERVER:
            if self.servers is None:
                raise MatrixError(404, "M_UNRECOGNIZED", "Federation is not enabled")
            call.origin = await self.servers(request)
        elif access is Access.APP:
            if self.apps is None:
                raise MatrixError(404, "M_UNRECOGNIZED", "Applications are not served here")
            call.app = self.apps.app_of(request)
        if call.requester is not None and not requires.allow_expired \
                and self.users.expired(call.requester):
            raise MatrixError(403, EXPIRED_ERRCODE, "User account has expired")
        limit = requires.rate_limit
        if limit is not None:
            if call.requester is not None:
                key = call.requester.user_id
                exempt = call.requester.is_admin or call.requester.rate_exempt
            elif call.app is not None and self.apps is not None:
                key, exempt = self.apps.rate_key(call.app), False
            else:
                key, exempt = f"ip:{call.client_ip}", False
            if limit.scope:
                key = f"{limit.scope}:{key}"
            self.limiter.check(limit.action, key, exempt=exempt)
        return call
