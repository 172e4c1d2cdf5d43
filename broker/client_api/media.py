"""The content repository endpoints (spec: client-server-api "Content repository").

Authenticated (v1.11+): ``GET /_matrix/client/v1/media/{download,thumbnail,config}``.
Upload stays under ``/_matrix/media``: ``POST /v3/upload``, ``POST /v1/create`` and
``PUT /v3/upload/{serverName}/{mediaId}``.  The deprecated unauthenticated ``download`` and
``thumbnail`` under ``/_matrix/media/(v3|r0)`` keep working for older clients; ``config`` there
requires a token, as the spec always said.  URL previews are not offered.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any, BinaryIO

from twisted.internet import defer, task
from twisted.web.http import Request

from broker.client_api import CLIENT_V1_PREFIX
from broker.http.errors import bad_param, missing_param
from broker.http.parsing import query_arg
from broker.http.server import RawResponse
from broker.http.validation import parse_int_arg
from broker.media.headers import check_filename, normalise_content_type
from broker.media.repository import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS
from broker.media.thumbnails import METHODS

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

logger = logging.getLogger(__name__)

LEGACY_PREFIX = "/_matrix/media/(?:v3|r0)"
MEDIA_V1_PREFIX = "/_matrix/media/v1"
AUTHED_PREFIX = f"{CLIENT_V1_PREFIX}/media"
MXC_PATH = "(?P<server_name>[^/]+)/(?P<media_id>[^/]+)"
PURGE_INTERVAL_S = 3600
MAX_THUMBNAIL_SIDE = 10_000


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


def _timeout_ms(request: Request) -> int:
    return parse_int_arg(query_arg(request, "timeout_ms"), "timeout_ms", DEFAULT_TIMEOUT_MS,
                         maximum=MAX_TIMEOUT_MS)


def _thumbnail_args(request: Request) -> tuple[int, int, str, bool]:
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


def register_servlets(node: Node, router: Router) -> None:
    media = node.media
    upload_limit = node.config.max_upload_bytes

    async def upload(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        filename = _upload_filename(request)
        content_type = _content_type(request)
        content_uri = await media.upload(requester.user_id, _body(request), content_type,
                                         filename)
        return 200, {"content_uri": content_uri}

    async def create(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        content_uri, expires = await media.create(requester.user_id)
        return 200, {"content_uri": content_uri, "unused_expires_at": expires}

    async def upload_to(request: Request, server_name: str, media_id: str
                        ) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        filename = _upload_filename(request)
        await media.upload_to_reserved(requester.user_id, server_name, media_id,
                                       _body(request), _content_type(request), filename)
        return 200, {}

    async def download(request: Request, server_name: str, media_id: str,
                       file_name: str | None = None) -> RawResponse:
        return await media.download(server_name, media_id,
                                    filename=_override_filename(file_name),
                                    timeout_ms=_timeout_ms(request))

    async def thumbnail(request: Request, server_name: str, media_id: str) -> RawResponse:
        width, height, method, animated = _thumbnail_args(request)
        return await media.thumbnail(server_name, media_id, width, height, method,
                                     animated=animated, timeout_ms=_timeout_ms(request))

    async def config(request: Request) -> tuple[int, dict[str, Any]]:
        await node.auth.get_requester(request)
        return 200, {"m.upload.size": upload_limit}

    def authenticated(handler: Any) -> Any:
        async def checked(request: Request, **args: str) -> Any:
            await node.auth.get_requester(request)
            return await handler(request, **args)

        return checked

    download_path = f"/download/{MXC_PATH}(?:/(?P<file_name>[^/]+))?"
    thumbnail_path = f"/thumbnail/{MXC_PATH}"
    router.register("POST", f"{LEGACY_PREFIX}/upload", upload, max_body=upload_limit)
    router.register("PUT", f"{LEGACY_PREFIX}/upload/{MXC_PATH}", upload_to,
                    max_body=upload_limit)
    router.register("POST", f"{MEDIA_V1_PREFIX}/create", create)
    router.register("GET", AUTHED_PREFIX + download_path, authenticated(download))
    router.register("GET", AUTHED_PREFIX + thumbnail_path, authenticated(thumbnail))
    router.register("GET", f"{AUTHED_PREFIX}/config", config)
    router.register("GET", LEGACY_PREFIX + download_path, download)
    router.register("GET", LEGACY_PREFIX + thumbnail_path, thumbnail)
    router.register("GET", f"{LEGACY_PREFIX}/config", config)

    async def purge_expired() -> None:
        try:
            await media.purge_expired_reservations()
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("purging expired media reservations failed")

    purge = task.LoopingCall(lambda: defer.ensureDeferred(purge_expired()))
    purge.clock = node.reactor
    purge.start(PURGE_INTERVAL_S, now=False)


def _content_type(request: Request) -> str:
    header = request.getHeader(b"content-type")
    return normalise_content_type(header.decode("latin-1") if header is not None else None)


def _body(request: Request) -> BinaryIO:
    """The request body as Twisted buffered it (in memory or a temporary file)."""
    return request.content if request.content is not None else io.BytesIO()
