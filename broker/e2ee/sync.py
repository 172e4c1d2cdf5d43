"""Collects the end-to-end encryption fields of a /sync response from every module of
``broker.e2ee`` that defines ``sync_fields``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.e2ee.context import E2ee

SyncFields = Callable[..., Awaitable[dict[str, Any]]]


def providers() -> list[SyncFields]:
    """Every ``sync_fields`` of the package's modules, in module order (found once, by the
    composition root: not on each /sync)."""
    import broker.e2ee as package

    found: list[SyncFields] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name == "sync":
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        provider = getattr(module, "sync_fields", None)
        if provider is not None:
            found.append(provider)
    return found


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(value)
        else:
            into[key] = value


async def collect(e2ee: E2ee, found: Sequence[SyncFields], requester: Requester,
                  since: int | None, now: int) -> dict[str, Any]:
    """The merged fields of the ``found`` providers; empty sections are left out."""
    merged: dict[str, Any] = {}
    for provider in found:
        part = await provider(e2ee, requester, since, now)
        if merged.keys().isdisjoint(part):  # the usual case: each provider has its own fields
            merged.update(part)
        else:
            _merge(merged, part)
    return merged


def has_news(fields: dict[str, Any]) -> bool:
    """Whether the fields carry something a waiting client must be woken for."""
    to_device = fields.get("to_device", {}).get("events")
    lists = fields.get("device_lists", {})
    return bool(to_device or lists.get("changed") or lists.get("left"))
