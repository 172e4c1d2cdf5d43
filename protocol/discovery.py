"""Server discovery: from a server name to the (host, port, TLS name, Host header) to dial.

Pure decision logic of the spec's "Resolving server names" (Server-Server API); the node
does the I/O. The flow is a small state machine driven by ``next_discovery_step``:

1. ``NeedWellKnown(hostname)``: GET ``https://<hostname>/.well-known/matrix/server`` and
   pass the body through ``parse_well_known`` (``None`` for any error or invalid body).
2. ``NeedSrv(name)``: look up that SRV record (``_matrix-fed._tcp.<host>`` first, then the
   deprecated ``_matrix._tcp.<host>``) and record the answer, possibly empty, under that name.
3. ``Resolved(candidates)``: dial the candidates in order, resolving each ``host`` with
   AAAA/A records; the TLS certificate must be valid for ``tls_servername`` and the
   ``Host`` header is ``host_header``.

``resolution_plan`` is the same machine for callers that already hold every answer.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

__all__ = [
    "DEFAULT_FEDERATION_PORT",
    "NOT_FETCHED",
    "NotFetched",
    "Candidate",
    "SrvRecord",
    "NeedWellKnown",
    "NeedSrv",
    "Resolved",
    "DiscoveryIncomplete",
    "parse_server_name",
    "is_valid_server_name",
    "is_ip_literal",
    "parse_well_known",
    "srv_query_names",
    "next_discovery_step",
    "resolution_plan",
]

DEFAULT_FEDERATION_PORT: Final = 8448

#: SRV service labels, in the order the spec tries them (v1.8 name, then the deprecated one).
_SRV_SERVICES: Final = ("_matrix-fed._tcp", "_matrix._tcp")

# The spec's server name grammar (appendices, "Server Name").
_DNS_NAME = re.compile(r"[A-Za-z0-9.\-]{1,255}")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_IPV4_SHAPE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_PORT = re.compile(r"[0-9]{1,5}")


class NotFetched:
    """Type of ``NOT_FETCHED``: the ``.well-known`` lookup has not happened yet."""

    _instance: NotFetched | None = None

    def __new__(cls) -> NotFetched:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_FETCHED"


NOT_FETCHED: Final = NotFetched()


class SrvRecord(NamedTuple):
    """One SRV answer. A target of ``"."`` means "service decidedly not available"."""

    target: str
    port: int
    priority: int = 0
    weight: int = 0


class Candidate(NamedTuple):
    """Where to connect and how to present the request.

    ``host`` is resolved with AAAA/A records (unless it is an IP literal, given without
    brackets). The peer's certificate must be valid for ``tls_servername``; send it as SNI
    unless ``is_ip_literal(tls_servername)``. ``host_header`` is the HTTP ``Host`` value.
    """

    host: str
    port: int
    tls_servername: str
    host_header: str


@dataclass(frozen=True)
class NeedWellKnown:
    """Fetch ``https://<hostname>/.well-known/matrix/server`` (port 443)."""

    hostname: str


@dataclass(frozen=True)
class NeedSrv:
    """Look up the SRV record ``name`` (e.g. ``_matrix-fed._tcp.example.org``)."""

    name: str


@dataclass(frozen=True)
class Resolved:
    """Discovery is complete: try ``candidates`` in order."""

    candidates: tuple[Candidate, ...]


class DiscoveryIncomplete(ValueError):
    """``resolution_plan`` was called without an answer it needs."""

    def __init__(self, need: NeedWellKnown | NeedSrv) -> None:
        what = (
            f"the .well-known result for {need.hostname}"
            if isinstance(need, NeedWellKnown)
            else f"the SRV records for {need.name}"
        )
        super().__init__(f"server discovery needs {what}")
        self.need = need


# Server names ------------------------------------------------------------------------------
def _split_host_port(name: str) -> tuple[str, str | None]:
    if name.startswith("["):
        end = name.find("]")
        if end == -1:
            raise ValueError(f"invalid server name {name!r}: unterminated IPv6 literal")
        host, rest = name[: end + 1], name[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"invalid server name {name!r}: junk after IPv6 literal")
        return host, rest[1:]
    host, sep, port = name.rpartition(":")
    if not sep:
        return name, None
    return host, port


