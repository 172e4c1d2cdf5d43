"""The Server-Server API: one module per area, each exposing ``register_servlets(node, router)``.

Modules are discovered in this package, so adding an area is adding a module. The node calls
``register_all(node, router)`` from its wiring (next to ``broker.client_api.register_all``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from broker.http.endpoints import register_package

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
KEY_V2 = "/_matrix/key/v2"


def register_all(node: Node, router: Router) -> None:
    register_package(sys.modules[__name__], node, router)
