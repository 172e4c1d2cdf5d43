"""HTTP routing: one Twisted resource dispatching to async handlers registered per endpoint.

Handlers are ``async def handler(request, **path_args) -> (status, json_body)`` or return a
:class:`RawResponse` for bytes (media).  A :class:`MatrixError` becomes a Matrix error body; any
other exception is logged and answered with ``M_UNKNOWN`` 500.  Bodies over the configured limit
get 413 before they are parsed (:mod:`broker.http.channel` enforces the HTTP-level limits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.web import server
from twisted.web.http import Request
from twisted.web.resource import Resource

from broker.errors import DomainError
from broker.http.bodies import read_body, takes_json
from broker.http.endpoint import Call, Endpoints, Route
from broker.http.errors import MatrixError, bad_param, from_domain, unrecognized
from broker.http.route_table import NoRoute, RouteTable, route_label
from broker.raw_response import RawResponse
from protocol.strict_json import encode_json

if TYPE_CHECKING:
    from broker.http.guards import Guards

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
# Told of each answered request: its route's label (:func:`route_label`, or ``UNMATCHED``),
# method (one of ``METHODS``, else ``"other"``), status and seconds taken.
RequestObserver = Callable[[str, str, int, float], None]
UNMATCHED = "unmatched"
METHODS = {m.encode("ascii"): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")}

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Synapse-Trace-Id, Server",
}


class Router(Resource):
    """Dispatches every request under this resource to its declared route.

    Before a handler runs, the route's requirements are enforced: the body limit, then the
    caller's authentication and the rate limit (:class:`broker.http.guards.Guards`), then the
    declared body type (:mod:`broker.http.bodies`), whose checked value the handler receives
    as its ``body`` argument.
    """

    isLeaf = True

    def __init__(self, max_body_bytes: int, guards: Guards | None = None) -> None:
        super().__init__()
        self.max_body_bytes = max_body_bytes
        self.guards = guards
        self.observe: RequestObserver | None = None  # the node's metrics, when wired
        self._table = RouteTable()
        self._labels: dict[str, str] = {}  # pattern -> its metrics label

    def _add(self, route: Route) -> None:
        self._table.add(route)
        self._labels[route.pattern] = route_label(route.pattern)

    def add(self, *groups: Endpoints) -> None:
        """Serve every route the groups declare."""
        for group in groups:
            for route in group.routes():
                self._add(route)

    def register(
        self, method: str, pattern: str, handler: Handler, *, max_body: int | None = None
    ) -> None:
        """Route ``method`` on ``pattern`` to a bare ``handler(request, **args)`` that
        declares no requirements (and so checks them itself)."""
        async def bare(call: Call, **args: str) -> Any:
            return await handler(call.request, **args)

        self._add(Route(method, pattern, bare, None,
                        getattr(handler, "__qualname__", "handler"), max_body))

    def routes(self) -> list[Route]:
        return self._table.routes()

    def compile(self) -> None:
        """Prepare matching once every route is in (a node calls it before serving)."""
        self._table.compile()

    def _limit(self, route: Route) -> int:
        limit = route.requires.body_limit if route.requires else route.undeclared_body_limit
        return limit if limit is not None else self.max_body_bytes

    def body_limit_for(self, method: str, path: str) -> int:
        """The largest body the route for ``method path`` accepts."""
        try:
            route, _args = self._table.match(method, path)
        except NoRoute:
            return self.max_body_bytes
        return self._limit(route)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        try:
            route, args = self._table.match(method, path)
        except NoRoute as e:
            raise unrecognized(405 if e.path_matched else 404) from None
        if any("\x00" in value for value in args.values()):
            raise bad_param("Path segments must not contain NUL")
        return route, args

    def render(self, request: Request) -> Any:  # type: ignore[override]
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        if request.method == b"OPTIONS":
            request.setHeader(b"Content-Type", b"application/json")
            return b"{}"
        defer.ensureDeferred(self._handle(request))
        return server.NOT_DONE_YET

    async def _handle(self, request: Request) -> None:
        started = time.perf_counter()
        route = await self._serve(request)
        observe = self.observe
        if observe is not None:
            observe(self._labels[route.pattern] if route is not None else UNMATCHED,
                    METHODS.get(request.method, "other"), request.code,
                    time.perf_counter() - started)

    async def _serve(self, request: Request) -> Route | None:
        """Answer the request; the route it matched, if any."""
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("utf-8", "replace")
        route: Route | None = None
        try:
            route, args = self._match(method, path)
            self._check_body_size(request, self._limit(route))
            call = await self._admit(route, request)
            requires = route.requires
            if requires is not None and takes_json(requires.body):
                args["body"] = await self._read_body(route, call, args)
            result = await route.handler(call, **args)
        except DomainError as e:
            error = from_domain(e)
            self._respond_json(request, error.status, error.to_json())
            return route
        except MatrixError as e:
            self._respond_json(request, e.status, e.to_json())
            return route
        except Exception:
            logger.exception("%s %s failed", method, path)
            self._respond_json(request, 500, {"errcode": "M_UNKNOWN", "error": "Internal error"})
            return route
        if isinstance(result, RawResponse):
            await self._respond_raw(request, result)
        else:
            status, body = result
            self._respond_json(request, status, body)
        return route

    @staticmethod
    async def _read_body(route: Route, call: Call, args: dict[str, str]) -> Any:
        assert route.requires is not None
        try:
            return read_body(call.request, route.requires.body,
                             optional=route.requires.body_optional)
        except (MatrixError, DomainError) as e:
            if route.body_refused is not None:
                await route.body_refused(call, args,
                                         from_domain(e) if isinstance(e, DomainError) else e)
            raise

    async def _admit(self, route: Route, request: Request) -> Call:
        if route.requires is None:
            return Call(request)
        if self.guards is None:
            raise RuntimeError("the router has no guards to enforce declared requirements")
        return await self.guards.admit(route, request)

    @staticmethod
    def _check_body_size(request: Request, limit: int) -> None:
        length = request.getHeader(b"content-length")
        too_large = getattr(request, "body_too_large", False) or (
            length is not None and length.isdigit() and int(length) > limit)
        if not too_large and request.content is not None:
            request.content.seek(0, 2)
            too_large = request.content.tell() > limit
            request.content.seek(0)
        if too_large:
            raise MatrixError(413, "M_TOO_LARGE", f"Request body exceeds {limit} bytes")

    @staticmethod
    def _respond_json(request: Request, status: int, body: Any) -> None:
        """Answer with ``body``; whatever it holds, the request gets an answer."""
        if request._disconnected:  # the client went away (long-poll cancelled)
            return
        try:
            data = encode_json(body)
        except Exception:
            logger.exception("encoding the response to %s failed", request.path)
            status, data = 500, b'{"errcode":"M_UNKNOWN","error":"Internal error"}'
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
        request.write(data)
        request.finish()

    @staticmethod
    async def _respond_raw(request: Request, response: RawResponse) -> None:
        if request._disconnected:
            return
        streamed = response.stream is not None
        length = response.length if streamed else len(response.body)
        request.setResponseCode(response.status)
        request.setHeader(b"Content-Type", response.content_type.encode("utf-8"))
        if length is not None:
            request.setHeader(b"Content-Length", str(length).encode("ascii"))
        for name, value in response.headers.items():
            request.setHeader(name.encode("ascii"), value.encode("utf-8"))
        if request.method != b"HEAD":
            if response.stream is not None:
                try:
                    await response.stream(request)
                except Exception:
                    # Headers are gone already: all we can do is cut the connection short.
                    logger.exception("streaming %s failed", request.path)
                    request.loseConnection()
                    return
            else:
                request.write(response.body)
        if not request._disconnected:
            request.finish()


RESOURCE_PREFIXES = {
    # The government APIs (the admin API, users' own verification) go with the client API.
    "client": ("/_matrix/client/", "/_broker/"),
    "media": ("/_matrix/media/", "/_matrix/client/v1/media/"),
    "federation": ("/_matrix/federation/", "/_matrix/key/"),
}


# Paths outside the prefixes that a client listener serves: the versions, and the node's health
# for load balancers.
CLIENT_PATHS = frozenset(("/_matrix/client/versions", "/health"))


class ListenerResource(Resource):
    """What one listener serves: the router, limited to the listener's resources."""

    isLeaf = True

    def __init__(self, router: Router, resources: tuple[str, ...]) -> None:
        super().__init__()
        self.router = router
        self.prefixes = tuple(p for r in resources for p in RESOURCE_PREFIXES[r])
        self.serves_client = "client" in resources

    def body_limit_for(self, method: str, path: str) -> int:
        return self.router.body_limit_for(method, path)

    def render(self, request: Request) -> Any:  # type: ignore[override]
        path = request.path.decode("utf-8", "replace")
        if path.startswith(self.prefixes) or (self.serves_client and path in CLIENT_PATHS):
            return self.router.render(request)
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}'