def parse_server_name(name: str) -> tuple[str, int | None]:
    """Split a server name into ``(host, port or None)``, validating the spec's grammar.

    IPv6 literals come back without their brackets (``"[::1]:8448"`` -> ``("::1", 8448)``).
    Raises ``ValueError`` for anything the grammar does not allow.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("server name must be a non-empty string")
    host, port_text = _split_host_port(name)
    port: int | None = None
    if port_text is not None:
        if not _PORT.fullmatch(port_text):
            raise ValueError(f"invalid server name {name!r}: bad port {port_text!r}")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ValueError(f"invalid server name {name!r}: port out of range")
    if host.startswith("["):
        inner = host[1:-1]
        if not _IPV6_CHARS.fullmatch(inner):
            raise ValueError(f"invalid server name {name!r}: bad IPv6 literal")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError as exc:
            raise ValueError(f"invalid server name {name!r}: bad IPv6 literal") from exc
        return inner, port
    if _IPV4_SHAPE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ValueError(f"invalid server name {name!r}: bad IPv4 literal") from exc
        return host, port
    if not _DNS_NAME.fullmatch(host):
        raise ValueError(f"invalid server name {name!r}: bad hostname")
    return host, port


def is_valid_server_name(name: Any) -> bool:
    """Whether ``name`` matches the spec's server name grammar."""
    try:
        parse_server_name(name)
    except ValueError:
        return False
    return True


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` (as returned by ``parse_server_name``) is an IPv4/IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_header(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


# .well-known -------------------------------------------------------------------------------
def parse_well_known(body: bytes | str | Mapping[str, Any] | Any) -> str | None:
    """The delegated server name from a ``/.well-known/matrix/server`` body, or ``None``.

    Accepts the raw body (bytes/str) or already-decoded JSON. Anything invalid (bad
    JSON, not an object, ``m.server`` missing, not a string or not a valid server name)
    gives ``None``: per the spec the caller then carries on as if there were no
    ``.well-known`` at all (step 4).
    """
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, Mapping):
        return None
    delegated = body.get("m.server")
    if not isinstance(delegated, str) or not is_valid_server_name(delegated):
        return None
    return delegated


# The state machine -------------------------------------------------------------------------
def srv_query_names(hostname: str) -> tuple[str, str]:
    """The SRV names for ``hostname``: ``_matrix-fed._tcp.<h>`` then ``_matrix._tcp.<h>``."""
    return (f"{_SRV_SERVICES[0]}.{hostname}", f"{_SRV_SERVICES[1]}.{hostname}")


def _srv_order(records: Sequence[SrvRecord]) -> list[SrvRecord]:
    # Lowest priority first; among equals, heavier weight first. (RFC 2782 picks randomly
    # by weight; a deterministic order keeps this pure, the caller may shuffle.)
    usable = [r for r in records if r.target not in ("", ".")]
    return sorted(usable, key=lambda r: (r.priority, -r.weight))


def _srv_or_default(
    hostname: str, srv_records: Mapping[str, Sequence[SrvRecord]]
) -> NeedSrv | Resolved:
    # The certificate and Host header are for ``hostname``, never the SRV target.
    for name in srv_query_names(hostname):
        if name not in srv_records:
            return NeedSrv(name)
        records = srv_records[name]
        if records:
            ordered = _srv_order(records)
            # Records present but all "." -> the service is explicitly unavailable.
            return Resolved(
                tuple(Candidate(r.target.rstrip("."), r.port, hostname, hostname) for r in ordered)
            )
    return Resolved((Candidate(hostname, DEFAULT_FEDERATION_PORT, hostname, hostname),))


def next_discovery_step(
    server_name: str,
    well_known_result: str | None | NotFetched = NOT_FETCHED,
    srv_records: Mapping[str, Sequence[SrvRecord]] | None = None,
) -> NeedWellKnown | NeedSrv | Resolved:
    """The next thing discovery needs, or the final candidates.

    ``well_known_result`` is ``NOT_FETCHED`` before the lookup, then the delegated server
    name from ``parse_well_known`` or ``None`` (error / invalid). ``srv_records`` maps each
    SRV name already looked up to its answer (an empty sequence when there is none).
    Raises ``ValueError`` if ``server_name`` is invalid.
    """
    host, port = parse_server_name(server_name)
    srv = srv_records or {}
    # Step 1: IP literal. Host header is the server name as given.
    if is_ip_literal(host):
        return Resolved(
            (Candidate(host, port or DEFAULT_FEDERATION_PORT, host, _host_header(host, port)),)
        )
    # Step 2: hostname with an explicit port.
    if port is not None:
        return Resolved((Candidate(host, port, host, _host_header(host, port)),))
    # Step 3: .well-known delegation.
    if isinstance(well_known_result, NotFetched):
        return NeedWellKnown(host)
    if well_known_result is not None:
        d_host, d_port = parse_server_name(well_known_result)
        if is_ip_literal(d_host):  # 3.1
            return Resolved(
                (
                    Candidate(
                        d_host,
                        d_port or DEFAULT_FEDERATION_PORT,
                        d_host,
                        _host_header(d_host, d_port),
                    ),
                )
            )
        if d_port is not None:  # 3.2
            return Resolved((Candidate(d_host, d_port, d_host, _host_header(d_host, d_port)),))
        return _srv_or_default(d_host, srv)  # 3.3 - 3.5
    # Steps 4 - 6: no (valid) .well-known.
    return _srv_or_default(host, srv)


def resolution_plan(
    server_name: str,
    well_known_result: str | None | NotFetched,
    srv_records: Mapping[str, Sequence[SrvRecord]] | None,
) -> list[Candidate]:
    """The ordered candidates for ``server_name`` given every lookup answer.

    Raises ``DiscoveryIncomplete`` (naming the missing lookup) if an answer is needed
    that was not given, and ``ValueError`` for an invalid server name.
    """
    step = next_discovery_step(server_name, well_known_result, srv_records)
    if not isinstance(step, Resolved):
        raise DiscoveryIncomplete(step)
    return list(step.candidates)
