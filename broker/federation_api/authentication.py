"""Authenticating inbound Server-Server requests (``Authorization: X-Matrix ...``).

:class:`ServerAuthentication` answers the origin server of a correctly signed request (the
router runs it before every ``Access.SERVER`` handler, see :mod:`broker.http.guards`). The
origin must be allowed by the federation policy (403 ``M_FORBIDDEN`` otherwise, checked before
any key is fetched, so a refused server cannot make us contact it); the signature must verify
over the method, the raw request URI (``request.uri``, still percent-encoded) and the JSON
body, with the origin's key valid now (401 ``M_UNAUTHORIZED`` for a missing, malformed or bad
signature). Several X-Matrix headers may be sent (one per key): one that verifies is enough,
but they must all name the same origin.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from broker.http.errors import MatrixError
from broker.http.parsing import parse_json
from protocol.errors import KeyFetchError, MalformedAuthorization, SignatureVerifyError
from protocol.request_auth import XMatrixAuth, parse_authorization_header

logger = logging.getLogger(__name__)


def unauthorized(message: str) -> MatrixError:
    return MatrixError(401, "M_UNAUTHORIZED", message)


def _headers(request: Any) -> list[XMatrixAuth]:
    values = request.requestHeaders.getRawHeaders(b"authorization") or []
    candidates = [v for v in values if v.strip()[:8].lower() == b"x-matrix"]
    if not candidates:
        raise unauthorized("Missing X-Matrix Authorization header")
    parsed: list[XMatrixAuth] = []
    for value in candidates:
        try:
            parsed.append(parse_authorization_header(value))
        except MalformedAuthorization as exc:
            raise unauthorized(f"Malformed Authorization header: {exc}") from exc
    if len({auth.origin for auth in parsed}) != 1:
        raise unauthorized("Authorization headers name different origins")
    return parsed


def _json_content(request: Any) -> Any | None:
    """The request's JSON body, ``None`` when it has none; the body stays readable."""
    if request.content is None:
        return None
    request.content.seek(0)
    raw = request.content.read()
    request.content.seek(0)
    if not raw.strip():
        return None
    return parse_json(raw)


class ServerAuthentication:
    """Who signed a request: the framework's authenticator for ``Access.SERVER`` routes.

    ``refused`` counts the requests refused by the federation policy per origin since the
    node started, for monitoring."""

    def __init__(self, policy: Any, keyring: Any) -> None:
        self.policy = policy
        self.keyring = keyring
        self.refused: Counter[str] = Counter()

    async def __call__(self, request: Any) -> str:
        """The origin of an X-Matrix signed request, or a ``MatrixError`` (401/403/400)."""
        auths = _headers(request)
        origin = auths[0].origin
        if not self.policy.is_allowed(origin):
            self.refused[origin] += 1
            logger.warning("refused federation request %s %s from %s (not allowed)",
                           request.method.decode("ascii", "replace"),
                           request.path.decode("utf-8", "replace"), origin)
            raise MatrixError(403, "M_FORBIDDEN", "Federation with this server is not allowed")
        content = _json_content(request)
        try:
            uri = request.uri.decode("ascii")
        except UnicodeDecodeError as exc:
            raise unauthorized("Request URI is not ASCII") from exc
        return await self._verify(auths, request.method.decode("ascii"), uri, content)

    async def _verify(self, auths: list[XMatrixAuth], method: str, uri: str,
                      content: Any) -> str:
        """The origin, if one of the headers' signatures verifies."""
        origin = auths[0].origin
        problems: list[str] = []
        for auth in auths:
            try:
                await self.keyring.verify_request(auth, method, uri, content)
            except (SignatureVerifyError, KeyFetchError) as exc:
                problems.append(str(exc))
                continue
            return origin
        logger.info("bad X-Matrix signature from %s on %s: %s", origin, uri, "; ".join(problems))
        raise unauthorized(f"Invalid signature from {origin}: {'; '.join(problems)}")
