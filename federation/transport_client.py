"""Outbound Server-Server API requests: X-Matrix signed JSON over TLS to a discovered server.

``FederationClient.get_json/put_json/post_json(destination, path, ...)``:

1. refuse the destination unless ``is_allowed(destination)`` (the federation policy);
2. discover where it lives (``ServerResolver``: IP literal or explicit port, ``.well-known``
   delegation, SRV) to learn the ``Host`` header;
3. sign the request (``protocol.request_auth.sign_request``) unless ``signed=False``;
4. send it with treq through an ``Agent`` whose endpoint factory resolves the candidates to IP
   addresses, drops non-public ones (unless ``allow_private_addresses``) and connects with
   TLS to the checked address, verifying the certificate for the discovered TLS name unless
   ``verify_tls`` is false. URIs use the ``matrix-federation://<destination>`` scheme, so the
   connection pool keeps persistent connections per destination.

A non-2xx answer raises ``HttpResponseError(status, errcode, body)``; a refused destination
``DestinationRefused`` (no connection is attempted). ``path`` must already be percent-encoded
(quote path parameters with ``urllib.parse.quote(value, safe="")``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import treq
from OpenSSL import SSL
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from federation.server_resolver import (
    ServerResolver,
    WellKnownAnswer,
    lookup_srv_with_twisted_names,
    resolve_host_with_reactor,
)
from protocol.discovery import is_ip_literal
from protocol.errors import DestinationRefused, HttpResponseError, InvalidResponseError
from protocol.request_auth import sign_request
from protocol.signing import SigningKey

__all__ = ["FederationClient", "DEFAULT_TIMEOUT", "MAX_RESPONSE_BYTES", "RawAnswer",
           "ResponseTooLarge"]

logger = logging.getLogger(__name__)

SCHEME = "matrix-federation"
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10
WELL_KNOWN_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 50 * 1024 * 1024
MAX_WELL_KNOWN_BYTES = 50 * 1024
USER_AGENT = b"gov-broker"

Args = Mapping[str, str | Sequence[str]]
#: (host to resolve, port, TLS server name)
Target = tuple[str, int, str]


class _BodyTooLarge(Exception):
    pass


ResponseTooLarge = _BodyTooLarge


@dataclass(frozen=True)
class RawAnswer:
    """A non-JSON answer (media): its Content-Type header and its bytes."""

    content_type: str
    body: bytes


def _error_of(code: int, raw: bytes) -> HttpResponseError:
    try:
        parsed: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        parsed = raw.decode("utf-8", "replace")
    errcode = parsed.get("errcode") if isinstance(parsed, dict) else None
    return HttpResponseError(code, errcode if isinstance(errcode, str) else None, parsed)


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTLS:
    """TLS without certificate checks (``federation.verify_tls: false``, test set-ups)."""

    def __init__(self, context: SSL.Context, servername: str) -> None:
        self._context = context
        self._servername = servername

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if not is_ip_literal(self._servername):
            connection.set_tlsext_host_name(self._servername.encode("idna"))
        connection.set_connect_state()
        return connection


@implementer(IStreamClientEndpoint)
class _CheckedEndpoint:
    """Connects to the first reachable address of ``targets`` that the address policy allows."""

    def __init__(self, client: FederationClient, targets: Callable[[], Awaitable[list[Target]]]):
        self._client = client
        self._targets = targets

    def connect(self, protocolFactory: Any) -> defer.Deferred[Any]:
        return defer.ensureDeferred(self._connect(protocolFactory))

    async def _connect(self, factory: Any) -> Any:
        client = self._client
        last_error: Exception | None = None
        for host, port, tls_name in await self._targets():
            try:
                addresses = await client.resolver.addresses(host, port)
            except DestinationRefused as exc:
                last_error = exc
                continue
            for address in addresses:
                endpoint_type = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
                tcp: Any = endpoint_type(client.reactor, address, port, timeout=CONNECT_TIMEOUT)
                endpoint: Any = wrapClientTLS(client.tls_connection_creator(tls_name), tcp)
                try:
                    return await endpoint.connect(factory)
                except defer.CancelledError:
                    raise
                except Exception as exc:
                    logger.debug("connecting to %s:%d (%s) failed: %s", address, port, host, exc)
                    last_error = exc
        raise last_error or DestinationRefused("no address to connect to")


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    def __init__(self, client: FederationClient) -> None:
        self._client = client

    def endpointForURI(self, uri: Any) -> _CheckedEndpoint:
        client = self._client
        if uri.scheme == SCHEME.encode("ascii"):
            destination = uri.netloc.decode("ascii")

            async def federation_targets() -> list[Target]:
                candidates = await client.resolver.discover(destination)
                return [(c.host, c.port, c.tls_servername) for c in candidates]

            return _CheckedEndpoint(client, federation_targets)
        if uri.scheme == b"https":  # .well-known lookups (and their redirects)
            host = uri.host.decode("ascii").strip("[]")
            port = int(uri.port)

            async def https_target() -> list[Target]:
                return [(host, port, host)]

            return _CheckedEndpoint(client, https_target)
        raise DestinationRefused(f"refusing {uri.scheme.decode('ascii', 'replace')} URI")


async def _read_body(response: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0

    def collect(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > limit:
            raise _BodyTooLarge(f"response body exceeds {limit} bytes")
        chunks.append(data)

    await treq.collect(response, collect)
    return b"".join(chunks)


class FederationClient:
    """Signed JSON requests to other servers, with discovery, TLS and address policy."""

    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        reactor: Any,
        clock: Any,
        is_allowed: Callable[[str], bool],
        allow_private_addresses: bool,
        verify_tls: bool,
        *,
        resolver: ServerResolver | None = None,
        max_persistent_per_destination: int = 4,
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.reactor = reactor
        self.clock = clock
        self.is_allowed = is_allowed
        self.verify_tls = verify_tls
        self.resolver = resolver or ServerResolver(
            clock,
            fetch_well_known=self._fetch_well_known,
            lookup_srv=lookup_srv_with_twisted_names,
            resolve_host=resolve_host_with_reactor(reactor),
            allow_private_addresses=allow_private_addresses,
        )
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = max_persistent_per_destination
        self._pool.retryAutomatically = False  # a PUT /send must not be replayed blindly
        self._http = HTTPClient(Agent.usingEndpointFactory(reactor, _EndpointFactory(self),
                                                           pool=self._pool))
        self._unverified_context: SSL.Context | None = None

    # TLS ------------------------------------------------------------------------------------
    def tls_connection_creator(self, servername: str) -> Any:
        """How to start TLS with a peer whose certificate must name ``servername``."""
        if self.verify_tls:
            return optionsForClientTLS(servername)
        if self._unverified_context is None:
            self._unverified_context = CertificateOptions(verify=False).getContext()
        return _UnverifiedTLS(self._unverified_context, servername)

    # Requests -------------------------------------------------------------------------------
    async def get_json(
        self, destination: str, path: str, args: Args | None = None, *, signed: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """GET ``path`` (percent-encoded) on ``destination``; the parsed JSON answer."""
        return await self.request("GET", destination, path, args, None, signed, timeout)

    async def put_json(
        self, destination: str, path: str, content: Any, args: Args | None = None, *,
        signed: bool = True, timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """PUT a JSON body; the parsed JSON answer."""
        return await self.request("PUT", destination, path, args, content, signed, timeout)

    async def post_json(
        self, destination: str, path: str, content: Any, args: Args | None = None, *,
        signed: bool = True, timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """POST a JSON body; the parsed JSON answer."""
        return await self.request("POST", destination, path, args, content, signed, timeout)

    async def get_raw(
        self, destination: str, path: str, args: Args | None = None, *, limit: int,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RawAnswer:
        """A signed GET whose answer is not JSON (media): its Content-Type and bytes, at most
        ``limit`` of them (``ResponseTooLarge`` beyond)."""
        answer: RawAnswer = await self.request("GET", destination, path, args, None, True,
                                               timeout, limit=limit, raw_answer=True)
        return answer

    async def request(
        self, method: str, destination: str, path: str, args: Args | None, content: Any,
        signed: bool, timeout: float, *, limit: int = MAX_RESPONSE_BYTES,
        raw_answer: bool = False,
    ) -> Any:
        """One request with a deadline covering discovery, connecting and the whole body."""
        if destination == self.server_name:
            raise DestinationRefused("refusing to send a federation request to ourselves")
        if not self.is_allowed(destination):
            raise DestinationRefused(f"federation with {destination} is not allowed")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        d = defer.ensureDeferred(self._request(method, destination, path, args, content, signed,
                                               limit, raw_answer))
        d.addTimeout(timeout, self.reactor)
        return await d

    async def _request(
        self, method: str, destination: str, path: str, args: Args | None, content: Any,
        signed: bool, limit: int = MAX_RESPONSE_BYTES, raw_answer: bool = False,
    ) -> Any:
        try:
            candidates = await self.resolver.discover(destination)
        except ValueError as exc:
            raise DestinationRefused(str(exc)) from exc
        query = urlencode(
            [(k, v) for k, vs in (args or {}).items()
             for v in ([vs] if isinstance(vs, str) else vs)]
        )
        uri = path + ("?" + query if query else "")
        headers = Headers({
            b"Host": [candidates[0].host_header.encode("ascii")],
            b"User-Agent": [USER_AGENT],
        })
        body: bytes | None = None
        if content is not None:
            body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers.setRawHeaders(b"Content-Type", [b"application/json"])
        if signed:
            header = sign_request(self.server_name, destination, method, uri, content,
                                  self.signing_key)
            headers.setRawHeaders(b"Authorization", [header.encode("utf-8")])
        response = await self._http.request(
            method, f"{SCHEME}://{destination}{uri}", headers=headers, data=body,
            allow_redirects=False, unbuffered=True, reactor=self.reactor,
        )
        raw = await _read_body(response, limit)
        if raw_answer:
            if not 200 <= response.code < 300:
                raise _error_of(response.code, raw)
            types = response.headers.getRawHeaders(b"content-type") or [b""]
            return RawAnswer(types[0].decode("latin-1"), raw)
        try:
            parsed: Any = json.loads(raw) if raw else None
            is_json = True
        except (ValueError, UnicodeDecodeError):
            parsed, is_json = raw.decode("utf-8", "replace"), False
        if not 200 <= response.code < 300:
            errcode = parsed.get("errcode") if isinstance(parsed, dict) else None
            raise HttpResponseError(response.code, errcode if isinstance(errcode, str) else None,
                                    parsed)
        if not is_json:
            raise InvalidResponseError(
                f"{method} {path} on {destination}: answer is not JSON ({response.code})"
            )
        return parsed

    async def _fetch_well_known(self, hostname: str) -> WellKnownAnswer:
        async def fetch() -> WellKnownAnswer:
            shown = f"[{hostname}]" if ":" in hostname else hostname
            response = await self._http.request(
                "GET", f"https://{shown}/.well-known/matrix/server",
                headers=Headers({b"User-Agent": [USER_AGENT]}), allow_redirects=True, unbuffered=True,
                reactor=self.reactor,
            )
            body = await _read_body(response, MAX_WELL_KNOWN_BYTES)
            cache_control = response.headers.getRawHeaders(b"cache-control")
            return WellKnownAnswer(
                response.code, body,
                b", ".join(cache_control).decode("latin-1") if cache_control else None,
            )

        d = defer.ensureDeferred(fetch())
        d.addTimeout(WELL_KNOWN_TIMEOUT, self.reactor)
        return await d

    async def close(self) -> None:
        """Close the pooled connections (on shutdown)."""
        await self._pool.closeCachedConnections()
