"""X-Matrix request authentication (Server-Server API, "Request Authentication").

The sender signs ``{"method", "uri", "origin", "destination", "content"?}`` with its
server key and sends ``Authorization: X-Matrix origin=...,destination=...,key=...,sig=...``.
The receiver parses the header, fetches the origin's key and calls ``verify_request``.

``uri`` is the request target exactly as sent on the wire: the path starting with
``/_matrix/`` plus ``?`` and the query string if any, still percent-encoded (Twisted's
``request.uri``), never the decoded path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocol.canonical import decode_b64
from protocol.discovery import is_valid_server_name
from protocol.errors import MalformedAuthorization, SignatureVerifyError
from protocol.signing import (
    SigningKey,
    VerifyKey,
    sign_json,
    verify_json_signature,
    verify_key_id,
)

__all__ = [
    "MalformedAuthorization",
    "XMatrixAuth",
    "request_json",
    "sign_request",
    "parse_authorization_header",
    "verify_request",
]

_SCHEME = "x-matrix"
_KEY_ID = re.compile(r"ed25519:[A-Za-z0-9_]+")
# RFC 7230 tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Unquoted values: tokens, plus what older servers send unquoted (":" per the spec, and
# base64's "/" "=" and an IPv6 literal's brackets, which we tolerate).
_BARE_VALUE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z:/=\[\]]+")
_OWS = " \t"


@dataclass(frozen=True)
class XMatrixAuth:
    """A parsed X-Matrix header. ``destination`` is ``None`` if the sender left it out."""

    origin: str
    destination: str | None
    key_id: str
    signature: str


def request_json(
    method: str, uri: str, origin: str, destination: str, content: Any | None
) -> dict[str, Any]:
    """The object a request signature covers; ``content`` is left out when ``None``."""
    obj: dict[str, Any] = {
        "method": method,
        "uri": uri,
        "origin": origin,
        "destination": destination,
    }
    if content is not None:
        obj["content"] = content
    return obj


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sign_request(
    origin: str,
    destination: str,
    method: str,
    uri: str,
    content: dict[str, Any] | None,
    key: SigningKey,
) -> str:
    """The full ``Authorization`` header value for a request from ``origin``.

    ``content`` is the JSON body (``None`` when the request has no body; an empty body
    of a PUT/POST is ``{}`` and is signed as such).
    """
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, key)
    key_id = verify_key_id(key)
    sig = signed["signatures"][origin][key_id]
    return (
        f"X-Matrix origin={_quote(origin)},destination={_quote(destination)},"
        f"key={_quote(key_id)},sig={_quote(sig)}"
    )


# Parsing -----------------------------------------------------------------------------------
def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _OWS:
        pos += 1
    return pos


def _is_ctl(char: str) -> bool:
    """Control characters, which neither qdtext nor quoted-pair allow (HTAB aside)."""
    return char != "\t" and (char < " " or char == "\x7f")


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at the opening quote; return (value, next pos)."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\":
            if pos + 1 >= len(text):
                break
            escaped = text[pos + 1]
            if _is_ctl(escaped):
                raise MalformedAuthorization("X-Matrix header: bad escape in quoted value")
            out.append(escaped)
            pos += 2
            continue
        if _is_ctl(char):
            raise MalformedAuthorization("X-Matrix header: control character in quoted value")
        out.append(char)
        pos += 1
    raise MalformedAuthorization("X-Matrix header: unterminated quoted value")


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos = 0
    length = len(text)
    while True:
        # Empty list elements (",,") are allowed by RFC 7230's #rule.
        pos = _skip_ows(text, pos)
        while pos < length and text[pos] == ",":
            pos = _skip_ows(text, pos + 1)
        if pos >= length:
            return params
        match = _TOKEN.match(text, pos)
        if match is None:
            raise MalformedAuthorization(
                f"X-Matrix header: expected a parameter name at {text[pos : pos + 20]!r}"
            )
        name = match.group().lower()
        pos = _skip_ows(text, match.end())
        if pos >= length or text[pos] != "=":
            raise MalformedAuthorization(f"X-Matrix header: parameter {name!r} has no value")
        pos = _skip_ows(text, pos + 1)
        if pos < length and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
        else:
            bare = _BARE_VALUE.match(text, pos)
            if bare is None:
                raise MalformedAuthorization(f"X-Matrix header: parameter {name!r} has no value")
            value, pos = bare.group(), bare.end()
        if name in params:
            raise MalformedAuthorization(f"X-Matrix header: duplicate parameter {name!r}")
        params[name] = value
        pos = _skip_ows(text, pos)
        if pos < length and text[pos] != ",":
            raise MalformedAuthorization(
                f"X-Matrix header: expected ',' after parameter {name!r}, "
                f"found {text[pos : pos + 20]!r}"
            )


def parse_authorization_header(value: str | bytes) -> XMatrixAuth:
    """Parse an ``Authorization`` header value of scheme ``X-Matrix``.

    Follows the spec's rules: scheme and parameter names are case-insensitive, order does
    not matter, values may be tokens or quoted strings (commas and backslash escapes
    inside quotes are fine), unquoted values may contain ``:``; unknown parameters are
    ignored; ``destination`` is optional for older senders. Raises
    ``MalformedAuthorization`` naming the problem (wrong scheme, missing or duplicate
    parameter, bad key ID, bad signature encoding, invalid server names, garbage).
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedAuthorization("Authorization header is not UTF-8") from exc
    if not isinstance(value, str):
        raise MalformedAuthorization("Authorization header must be a string")
    text = value.strip(_OWS)
    scheme, sep, rest = text.partition(" ")
    if scheme.lower() != _SCHEME:
        raise MalformedAuthorization("Authorization header does not use the X-Matrix scheme")
    if not sep or not rest.strip(_OWS):
        raise MalformedAuthorization("X-Matrix header has no parameters")
    params = _parse_params(rest)
    for required in ("origin", "key", "sig"):
        if not params.get(required):
            raise MalformedAuthorization(f"X-Matrix header: missing {required!r} parameter")
    origin = params["origin"]
    if not is_valid_server_name(origin):
        raise MalformedAuthorization(f"X-Matrix header: invalid origin {origin!r}")
    destination = params.get("destination")
    if destination is not None and not is_valid_server_name(destination):
        raise MalformedAuthorization(f"X-Matrix header: invalid destination {destination!r}")
    key_id = params["key"]
    if not _KEY_ID.fullmatch(key_id):
        raise MalformedAuthorization(
            f"X-Matrix header: key must be 'ed25519:<version>', got {key_id!r}"
        )
    signature = params["sig"]
    try:
        raw = decode_b64(signature)
    except ValueError as exc:
        raise MalformedAuthorization("X-Matrix header: sig is not base64") from exc
    if len(raw) != 64:
        raise MalformedAuthorization("X-Matrix header: sig is not an ed25519 signature")
    return XMatrixAuth(origin=origin, destination=destination, key_id=key_id, signature=signature)


