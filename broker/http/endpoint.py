"""Declared endpoints: each says its path, methods and requirements; the router enforces them.

An API area is a class deriving :class:`Endpoints` whose constructor takes the services it
needs (nothing else) and whose handlers are methods marked with :func:`endpoint`::

    class Tags(Endpoints):
        def __init__(self, account_data: AccountDataService) -> None: ...

        @endpoint("GET", TAGS_PATH, access=Access.USER)
        async def get_tags(self, call: Call, user_id: str, room_id: str) -> Reply: ...

Requirements are declared, never checked by the handler: who may call (``access``: nobody in
particular, a user, a node admin, a signed server), the rate-limit class the call takes from,
the largest body it accepts and the type of that body (``body``, see :mod:`broker.http.bodies`;
``body_optional``: an empty body counts as ``{}``).  The router authenticates, rate-limits,
limits the body and validates it before the handler runs, and hands it a :class:`Call` holding
who is calling (and, for a JSON body, the checked body as its ``body`` argument).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.web.http import Request

from broker.http.bodies import UNDECLARED, BodyType
from broker.http.errors import MatrixError
from broker.http.parsing import query_arg

if TYPE_CHECKING:
    from broker.auth import Requester

Reply = Any  # (status, json body) or a RawResponse
Handler = Callable[..., Awaitable[Reply]]
BodyRefused = Callable[["Call", dict[str, str], MatrixError], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


class Access(enum.Enum):
    """Who may call an endpoint."""

    PUBLIC = "public"  # anyone: no credential is read
    ANYONE_OR_USER = "anyone_or_user"  # anyone; an access token, if given, must be valid
    USER = "user"  # a user's access token
    ADMIN = "admin"  # the access token of a node admin
    SERVER = "server"  # a request signed by another server (X-Matrix)
    APP = "app"  # an eGov application's API token (``/_broker/apps/v1``)


@dataclass(frozen=True)
class RateLimitClass:
    """Which bucket a call takes a token from: ``action`` names a limit in the config
    (``rate_limits``); ``scope`` separates endpoints that share a limit but not a bucket.
    Users are counted by user ID (node admins are exempt), anyone else by address."""

    action: str
    scope: str = ""


@dataclass(frozen=True)
class Requirements:
    access: Access
    rate_limit: RateLimitClass | None = None
    body_limit: int | None = None  # bytes; None: the node's max_request_body_bytes
    body: BodyType = UNDECLARED
    body_optional: bool = False  # an empty body counts as an empty object
    allow_expired: bool = False  # an expired account may call it (logout)


@dataclass(frozen=True)
class Route:
    """One method on one path pattern (a regex with named groups matching the whole path)."""

    method: str
    pattern: str
    handler: Handler
    requires: Requirements | None  # None: registered bare, checks its own requirements
    name: str
    undeclared_body_limit: int | None = None
    #: Told of a body the declared type refused, before the refusal is answered.
    body_refused: BodyRefused | None = None


@dataclass(frozen=True)
class _Declaration:
    methods: tuple[str, ...]
    pattern: str
    requires: Requirements


def endpoint(methods: str | tuple[str, ...], pattern: str, *, access: Access,
             rate_limit: str | None = None, rate_scope: str = "",
             body_limit: int | None = None, body: BodyType = UNDECLARED,
             body_optional: bool = False, allow_expired: bool = False) -> Callable[[F], F]:
    """Declare the decorated method as the handler of ``methods`` on ``pattern``.  A handler
    may carry several declarations (the same operation under two paths).  ``allow_expired``:
    an account whose validity has passed may still call it."""
    names = (methods,) if isinstance(methods, str) else methods
    requires = Requirements(
        access, RateLimitClass(rate_limit, rate_scope) if rate_limit else None, body_limit,
        body, body_optional, allow_expired)

    def declare(func: F) -> F:
        declarations = list(getattr(func, "__endpoints__", ()))
        declarations.append(_Declaration(names, pattern, requires))
        func.__endpoints__ = declarations  # type: ignore[attr-defined]
        return func

    return declare


class Endpoints:
    """A small group of endpoints of one area; :meth:`routes` lists what it declares."""

    def routes(self) -> list[Route]:
        found: list[Route] = []
        for attribute in dir(type(self)):
            func = getattr(type(self), attribute, None)
            for declaration in getattr(func, "__endpoints__", ()):
                handler = getattr(self, attribute)
                name = f"{type(self).__name__}.{attribute}"
                refused = functools.partial(self.body_refused, attribute)
                found.extend(Route(method, declaration.pattern, handler, declaration.requires,
                                   name, body_refused=refused)
                             for method in declaration.methods)
        return found

    async def body_refused(self, handler: str, call: Call, args: dict[str, str],
                           error: MatrixError) -> None:
        """The body of a call to ``handler`` (a method name) with path arguments ``args`` was
        refused with ``error``, which the client gets next.  Nothing by default (a group that
        records refusals, as the admin API does, says so here)."""


@dataclass
class Call:
    """One request as a handler sees it: the HTTP request and who is calling."""

    request: Request
    requester: Requester | None = None
    origin: str | None = None
    app: Any = None  # the calling application (``Access.APP``), as its authenticator gives it

    @property
    def user(self) -> Requester:
        """The authenticated user (every ``Access.USER``/``ADMIN`` handler has one)."""
        if self.requester is None:
            raise RuntimeError("the endpoint does not declare user access")
        return self.requester

    @property
    def server(self) -> str:
        """The signing origin server (every ``Access.SERVER`` handler has one)."""
        if self.origin is None:
            raise RuntimeError("the endpoint does not declare server access")
        return self.origin

    def arg(self, name: str, default: str | None = None) -> str | None:
        return query_arg(self.request, name, default)

    @property
    def client_ip(self) -> str:
        address = self.request.getClientAddress()
        return str(getattr(address, "host", "") or "unknown")
