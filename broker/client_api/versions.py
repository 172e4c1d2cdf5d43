"""``GET /_matrix/client/versions``: the spec versions this node speaks."""

from __future__ import annotations

from typing import Any

from broker.http.endpoint import Access, Call, Endpoints, endpoint

SPEC_VERSIONS = ["v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9",
                 "v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16"]


class VersionEndpoints(Endpoints):
    @endpoint("GET", "/_matrix/client/versions", access=Access.PUBLIC)
    async def versions(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"versions": SPEC_VERSIONS, "unstable_features": {}}
