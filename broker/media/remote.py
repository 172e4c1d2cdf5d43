"""Another server's media for local users: fetched through that server's federation media
endpoints (a signed request; servers outside the federation allow-list are refused), kept on
disk sealed like local media for ``expiry_ms``, at most the node's upload limit a file.

Requests for one file (or one thumbnail size) while it is being fetched share that fetch.
The index of what is cached lives in memory (at most ``max_entries``, the oldest dropped with
its file); the cache folder is emptied at start, as nothing indexes what it held.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from twisted.internet import defer

from broker.errors import Forbidden, NotFound, TimedOut, Unavailable
from broker.media.files import MediaFiles
from broker.media.headers import media_headers
from broker.raw_response import RawResponse
from federation.transport_client import RawAnswer, ResponseTooLarge
from protocol.errors import DestinationRefused, HttpResponseError

logger = logging.getLogger(__name__)

FED_MEDIA = "/_matrix/federation/v1/media"
REMOTE_FOLDER = "remote_content"
DEFAULT_EXPIRY_MS = 24 * 60 * 60 * 1000
DEFAULT_MAX_ENTRIES = 10_000
FETCH_TIMEOUT_S = 60.0
Fetch = Callable[..., Awaitable[RawAnswer]]  # FederationClient.get_raw


@dataclass(frozen=True)
class Cached:
    path: Path
    content_type: str
    disposition: str | None
    fetched_ms: int


class BadAnswer(Exception):
    """The other server's answer is not the two-part multipart/mixed the spec asks for."""


def content_part(answer: RawAnswer) -> tuple[str, str | None, bytes]:
    """The content type, Content-Disposition and bytes of a federation media answer."""
    if not answer.content_type.lower().startswith("multipart/mixed"):
        raise BadAnswer(f"answer is {answer.content_type!r}, not multipart/mixed")
    message = email.message_from_bytes(
        f"Content-Type: {answer.content_type}\r\n\r\n".encode("latin-1") + answer.body,
        policy=email.policy.HTTP)
    parts = list(message.iter_parts())
    if len(parts) != 2 or parts[0].get_content_type() != "application/json":
        raise BadAnswer("answer does not hold metadata then content")
    content = parts[1]
    if content.get("Location") is not None:
        raise BadAnswer("answer redirects elsewhere, which this node does not follow")
    data = content.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise BadAnswer("content part has no body")
    return content.get_content_type(), content.get("Content-Disposition"), data


class RemoteMedia:
    def __init__(self, files: MediaFiles, fetch: Fetch, clock: Any, server_name: str,
                 max_bytes: int, is_allowed: Callable[[str], bool], *,
                 expiry_ms: int = DEFAULT_EXPIRY_MS,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.files = files
        self.fetch = fetch
        self.clock = clock
        self.server_name = server_name
        self.max_bytes = max_bytes
        self.is_allowed = is_allowed
        self.expiry_ms = expiry_ms
        self.max_entries = max_entries
        self.fetches = 0  # answers fetched from other servers (for tests and metrics)
        self._cached: OrderedDict[str, Cached] = OrderedDict()
        self._inflight: dict[str, list[defer.Deferred[Cached]]] = {}

    @property
    def folder(self) -> Path:
        return self.files.root / REMOTE_FOLDER

    def clear(self) -> None:
        """Empty the cache folder (at start, before the node serves anything: nothing
        indexes what it held).  On the calling thread: it is bounded by ``max_entries``
        files, and a start must not wait on the reactor's thread pool, which the node's
        own reactor may not run."""
        shutil.rmtree(self.folder, True)

    async def download(self, server_name: str, media_id: str, filename: str | None,
                       timeout_ms: int) -> RawResponse:
        cached = await self._get(server_name, media_id, "download", {"timeout_ms": timeout_ms})
        data = await self.files.read_bytes(cached.path)
        headers = media_headers(cached.content_type, filename) if filename is not None or \
            cached.disposition is None else {**media_headers(cached.content_type, None),
                                             "Content-Disposition": cached.disposition}
        return RawResponse(data, cached.content_type, headers=headers)

    async def thumbnail(self, server_name: str, media_id: str, width: int, height: int,
                        method: str, animated: bool, timeout_ms: int) -> RawResponse:
        args = {"width": str(width), "height": str(height), "method": method,
                "animated": "true" if animated else "false", "timeout_ms": str(timeout_ms)}
        cached = await self._get(server_name, media_id, "thumbnail", args)
        data = await self.files.read_bytes(cached.path)
        return RawResponse(data, cached.content_type,
                           headers=media_headers(cached.content_type, None, inline=True))

    async def _get(self, server_name: str, media_id: str, kind: str,
                   args: dict[str, Any]) -> Cached:
        if not self.is_allowed(server_name):
            raise Forbidden(f"Federation with {server_name} is not allowed")
        variant = {k: v for k, v in args.items() if k != "timeout_ms"}
        key = hashlib.sha256(repr((server_name, media_id, kind, sorted(variant.items())))
                             .encode("utf-8")).hexdigest()
        cached = self._cached.get(key)
        if cached is not None:
            if self.clock.time_ms() - cached.fetched_ms < self.expiry_ms:
                return cached
            del self._cached[key]
        waiters = self._inflight.get(key)
        if waiters is not None:
            shared: defer.Deferred[Cached] = defer.Deferred()
            waiters.append(shared)
            return await shared
        self._inflight[key] = []
        try:
            cached = await self._fetch(key, server_name, media_id, kind,
                                       {k: str(v) for k, v in args.items()})
        except Exception as e:
            for waiter in self._inflight.pop(key):
                waiter.errback(e)
            raise
        self._keep(key, cached)
        for waiter in self._inflight.pop(key):
            waiter.callback(cached)
        return cached

    async def _fetch(self, key: str, server_name: str, media_id: str, kind: str,
                     args: dict[str, str]) -> Cached:
        path = f"{FED_MEDIA}/{kind}/{quote(media_id, safe='')}"
        self.fetches += 1
        try:
            answer = await self.fetch(server_name, path, args, limit=self.max_bytes,
                                      timeout=FETCH_TIMEOUT_S)
            content_type, disposition, data = content_part(answer)
        except HttpResponseError as e:
            if e.status == 404:
                raise NotFound("Unknown media") from e
            if e.status == 504:
                raise TimedOut("Content has not yet been uploaded",
                               errcode="M_NOT_YET_UPLOADED") from e
            raise Unavailable(f"{server_name} answered {e.status}") from e
        except ResponseTooLarge as e:
            raise Unavailable(f"Remote content exceeds {self.max_bytes} bytes",
                              errcode="M_TOO_LARGE") from e
        except DestinationRefused as e:
            raise Forbidden(str(e)) from e
        except defer.TimeoutError as e:
            raise TimedOut(f"{server_name} did not answer in time") from e
        except Exception as e:  # unreachable, a broken answer: the other server's fault
            logger.info("fetching media %s/%s: %s", server_name, media_id, e)
            raise Unavailable(f"Could not fetch the media from {server_name}") from e
        file = self.folder / key[:2] / key[2:]
        await self.files.write_bytes(file, data)
        return Cached(file, content_type, disposition, self.clock.time_ms())

    def _keep(self, key: str, cached: Cached) -> None:
        self._cached[key] = cached
        while len(self._cached) > self.max_entries:
            _, dropped = self._cached.popitem(last=False)
            dropped.path.unlink(missing_ok=True)
