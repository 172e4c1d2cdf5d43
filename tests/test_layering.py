"""The layer arrows: broker -> federation -> storage -> protocol, and nothing points back.

Every import in every product module is read from its source (including imports inside
functions and under ``TYPE_CHECKING``), so a dependency cannot hide from this check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What each top-level package may import from the project (besides itself).
ALLOWED = {
    "protocol": set(),
    "storage": {"protocol"},
    "federation": {"storage", "protocol"},
    "broker": {"federation", "storage", "protocol"},
}
PROJECT = set(ALLOWED)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def layer_violations(package: str) -> list[str]:
    violations = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.split(".", 1)[0]
            if top in PROJECT and top != package and top not in ALLOWED[package]:
                violations.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return violations


# Inside broker, only the HTTP layer (and the composition root, which builds the router) speaks
# HTTP: services and domain modules raise broker.errors, whichever API called them.
HTTP_LAYER = ("broker/http/", "broker/client_api/", "broker/federation_api/", "broker/admin_api/",
              "broker/apps_api/", "broker/node.py")


def http_imports_outside_the_http_layer() -> list[str]:
    found = []
    for path in sorted((REPO / "broker").rglob("*.py")):
        relative = str(path.relative_to(REPO))
        if relative.startswith(HTTP_LAYER):
            continue
        found.extend(f"{relative}:{line} imports {module}"
                     for line, module in imported_modules(path)
                     if module == "broker.http" or module.startswith("broker.http."))
    return found


def test_only_the_http_layer_imports_http() -> None:
    assert http_imports_outside_the_http_layer() == []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    assert layer_violations(package) == []


def test_an_upward_import_is_reported(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from broker.node import Node\n")
    assert imported_modules(module) == [(2, "broker.node")]
