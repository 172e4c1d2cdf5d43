"""From a server name to addresses we may dial: discovery with caches, DNS, address policy.

``ServerResolver.discover(server_name)`` runs ``protocol.discovery``'s state machine, doing
its I/O: the ``.well-known/matrix/server`` lookup (cached as the spec recommends: the response's
``Cache-Control: max-age`` within [5 min, 48 h], 24 h without one, 1 h after an error) and SRV
lookups with ``twisted.names`` (cached for their TTL). ``addresses(host, port)`` resolves a
host to IP addresses and drops every address outside the public internet (loopback, private,
link-local, shared, reserved...) unless private addresses are allowed; if nothing is left it
raises ``DestinationRefused``, so no connection is ever attempted.

The I/O functions are parameters so tests can run without a network.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IHostResolution, IResolutionReceiver
from zope.interface import implementer

from protocol.discovery import (
    Candidate,
    NeedSrv,
    NeedWellKnown,
    NotFetched,
    Resolved,
    SrvRecord,
    is_ip_literal,
    next_discovery_step,
    parse_well_known,
)
from protocol.errors import DestinationRefused

__all__ = [
    "WellKnownAnswer",
    "ServerResolver",
    "is_public_address",
    "resolve_host_with_reactor",
    "lookup_srv_with_twisted_names",
    "WELL_KNOWN_DEFAULT_CACHE_MS",
    "WELL_KNOWN_ERROR_CACHE_MS",
    "WELL_KNOWN_MAX_CACHE_MS",
    "WELL_KNOWN_MIN_CACHE_MS",
]

logger = logging.getLogger(__name__)

WELL_KNOWN_DEFAULT_CACHE_MS = 24 * 3600 * 1000
WELL_KNOWN_MAX_CACHE_MS = 48 * 3600 * 1000
WELL_KNOWN_MIN_CACHE_MS = 5 * 60 * 1000
WELL_KNOWN_ERROR_CACHE_MS = 3600 * 1000
SRV_EMPTY_CACHE_MS = 3600 * 1000
SRV_MIN_CACHE_MS = 60 * 1000
SRV_MAX_CACHE_MS = 24 * 3600 * 1000

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class WellKnownAnswer:
    """What a ``.well-known`` GET returned: status (0 on a network error), body, Cache-Control."""

    status: int
    body: bytes = b""
    cache_control: str | None = None


#: GET https://<host>/.well-known/matrix/server
WellKnownFetcher = Callable[[str], Awaitable[WellKnownAnswer]]
#: SRV name -> (records, ttl seconds or None)
SrvLookup = Callable[[str], Awaitable[tuple[list[SrvRecord], int | None]]]
#: (host, port) -> IP address strings
HostResolver = Callable[[str, int], Awaitable[list[str]]]


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address (IPv4-mapped unwrapped)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _cache_ms_for(cache_control: str | None) -> int:
    if cache_control:
        lowered = cache_control.lower()
        if "no-store" in lowered or "no-cache" in lowered:
            return WELL_KNOWN_MIN_CACHE_MS
        match = _MAX_AGE.search(cache_control)
        if match:
            seconds = int(match.group(1))
            return max(WELL_KNOWN_MIN_CACHE_MS, min(WELL_KNOWN_MAX_CACHE_MS, seconds * 1000))
    return WELL_KNOWN_DEFAULT_CACHE_MS


def resolve_host_with_reactor(reactor: Any) -> HostResolver:
    """A ``HostResolver`` using the reactor's name resolver (getaddrinfo, A and AAAA)."""

    async def resolve(host: str, port: int) -> list[str]:
        done: defer.Deferred[list[str]] = defer.Deferred()
        found: list[str] = []

        @implementer(IResolutionReceiver)
        class _Receiver:
            def resolutionBegan(self, resolution: IHostResolution) -> None:
                pass

            def addressResolved(self, address: Any) -> None:
                found.append(address.host)

            def resolutionComplete(self) -> None:
                done.callback(found)

        reactor.nameResolver.resolveHostName(_Receiver(), host, port)
        return await done

    return resolve


