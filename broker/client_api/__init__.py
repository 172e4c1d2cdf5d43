"""The Client-Server API: one module per area, each exposing ``register_servlets(node, router)``.

Modules are discovered in this package, so adding an area is adding a module.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from broker.http.endpoints import register_package

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

CLIENT_PREFIX = "/_matrix/client/(?:v3|r0)"
CLIENT_V1_PREFIX = "/_matrix/client/v1"


def register_all(node: Node, router: Router) -> None:
    register_package(sys.modules[__name__], node, router)
