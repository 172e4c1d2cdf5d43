"""Which servers this node federates with: a static allow-list plus a signed federation list.

``FederationPolicy.is_allowed(server)`` is the one question the transport layer asks, inbound
(before answering a request signed by ``server``) and outbound (before sending to it). A server
is allowed when it is on the static allow-list or on the current, unexpired federation list.
The node's own server name is never a federation peer and is never allowed.

The federation list is read from a file or fetched from a URL (through a fetch function the node
injects) at ``start()`` and then every ``refresh_seconds``. A newer valid list replaces the
current one (the change is logged at INFO and persisted to a file in the data folder, so a
restart without network still has it). Anything else is refused with a WARNING and counted,
and the last good list stays in force: an unreadable source, an unsigned or wrongly signed list,
an expired list, an older version (a rollback), or the same version with different content.
Reading back the very list already held is "unchanged", not a refusal. The stored list's
version is a floor even after the list expires, so an older list cannot be replayed later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from federation.federation_list import (
    FederationList,
    decode_authority_key,
    format_ts,
    verify_list,
)
from protocol.errors import FederationListError

__all__ = [
    "FederationPolicy",
    "MAX_LIST_BYTES",
    "FETCH_TIMEOUT_SECONDS",
    "treq_fetcher",
]

logger = logging.getLogger(__name__)

#: Larger federation list documents are refused as unreadable.
MAX_LIST_BYTES: Final = 8 * 1024 * 1024
#: A fetch that has not answered after this long is cancelled and the refresh refused.
FETCH_TIMEOUT_SECONDS: Final = 60.0
_DIRECTIONS: Final = ("inbound", "outbound")
_MAX_NAMES_LOGGED: Final = 50

FetchUrl = Callable[[str], "Deferred[bytes]"]


def _is_url(source: str | os.PathLike[str]) -> bool:
    return isinstance(source, str) and source.startswith(("https://", "http://"))


def _names(servers: Iterable[str]) -> str:
    names = sorted(servers)
    shown = ", ".join(names[:_MAX_NAMES_LOGGED])
    more = len(names) - _MAX_NAMES_LOGGED
    return shown + (f" and {more} more" if more > 0 else "") if names else "none"


class FederationPolicy:
    """The allow decision for federation peers, with the refreshed signed federation list.

    ``list_source`` is a file path, an ``http(s)://`` URL (needs ``fetch_url``) or ``None`` (the
    allow-list alone). ``clock`` returns the current time in milliseconds (default: the
    reactor's); ``reactor`` (an ``IReactorTime``) schedules refreshes (default: the global reactor). ``persist_path``
    is where the last good list is kept (``None``: not persisted).
    """

    def __init__(
        self,
        own_server_name: str,
        *,
        allow_list: Iterable[str] = (),
        list_source: str | os.PathLike[str] | None = None,
        authority_key: str = "",
        refresh_seconds: float = 3600,
        clock: Callable[[], int] | None = None,
        reactor: Any = None,
        fetch_url: FetchUrl | None = None,
        persist_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._reactor: Any = reactor
        self._clock: Callable[[], int] = clock or self._reactor_ms
        self.own_server_name = own_server_name
        self.allow_list: frozenset[str] = frozenset(allow_list)
        self._source = list_source
        if list_source is not None:
            if not authority_key:
                raise ValueError("a federation list source needs the authority's public key")
            decode_authority_key(authority_key)  # FederationListError (a ValueError) if invalid
            if _is_url(list_source) and fetch_url is None:
                raise ValueError(f"fetching the federation list from {list_source} needs fetch_url")
        if refresh_seconds <= 0:
            raise ValueError("refresh_seconds must be positive")
        self._authority_key = authority_key
        self._refresh_seconds = refresh_seconds
        self._fetch_url = fetch_url
        self._persist_path = Path(persist_path) if persist_path is not None else None
        self._current: FederationList | None = None
        self._loop: LoopingCall | None = None
        self._in_flight = False
        self._expiry_logged_version: int | None = None
        self.refused_inbound = 0
        self.refused_outbound = 0
        self.list_refreshes_refused = 0

    def _reactor_ms(self) -> int:
        return int(self._reactor.seconds() * 1000)

    # --- the decision -------------------------------------------------------------------------
    @property
    def current_list(self) -> FederationList | None:
        """The last good federation list (possibly expired), or ``None``."""
        return self._current

    def is_allowed(self, server_name: str) -> bool:
        """Whether ``server_name`` is a federation peer of this node (never its own name)."""
        if server_name == self.own_server_name:
            return False
        if server_name in self.allow_list:
            return True
        current = self._current
        return (current is not None and server_name in current.servers
                and not current.is_expired(self._clock()))

    def record_refusal(self, direction: str, server_name: str) -> None:
        """Count and log a request refused because ``server_name`` is not allowed."""
        if direction == "inbound":
            self.refused_inbound += 1
            logger.info("federation: refused inbound request from %s: not an allowed peer",
                        server_name)
        elif direction == "outbound":
            self.refused_outbound += 1
            logger.info("federation: refused outbound request to %s: not an allowed peer",
                        server_name)
        else:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")

    def permits(self, direction: str, server_name: str) -> bool:
        """``is_allowed``, recording the refusal when it is not."""
        if self.is_allowed(server_name):
            return True
        self.record_refusal(direction, server_name)
        return False

    def stats(self) -> dict[str, int]:
        """Counters for monitoring, plus the version of the list in force (0: none)."""
        return {
            "refused_inbound": self.refused_inbound,
            "refused_outbound": self.refused_outbound,
            "list_refreshes_refused": self.list_refreshes_refused,
            "list_version": self._current.version if self._current else 0,
        }

    # --- loading and refreshing ---------------------------------------------------------------
    def start(self) -> Deferred[str]:
        """Load the persisted list, read the source and refresh it every ``refresh_seconds``.

        The returned Deferred fires with the first refresh's outcome (see ``refresh``); it
        never fails.
        """
        if self._source is None:
            return defer.succeed("no_source")
        self._load_persisted()
        first = self.refresh()
        loop = LoopingCall(self.refresh)
        loop.clock = self._reactor
        self._loop = loop
        loop.start(self._refresh_seconds, now=False).addErrback(
            lambda f: logger.error("federation list refresh loop stopped: %s", f.getErrorMessage()))
        return first

    def stop(self) -> None:
        """Stop refreshing (the current list stays in force)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def refresh(self) -> Deferred[str]:
        """Read the source once; fires with ``accepted``, ``unchanged`` or ``refused``.

        A refresh already under way is not started twice: a second call fires at once with
        ``in_progress``.
        """
        if self._source is None:
            return defer.succeed("no_source")
        if self._in_flight:
            return defer.succeed("in_progress")
        self._warn_if_expired()
        d: Deferred[Any] = self._read_source()
        d.addCallbacks(self._consider, self._unreadable)
        d.addErrback(self._unexpected)

        def done(outcome: str) -> str:
            self._in_flight = False
            return outcome

        d.addBoth(done)
        if not d.called:
            self._in_flight = True
        return d

    def _read_source(self) -> Deferred[bytes]:
        source = self._source
        assert source is not None
        if _is_url(source):
            assert self._fetch_url is not None
            d: Deferred[bytes] = defer.maybeDeferred(self._fetch_url, str(source))
            d.addTimeout(FETCH_TIMEOUT_SECONDS, self._reactor)
            return d
        try:
            with open(source, "rb") as stream:
                data = stream.read(MAX_LIST_BYTES + 1)
        except OSError as exc:
            return defer.fail(exc)
        return defer.succeed(data)

    def _unreadable(self, failure: Any) -> str:
        if failure.check(defer.TimeoutError, defer.CancelledError):
            return self._refuse(f"unreadable: no answer within {FETCH_TIMEOUT_SECONDS:g} s")
        return self._refuse(f"unreadable: {failure.getErrorMessage() or failure.type.__name__}")

    def _unexpected(self, failure: Any) -> str:
        logger.error("federation list refresh failed unexpectedly",
                     exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        return self._refuse(f"internal error: {failure.getErrorMessage()}")

    def _refuse(self, reason: str) -> str:
        self.list_refreshes_refused += 1
        kept = (f"keeping version {self._current.version}" if self._current
                else "no federation list in force")
        logger.warning("federation list from %s refused (%s); %s", self._source, reason, kept)
        return "refused"

    def _consider(self, data: bytes) -> str:
        if not isinstance(data, bytes | bytearray):
            return self._refuse("unreadable: the fetch did not return bytes")
        if len(data) > MAX_LIST_BYTES:
            return self._refuse(f"unreadable: larger than {MAX_LIST_BYTES} bytes")
        try:
            new = verify_list(bytes(data), self._authority_key, self._clock())
        except FederationListError as exc:
            return self._refuse(f"{exc.reason}: {exc.message}")
        current = self._current
        if current is not None:
            if new.version < current.version:
                return self._refuse(f"stale_version: version {new.version} is older than "
                                    f"version {current.version} in force")
            if new.version == current.version:
                if new.canonical_bytes() == current.canonical_bytes():
                    logger.debug("federation list version %d unchanged", new.version)
                    return "unchanged"
                return self._refuse(f"version_conflict: version {new.version} is already in "
                                    "force with different content")
        self._accept(new)
        return "accepted"

    def _accept(self, new: FederationList) -> None:
        old = self._current
        self._current = new
        expiry = f", expires {format_ts(new.expires_ts)}" if new.expires_ts is not None else ""
        if old is None:
            logger.info("federation list version %d of %s accepted: %d servers (%s)%s",
                        new.version, new.authority, len(new.servers), _names(new.servers),
                        expiry)
        else:
            logger.info("federation list version %d of %s replaces version %d: added %s; "
                        "removed %s%s", new.version, new.authority, old.version,
                        _names(new.servers - old.servers), _names(old.servers - new.servers),
                        expiry)
        self._persist(new)

    def _warn_if_expired(self) -> None:
        current = self._current
        if (current is not None and current.is_expired(self._clock())
                and self._expiry_logged_version != current.version):
            self._expiry_logged_version = current.version
            assert current.expires_ts is not None
            logger.warning("federation list version %d expired at %s: its servers are no longer "
                           "allowed until a newer list is published", current.version,
                           format_ts(current.expires_ts))

    # --- persistence --------------------------------------------------------------------------
    def _persist(self, flist: FederationList) -> None:
        path = self._persist_path
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as stream:
                stream.write(flist.canonical_bytes())
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            logger.error("could not store federation list version %d in %s: %s",
                         flist.version, path, exc)

    def _load_persisted(self) -> None:
        path = self._persist_path
        if path is None or not path.exists():
            return
        try:
            data = path.read_bytes()
            # Expiry is not checked here: an expired list still sets the version floor.
            stored = verify_list(data, self._authority_key, None)
        except (OSError, FederationListError) as exc:
            logger.warning("ignoring the stored federation list %s: %s", path, exc)
            return
        self._current = stored
        logger.info("federation list version %d of %s loaded from %s: %d servers",
                    stored.version, stored.authority, path, len(stored.servers))
        self._warn_if_expired()


def treq_fetcher(client: Any, timeout: float = FETCH_TIMEOUT_SECONDS,
                 max_bytes: int = MAX_LIST_BYTES) -> FetchUrl:
    """A ``fetch_url`` for ``FederationPolicy`` over a treq ``HTTPClient`` (or ``StubTreq``).

    Fails unless the answer is 200; refuses bodies over ``max_bytes``.
    """

    async def fetch(url: str) -> bytes:
        response = await client.get(url, timeout=timeout)
        if response.code != 200:
            await response.text()
            raise OSError(f"GET {url} answered HTTP {response.code}")
        length = response.length
        if isinstance(length, int) and length > max_bytes:
            raise OSError(f"GET {url}: body of {length} bytes exceeds {max_bytes}")
        body: bytes = await response.content()
        if len(body) > max_bytes:
            raise OSError(f"GET {url}: body exceeds {max_bytes} bytes")
        return body

    def fetch_url(url: str) -> Deferred[bytes]:
        return Deferred.fromCoroutine(fetch(url))

    return fetch_url
