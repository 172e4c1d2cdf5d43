"""The Client-Server API: one module per area, each exposing ``register_servlets(node, router)``.

Modules are discovered in this package, so adding an area is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

CLIENT_PREFIX = "/_matrix/client/(?:v3|r0)"
CLIENT_V1_PREFIX = "/_matrix/client/v1"


def register_all(node: Node, router: Router) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register_servlets", None)
        if register is not None:
            register(node, router)