async def lookup_srv_with_twisted_names(name: str) -> tuple[list[SrvRecord], int | None]:
    """SRV records of ``name`` via ``twisted.names`` (no such name: no records)."""
    from twisted.names import client as dns_client
    from twisted.names import dns
    from twisted.names import error as dns_error

    try:
        answers, _authority, _additional = await dns_client.lookupService(name)
    except (dns_error.DNSNameError, dns_error.DNSServerError, dns_error.DNSNotImplementedError):
        return [], None
    records: list[SrvRecord] = []
    ttls: list[int] = []
    for answer in answers:
        if answer.type != dns.SRV:
            continue
        payload = answer.payload
        records.append(
            SrvRecord(str(payload.target.name.decode("ascii", "replace")), payload.port,
                      payload.priority, payload.weight)
        )
        ttls.append(int(answer.ttl))
    return records, (min(ttls) if ttls else None)


class ServerResolver:
    """Server discovery and address resolution for outbound federation requests."""

    def __init__(
        self,
        clock: Any,
        *,
        fetch_well_known: WellKnownFetcher,
        lookup_srv: SrvLookup,
        resolve_host: HostResolver,
        allow_private_addresses: bool,
    ) -> None:
        self._clock = clock
        self._fetch_well_known = fetch_well_known
        self._lookup_srv = lookup_srv
        self._resolve_host = resolve_host
        self.allow_private_addresses = allow_private_addresses
        self._well_known: dict[str, tuple[str | None, int]] = {}
        self._srv: dict[str, tuple[list[SrvRecord], int]] = {}

    async def discover(self, server_name: str) -> tuple[Candidate, ...]:
        """The candidates to dial for ``server_name``, in order (``ValueError`` if invalid)."""
        well_known: str | None | NotFetched = NotFetched()
        srv: dict[str, Sequence[SrvRecord]] = {}
        while True:
            step = next_discovery_step(server_name, well_known, srv)
            if isinstance(step, Resolved):
                return step.candidates
            if isinstance(step, NeedWellKnown):
                well_known = await self.well_known(step.hostname)
            elif isinstance(step, NeedSrv):
                srv[step.name] = await self.srv(step.name)

    async def well_known(self, hostname: str) -> str | None:
        """The delegated server name of ``hostname``'s ``.well-known``, cached."""
        now = self._clock.time_ms()
        cached = self._well_known.get(hostname)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            answer = await self._fetch_well_known(hostname)
        except Exception as exc:
            logger.info("well-known lookup of %s failed: %s", hostname, exc)
            answer = WellKnownAnswer(0)
        delegated = parse_well_known(answer.body) if answer.status == 200 else None
        if delegated is None:
            ttl = WELL_KNOWN_ERROR_CACHE_MS
        else:
            ttl = _cache_ms_for(answer.cache_control)
        self._well_known[hostname] = (delegated, now + ttl)
        return delegated

    async def srv(self, name: str) -> list[SrvRecord]:
        """The SRV records of ``name`` (empty when there are none or the lookup failed)."""
        now = self._clock.time_ms()
        cached = self._srv.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            records, ttl = await self._lookup_srv(name)
        except Exception as exc:
            logger.info("SRV lookup of %s failed: %s", name, exc)
            records, ttl = [], None
        if records and ttl is not None:
            keep = max(SRV_MIN_CACHE_MS, min(SRV_MAX_CACHE_MS, ttl * 1000))
        else:
            keep = SRV_EMPTY_CACHE_MS
        self._srv[name] = (records, now + keep)
        return records

    async def addresses(self, host: str, port: int) -> list[str]:
        """IP addresses of ``host`` we may connect to; ``DestinationRefused`` if none."""
        if is_ip_literal(host):
            found = [host]
        else:
            try:
                found = await self._resolve_host(host, port)
            except Exception as exc:
                raise DestinationRefused(f"cannot resolve {host}: {exc}") from exc
        if not found:
            raise DestinationRefused(f"{host} has no addresses")
        if self.allow_private_addresses:
            return found
        public = [a for a in found if is_public_address(a)]
        if not public:
            raise DestinationRefused(
                f"{host} resolves only to non-public addresses ({', '.join(found)}); "
                "set federation.allow_private_addresses to allow them"
            )
        if len(public) != len(found):
            logger.warning("ignoring non-public addresses of %s: %s", host,
                           ", ".join(a for a in found if a not in public))
        return public