# Verifying ---------------------------------------------------------------------------------
def verify_request(
    auth: XMatrixAuth,
    method: str,
    uri: str,
    content: Any | None,
    our_server_name: str,
    verify_key: VerifyKey,
) -> None:
    """Check a parsed X-Matrix header against the request it came with.

    ``verify_key`` is the origin's key for ``auth.key_id`` (the caller fetches it and
    checks it is currently valid). ``content`` is the parsed JSON body, ``None`` if the
    request had none. A header naming another destination is refused. Raises
    ``SignatureVerifyError``; the HTTP layer answers 401.
    """
    if auth.destination is not None and auth.destination != our_server_name:
        raise SignatureVerifyError(
            f"request from {auth.origin} is for {auth.destination!r}, not {our_server_name!r}"
        )
    if verify_key_id(verify_key) != auth.key_id:
        raise SignatureVerifyError(
            f"verify key {verify_key_id(verify_key)} does not match the header's {auth.key_id}"
        )
    # Senders that leave ``destination`` out of the header still sign it (it has been in
    # the signed object far longer than in the header), with our name as the value.
    signed = request_json(method, uri, auth.origin, our_server_name, content)
    signed["signatures"] = {auth.origin: {auth.key_id: auth.signature}}
    verify_json_signature(signed, auth.origin, verify_key)
