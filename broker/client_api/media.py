"""The content repository endpoints (spec: client-server-api "Content repository").

Authenticated (v1.11+): ``GET /_matrix/client/v1/media/{download,thumbnail,config}``.
Upload stays under ``/_matrix/media``: ``POST /v3/upload``, ``POST /v1/create`` and
``PUT /v3/upload/{serverName}/{mediaId}``.  The deprecated unauthenticated ``download`` and
``thumbnail`` under ``/_matrix/media/(v3|r0)`` keep working for older clients; ``config`` there
requires a token, as the spec always said.  URL previews are not offered.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any, BinaryIO

from twisted.web.http import Request

from broker.client_api import CLIENT_V1_PREFIX
from broker.http.bodies import NoBody, RawBody
from broker.http.endpoint import Access, Call, Endpoints, Route, endpoint
from broker.http.errors import bad_param, missing_param
from broker.http.parsing import query_arg
from broker.http.validation import parse_int_arg
from broker.media.headers import check_filename, normalise_content_type
from broker.media.remote import RemoteMedia
from broker.media.repository import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, MediaRepository
from broker.media.thumbnails import METHODS
from broker.raw_response import RawResponse

LEGACY_PREFIX = "/_matrix/media/(?:v3|r0)"
MEDIA_V1_PREFIX = "/_matrix/media/v1"
AUTHED_PREFIX = f"{CLIENT_V1_PREFIX}/media"
MXC_PATH = "(?P<server_name>[^/]+)/(?P<media_id>[^/]+)"
MAX_THUMBNAIL_SIDE = 10_000
DOWNLOAD = f"/download/{MXC_PATH}(?:/(?P<file_name>[^/]+))?"
THUMBNAIL = f"/thumbnail/{MXC_PATH}"
UPLOADS = ("MediaEndpoints.upload", "MediaEndpoints.upload_to")


def with_upload_limit(routes: list[Route], uploads: tuple[str, ...], limit: int
                      ) -> list[Route]:
    """``routes`` with the body limit of those named in ``uploads`` raised to ``limit``."""
    return [dataclasses.replace(route, requires=dataclasses.replace(
                route.requires, body_limit=limit))
            if route.name in uploads and route.requires is not None else route
            for route in routes]


def _upload_filename(request: Request) -> str | None:
    name = query_arg(request, "filename")
    if name is None:
        return None
    problem = check_filename(name)
    if problem:
        raise bad_param(f"'filename' {problem}")
    return name


def _override_filename(name: str | None) -> str | None:
    problem = check_filename(name) if name is not None else None
    if problem:
        raise bad_param(f"File name {problem}")
    return name


def timeout_ms(request: Request) -> int:
    return parse_int_arg(query_arg(request, "timeout_ms"), "timeout_ms", DEFAULT_TIMEOUT_MS,
                         maximum=MAX_TIMEOUT_MS)


def thumbnail_args(request: Request) -> tuple[int, int, str, bool]:
    sizes = []
    for name in ("width", "height"):
        value = query_arg(request, name)
        if value is None:
            raise missing_param(f"Missing '{name}'")
        sizes.append(parse_int_arg(value, name, 0, minimum=1, maximum=MAX_THUMBNAIL_SIDE))
    method = query_arg(request, "method", "scale")
    if method not in METHODS:
        raise bad_param("'method' must be 'crop' or 'scale'")
    animated = query_arg(request, "animated", "false")
    if animated not in ("true", "false"):
        raise bad_param("'animated' must be true or false")
    return sizes[0], sizes[1], method, animated == "true"


class MediaEndpoints(Endpoints):
    """Uploads take bodies up to the configured upload limit (other routes: the node's)."""

    def __init__(self, media: MediaRepository, upload_limit: int,
                 remote: RemoteMedia | None = None) -> None:
        self.media = media
        self.upload_limit = upload_limit
        self.remote = remote

    def _remote_for(self, call: Call, server_name: str) -> RemoteMedia | None:
        """Who serves another server's media: the remote cache, for local users (a token);
        None for this node's media, and for unauthenticated legacy requests (404 then)."""
        if server_name == self.media.server_name or call.requester is None:
            return None
        return self.remote

    def routes(self) -> list[Route]:
        return with_upload_limit(super().routes(), UPLOADS, self.upload_limit)

    @endpoint("POST", f"{LEGACY_PREFIX}/upload", access=Access.USER, body=RawBody)
    async def upload(self, call: Call) -> tuple[int, dict[str, Any]]:
        request = call.request
        filename = _upload_filename(request)
        content_uri = await self.media.upload(call.user.user_id, _body(request),
                                              _content_type(request), filename)
        return 200, {"content_uri": content_uri}

    @endpoint("POST", f"{MEDIA_V1_PREFIX}/create", access=Access.USER, body=NoBody)
    async def create(self, call: Call) -> tuple[int, dict[str, Any]]:
        content_uri, expires = await self.media.create(call.user.user_id)
        return 200, {"content_uri": content_uri, "unused_expires_at": expires}

    @endpoint("PUT", f"{LEGACY_PREFIX}/upload/{MXC_PATH}", access=Access.USER, body=RawBody)
    async def upload_to(self, call: Call, server_name: str, media_id: str
                        ) -> tuple[int, dict[str, Any]]:
        request = call.request
        filename = _upload_filename(request)
        await self.media.upload_to_reserved(call.user.user_id, server_name, media_id,
                                            _body(request), _content_type(request), filename)
        return 200, {}

    @endpoint("GET", AUTHED_PREFIX + DOWNLOAD, access=Access.USER)
    @endpoint("GET", LEGACY_PREFIX + DOWNLOAD, access=Access.PUBLIC)
    async def download(self, call: Call, server_name: str, media_id: str,
                       file_name: str | None = None) -> RawResponse:
        remote = self._remote_for(call, server_name)
        if remote is not None:
            return await remote.download(server_name, media_id, _override_filename(file_name),
                                         timeout_ms(call.request))
        return await self.media.download(server_name, media_id,
                                         filename=_override_filename(file_name),
                                         timeout_ms=timeout_ms(call.request))

    @endpoint("GET", AUTHED_PREFIX + THUMBNAIL, access=Access.USER)
    @endpoint("GET", LEGACY_PREFIX + THUMBNAIL, access=Access.PUBLIC)
    async def thumbnail(self, call: Call, server_name: str, media_id: str) -> RawResponse:
        width, height, method, animated = thumbnail_args(call.request)
        remote = self._remote_for(call, server_name)
        if remote is not None:
            return await remote.thumbnail(server_name, media_id, width, height, method,
                                          animated, timeout_ms(call.request))
        return await self.media.thumbnail(server_name, media_id, width, height, method,
                                          animated=animated,
                                          timeout_ms=timeout_ms(call.request))

    @endpoint("GET", f"{AUTHED_PREFIX}/config", access=Access.USER)
    @endpoint("GET", f"{LEGACY_PREFIX}/config", access=Access.USER)
    async def config(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"m.upload.size": self.upload_limit}


def _content_type(request: Request) -> str:
    header = request.getHeader(b"content-type")
    return normalise_content_type(header.decode("latin-1") if header is not None else None)


def _body(request: Request) -> BinaryIO:
    """The request body as Twisted buffered it (in memory or a temporary file)."""
    return request.content if request.content is not None else io.BytesIO()
