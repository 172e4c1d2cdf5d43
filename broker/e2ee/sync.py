"""Collects the end-to-end encryption fields of a /sync response from every module of
``broker.e2ee`` that defines ``sync_fields``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.e2ee.context import E2ee

SyncFields = Callable[..., Awaitable[dict[str, Any]]]
#: ``(e2ee, requester, since, now, member_events) -> key | None``: what a module's fields
#: depend on for this requester when it can tell from memory (``member_events``: the rooms
#: that changed hold membership events), None when it cannot.
ShareKey = Callable[..., Hashable | None]


def _modules() -> list[Any]:
    """The package's modules that define ``sync_fields``, in module order."""
    import broker.e2ee as package

    found: list[Any] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name == "sync":
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if getattr(module, "sync_fields", None) is not None:
            found.append(module)
    return found


def providers() -> list[SyncFields]:
    """Every ``sync_fields`` of the package's modules, in module order (found once, by the
    composition root: not on each /sync)."""
    return [module.sync_fields for module in _modules()]


def share_key_providers() -> list[ShareKey | None]:
    """Each provider's ``sync_share_key``, in the order of :func:`providers` (None for a module
    that has none: its fields are never shared)."""
    return [getattr(module, "sync_share_key", None) for module in _modules()]


def share_key(e2ee: E2ee, found: Sequence[ShareKey | None], requester: Requester,
              since: int, now: int, member_events: bool) -> tuple[Hashable, ...] | None:
    """What the fields of every provider depend on for ``requester``, from memory; None when
    any provider cannot tell (the fields are then built for the requester alone)."""
    parts: list[Hashable] = []
    for provider in found:
        part = provider(e2ee, requester, since, now, member_events) if provider else None
        if part is None:
            return None
        parts.append(part)
    return tuple(parts)


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
