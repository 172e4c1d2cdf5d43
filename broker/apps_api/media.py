"""``POST /_broker/apps/v1/media``: an application uploads a file (raw body, its
``Content-Type``, ``?filename=``) for a message's ``attachments``; it is stored in the
node's media repository in the name of the app's sender, up to the node's upload limit
(``limits.max_upload_bytes``; larger: 413 ``M_TOO_LARGE``)."""

from __future__ import annotations

from typing import Any

from broker.apps_api.calls import APPS_PREFIX, calling_app
from broker.client_api.media import (
    _body,
    _content_type,
    _upload_filename,
    with_upload_limit,
)
from broker.http.bodies import RawBody
from broker.http.endpoint import Access, Call, Endpoints, Route, endpoint
from broker.media.repository import MediaRepository


class AppMediaEndpoints(Endpoints):
    def __init__(self, media: MediaRepository, upload_limit: int) -> None:
        self.media = media
        self.upload_limit = upload_limit

    def routes(self) -> list[Route]:
        return with_upload_limit(super().routes(), ("AppMediaEndpoints.upload",),
                                 self.upload_limit)

    @endpoint("POST", f"{APPS_PREFIX}/media", access=Access.APP, body=RawBody,
              rate_limit="app_messages")
    async def upload(self, call: Call) -> tuple[int, dict[str, Any]]:
        request = call.request
        content_uri = await self.media.upload(calling_app(call).sender, _body(request),
                                              _content_type(request),
                                              _upload_filename(request))
        return 200, {"content_uri": content_uri}
