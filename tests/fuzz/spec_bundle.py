"""The Matrix specification's Client-Server OpenAPI files, bundled into one document.

Each ``api/client-server/*.yaml`` file of the spec is its own OpenAPI document, with its own
``servers`` base path (``/_matrix/client/v3``, ``/_matrix/client/v1``, ``/.well-known``...) and
``$ref``s into ``definitions/``, ``../../schemas`` and ``../../event-schemas``.  ``bundle()``
inlines every reference, prefixes each path with its file's base path, and merges all files into
a single OpenAPI 3.1 document that schemathesis can load with ``openapi.from_dict``.

Authentication is left out of the bundled document: the fuzz sends a real user's access token on
every request, so schemathesis must not generate (or strip) credentials of its own.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC_ENV = "BROKER_MATRIX_SPEC"
SKIP_ENV = "BROKER_SKIP_SPEC_FUZZ"
#: Where the spec's data is looked for: beside the repository, then on the shared volume.
DEFAULT_SPECS = (REPO.parent / "shared" / "matrix-spec" / "data",
                 Path("/work/shared/matrix-spec/data"))
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def spec_dir() -> Path:
    """The spec's ``data`` folder: ``$BROKER_MATRIX_SPEC``, else the first of
    :data:`DEFAULT_SPECS` that holds the Client-Server API."""
    if os.environ.get(SPEC_ENV):
        return Path(os.environ[SPEC_ENV])
    for candidate in DEFAULT_SPECS:
        if (candidate / "api" / "client-server").is_dir():
            return candidate
    return DEFAULT_SPECS[0]


def client_server_files() -> list[Path]:
    folder = spec_dir() / "api" / "client-server"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def missing_spec() -> str | None:
    """Why the fuzz cannot run (the spec's data is not found), or None when it can."""
    if client_server_files():
        return None
    looked = ([os.environ[SPEC_ENV]] if os.environ.get(SPEC_ENV)
              else [str(path) for path in DEFAULT_SPECS])
    return (f"the Matrix spec's Client-Server OpenAPI files are not in {' or '.join(looked)}"
            f"/api/client-server: put the spec's data/ folder there (see "
            f"../shared/matrix-spec/README.md), point ${SPEC_ENV} at it, or set {SKIP_ENV}=1 "
            f"to skip the fuzz")


def skip_requested() -> bool:
    return os.environ.get(SKIP_ENV) == "1"


@functools.cache
def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _pointer(document: Any, fragment: str) -> Any:
    target = document
    for part in [p for p in fragment.lstrip("/").split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target


class _Inliner:
    """Replaces every ``$ref`` by a copy of its target; a reference back into its own
    expansion (a recursive schema) becomes ``{}``, which accepts anything."""

    def __init__(self) -> None:
        self._expanding: list[tuple[Path, str]] = []

    def inline(self, node: Any, here: Path) -> Any:
        if isinstance(node, list):
            return [self.inline(item, here) for item in node]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            return self._follow(node, here)
        return {key: self.inline(value, here) for key, value in node.items()}

    def _follow(self, node: dict[str, Any], here: Path) -> Any:
        location, _, fragment = node["$ref"].partition("#")
        target_file = (here.parent / location).resolve() if location else here
        key = (target_file, fragment)
        if key in self._expanding:
            return {}
        self._expanding.append(key)
        try:
            resolved = self.inline(copy.deepcopy(_pointer(_load(target_file), fragment)),
                                   target_file)
        finally:
            self._expanding.pop()
        siblings = {k: self.inline(v, here) for k, v in node.items() if k != "$ref"}
        if siblings and isinstance(resolved, dict):
            return {**resolved, **siblings}
        return resolved


def _base_path(document: dict[str, Any]) -> str:
    for server in document.get("servers") or []:
        variables = server.get("variables") or {}
        if "basePath" in variables:
            return str(variables["basePath"].get("default", ""))
    return ""


def _strip_security(operation: dict[str, Any]) -> None:
    operation.pop("security", None)


@functools.cache
def bundle() -> dict[str, Any]:
    """One OpenAPI document holding every Client-Server operation of the spec."""
    paths: dict[str, dict[str, Any]] = {}
    for path in client_server_files():
        document = _load(path)
        if not isinstance(document, dict) or "paths" not in document:
            continue
        prefix = _base_path(document)
        inlined = _Inliner().inline(document["paths"], path.resolve())
        for route, item in inlined.items():
            merged = paths.setdefault(prefix + route, {})
            for method, operation in item.items():
                if method in HTTP_METHODS:
                    _strip_security(operation)
                    operation.setdefault("x-spec-file", path.name)
                merged[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Matrix Client-Server API (bundled)", "version": "spec"},
        "servers": [{"url": "http://localhost"}],
        "paths": paths,
    }


@dataclass(frozen=True)
class SpecOperation:
    method: str
    path: str
    operation_id: str
    has_json_body: bool
    path_parameters: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations() -> list[SpecOperation]:
    """Every operation of the bundled document, in a stable order."""
    found = []
    for route, item in sorted(bundle()["paths"].items()):
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            content = ((operation.get("requestBody") or {}).get("content")) or {}
            params = tuple(p["name"] for p in operation.get("parameters") or []
                           if p.get("in") == "path")
            found.append(SpecOperation(method, route, str(operation.get("operationId", route)),
                                       "application/json" in content, params))
    return found
