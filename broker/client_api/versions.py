"""``GET /_matrix/client/versions``: the spec versions this node speaks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

SPEC_VERSIONS = ["v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9",
                 "v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16"]


def register_servlets(node: Node, router: Router) -> None:
    async def versions(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"versions": SPEC_VERSIONS, "unstable_features": {}}

    router.register("GET", "/_matrix/client/versions", versions)
