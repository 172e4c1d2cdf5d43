"""HTTP routing: one Twisted resource dispatching to async handlers registered per endpoint.

Handlers are ``async def handler(request, **path_args) -> (status, json_body)`` or return a
:class:`RawResponse` for bytes (media).  A :class:`MatrixError` becomes a Matrix error body; any
other exception is logged and answered with ``M_UNKNOWN`` 500.  Bodies over the configured limit
get 413 before they are parsed (:mod:`broker.http.channel` enforces the HTTP-level limits).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.web import server
from twisted.web.http import Request
from twisted.web.resource import Resource

from broker.http.errors import MatrixError, bad_json, bad_param, unrecognized
from broker.http.strict_json import JsonRefused, encode_json, loads_strict

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Synapse-Trace-Id, Server",
}


@dataclass
class RawResponse:
    """A non-JSON response body (media downloads).

    Big bodies need not sit in memory: give ``stream`` (a coroutine writing the body to the
    request, honouring back-pressure) and its ``length`` instead of ``body``.
    """

    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[Request], Awaitable[None]] | None = None
    length: int | None = None


class Router(Resource):
    """Dispatches every request under this resource by method and path pattern."""

    isLeaf = True

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__()
        self.max_body_bytes = max_body_bytes
        self._routes: list[tuple[str, re.Pattern[str], Handler, int | None]] = []

    def register(
        self, method: str, pattern: str, handler: Handler, *, max_body: int | None = None
    ) -> None:
        """Route ``method`` on ``pattern`` (a regex with named groups that must match the whole
        path: ``$`` would also match before a trailing newline) to ``handler``."""
        self._routes.append((method, re.compile(pattern), handler, max_body))

    def body_limit_for(self, method: str, path: str) -> int:
        """The largest body the route for ``method path`` accepts."""
        for route_method, pattern, _handler, max_body in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return max_body if max_body is not None else self.max_body_bytes
        return self.max_body_bytes

    def _match(self, method: str, path: str) -> tuple[Handler, dict[str, str], int | None]:
        path_matched = False
        for route_method, pattern, handler, max_body in self._routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            path_matched = True
            if route_method == method or (method == "HEAD" and route_method == "GET"):
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                if any("\x00" in value for value in args.values()):
                    raise bad_param("Path segments must not contain NUL")
                return handler, args, max_body
        raise unrecognized(405 if path_matched else 404)

    def render(self, request: Request) -> Any:  # type: ignore[override]
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        if request.method == b"OPTIONS":
            request.setHeader(b"Content-Type", b"application/json")
            return b"{}"
        defer.ensureDeferred(self._handle(request))
        return server.NOT_DONE_YET

    async def _handle(self, request: Request) -> None:
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("utf-8", "replace")
        try:
            handler, args, max_body = self._match(method, path)
            limit = max_body if max_body is not None else self.max_body_bytes
            if getattr(request, "body_too_large", False):
                raise MatrixError(413, "M_TOO_LARGE", f"Request body exceeds {limit} bytes")
            length = request.getHeader(b"content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise MatrixError(413, "M_TOO_LARGE", f"Request body exceeds {limit} bytes")
            if request.content is not None:
                request.content.seek(0, 2)
                if request.content.tell() > limit:
                    raise MatrixError(413, "M_TOO_LARGE", f"Request body exceeds {limit} bytes")
                request.content.seek(0)
            result = await handler(request, **args)
        except MatrixError as e:
            self._respond_json(request, e.status, e.to_json())
            return
        except Exception:
            logger.exception("%s %s failed", method, path)
            self._respond_json(request, 500, {"errcode": "M_UNKNOWN", "error": "Internal error"})
            return
        if isinstance(result, RawResponse):
            await self._respond_raw(request, result)
        else:
            status, body = result
            self._respond_json(request, status, body)

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
    "client": ("/_matrix/client/",),
    "media": ("/_matrix/media/", "/_matrix/client/v1/media/"),
    "federation": ("/_matrix/federation/", "/_matrix/key/"),
}


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
        if path.startswith(self.prefixes) or (self.serves_client and path ==
                                              "/_matrix/client/versions"):
            return self.router.render(request)
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}'


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed strictly (see :mod:`broker.http.strict_json`); a 400 Matrix error
    (M_NOT_JSON or M_BAD_JSON) if it is not acceptable JSON.  Every JSON body the node accepts,
    client or federation, goes through here."""
    try:
        return loads_strict(raw)
    except JsonRefused as e:
        raise MatrixError(400, e.errcode, e.message) from e


def parse_json_body(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (parsed by :func:`parse_json`); M_NOT_JSON otherwise."""
    raw = request.content.read() if request.content is not None else b""
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_json("Request body is empty; expected a JSON object.")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise bad_json("Request body must be a JSON object.")
    return body


def query_arg(request: Request, name: str, default: str | None = None) -> str | None:
    """One query-string argument, decoded."""
    values = request.args.get(name.encode("ascii")) if request.args else None
    if not values:
        return default
    return _decode_arg(name, values[0])


def query_args(request: Request, name: str) -> list[str]:
    values = request.args.get(name.encode("ascii"), []) if request.args else []
    return [_decode_arg(name, v) for v in values]


def _decode_arg(name: str, value: bytes) -> str:
    if b"\x00" in value:
        raise bad_param(f"'{name}' must not contain NUL")
    return value.decode("utf-8", "replace")
