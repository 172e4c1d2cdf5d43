"""This node's media for other servers (spec: server-server-api "Content Repository"):
``GET /_matrix/federation/v1/media/download/{mediaId}`` and ``/thumbnail/{mediaId}``,
authenticated server requests answered ``multipart/mixed``.  Only this node's media is served
(the media ID names no server: it is ours), read through the same repository as local
downloads, so sealed files are opened and media removed by retention is gone here too."""

from __future__ import annotations

from broker.client_api.media import thumbnail_args, timeout_ms
from broker.federation_api import FED_V1
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.media.multipart import as_multipart
from broker.media.repository import MediaRepository
from broker.raw_response import RawResponse

MEDIA_ID = "(?P<media_id>[^/]+)"


class FederationMediaEndpoints(Endpoints):
    def __init__(self, media: MediaRepository, server_name: str) -> None:
        self.media = media
        self.server_name = server_name

    @endpoint("GET", f"{FED_V1}/media/download/{MEDIA_ID}", access=Access.SERVER)
    async def download(self, call: Call, media_id: str) -> RawResponse:
        return as_multipart(await self.media.download(
            self.server_name, media_id, timeout_ms=timeout_ms(call.request)))

    @endpoint("GET", f"{FED_V1}/media/thumbnail/{MEDIA_ID}", access=Access.SERVER)
    async def thumbnail(self, call: Call, media_id: str) -> RawResponse:
        width, height, method, animated = thumbnail_args(call.request)
        return as_multipart(await self.media.thumbnail(
            self.server_name, media_id, width, height, method, animated=animated,
            timeout_ms=timeout_ms(call.request)))
