"""Endpoint discovery: every module of an API package that defines
``register_servlets(node, router)`` is registered, in name order."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any


def register_package(package: ModuleType, node: Any, router: Any) -> None:
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        register = getattr(module, "register_servlets", None)
        if register is not None:
            register(node, router)
