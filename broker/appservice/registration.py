"""Application service registration files, in the standard YAML shape.

Each file names one service: ``id``, ``url`` (null: no traffic), ``as_token``, ``hs_token``,
``sender_localpart``, ``namespaces`` (``users``/``aliases``/``rooms``: lists of
``{"exclusive", "regex"}``), ``rate_limited``, ``receive_ephemeral`` (MSC2409, also under its
unstable name ``de.sorunome.msc2409.push_ephemeral``) and ``receive_to_device`` (MSC4203, also
``org.matrix.msc4203.receive_to_device``).  Everything is checked when the node starts: a problem
stops it with the file and the field named; two services with the same id, as_token or
hs_token, or a token shared between two roles, are refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

NAMESPACE_KINDS = ("users", "aliases", "rooms")
# Unstable names of the opt-ins, as bridges written for Synapse spell them.
EPHEMERAL_KEYS = ("receive_ephemeral", "de.sorunome.msc2409.push_ephemeral",
                  "org.matrix.msc2409.push_ephemeral")
TO_DEVICE_KEYS = ("receive_to_device", "org.matrix.msc4203.receive_to_device")
KNOWN_KEYS = frozenset({"id", "url", "as_token", "hs_token", "sender_localpart", "namespaces",
                        "rate_limited", "protocols", "push_ephemeral", *EPHEMERAL_KEYS,
                        *TO_DEVICE_KEYS, "org.matrix.msc3202", "io.element.msc4190"})
LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")


@dataclass(frozen=True)
class Namespace:
    regex: re.Pattern[str]
    exclusive: bool

    def matches(self, value: str) -> bool:
        # Anchored at the start, as homeservers have always matched them.
        return self.regex.match(value) is not None


@dataclass(frozen=True)
class Registration:
    """One application service, as its registration file describes it."""

    id: str
    url: str | None
    as_token: str
    hs_token: str
    sender: str  # the full user ID of sender_localpart
    users: tuple[Namespace, ...]
    aliases: tuple[Namespace, ...]
    rooms: tuple[Namespace, ...]
    rate_limited: bool
    receive_ephemeral: bool
    receive_to_device: bool
    protocols: tuple[str, ...]
    path: str

    def in_user_namespace(self, user_id: str) -> bool:
        """Whether the service may act as ``user_id``: its sender or a user its namespaces
        (exclusive or not) cover."""
        return user_id == self.sender or any(ns.matches(user_id) for ns in self.users)

    def owns_user(self, user_id: str) -> bool:
        """Whether ``user_id`` is in one of its exclusive user namespaces."""
        return user_id == self.sender or any(
            ns.exclusive and ns.matches(user_id) for ns in self.users)

    def in_alias_namespace(self, alias: str, *, exclusive: bool = False) -> bool:
        return any(ns.matches(alias) for ns in self.aliases if ns.exclusive or not exclusive)

    def in_room_namespace(self, room_id: str) -> bool:
        return any(ns.matches(room_id) for ns in self.rooms)


class RegistrationError(ValueError):
    """A registration file that cannot be used: the file, the field and what is wrong (the
    config turns it into a ConfigError of ``app_services``)."""


def _fail(path: Path, field: str, message: str) -> RegistrationError:
    return RegistrationError(f"{path}: {field}: {message}" if field else f"{path}: {message}")


def _string(path: Path, data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise _fail(path, field, f"expected a non-empty string, got {value!r}")
    return value


def _flag(path: Path, data: dict[str, Any], fields: Sequence[str], default: bool) -> bool:
    for field in fields:
        if field in data:
            value = data[field]
            if not isinstance(value, bool):
                raise _fail(path, field, f"expected true/false, got {value!r}")
            return value
    return default


def _namespaces(path: Path, raw: Any) -> dict[str, tuple[Namespace, ...]]:
    if not isinstance(raw, dict):
        raise _fail(path, "namespaces", f"expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(NAMESPACE_KINDS))
    if unknown:
        raise _fail(path, f"namespaces.{unknown[0]}",
                    f"unknown namespace (expected one of: {', '.join(NAMESPACE_KINDS)})")
    parsed: dict[str, tuple[Namespace, ...]] = {}
    for kind in NAMESPACE_KINDS:
        items = raw.get(kind) or []
        if not isinstance(items, list):
            raise _fail(path, f"namespaces.{kind}", f"expected a list, got {items!r}")
        namespaces = []
        for i, item in enumerate(items):
            where = f"namespaces.{kind}[{i}]"
            if not isinstance(item, dict):
                raise _fail(path, where, f"expected a mapping, got {item!r}")
            exclusive, regex = item.get("exclusive"), item.get("regex")
            if not isinstance(exclusive, bool):
                raise _fail(path, f"{where}.exclusive", f"expected true/false, got {exclusive!r}")
            if not isinstance(regex, str) or not regex:
                raise _fail(path, f"{where}.regex", f"expected a regular expression, got {regex!r}")
            try:
                namespaces.append(Namespace(re.compile(regex), exclusive))
            except re.error as e:
                raise _fail(path, f"{where}.regex", f"not a valid regular expression: {e}"
                            ) from None
        parsed[kind] = tuple(namespaces)
    return parsed


def _url(path: Path, data: dict[str, Any]) -> str | None:
    if "url" not in data:
        raise _fail(path, "url", "is required (null: the service receives no traffic)")
    url = data["url"]
    if url is None:
        return None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") \
            or not urlsplit(url).hostname:
        raise _fail(path, "url", f"expected an http(s) URL or null, got {url!r}")
    return url.rstrip("/")


def parse_registration(data: Any, path: Path, server_name: str) -> Registration:
    """One registration document, checked; RegistrationError names the file and the field."""
    if not isinstance(data, dict):
        raise _fail(path, "", f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise _fail(path, unknown[0], "unknown key")
    sender_localpart = _string(path, data, "sender_localpart")
    if not LOCALPART.fullmatch(sender_localpart):
        raise _fail(path, "sender_localpart", f"not a valid user localpart: {sender_localpart!r}")
    as_token, hs_token = _string(path, data, "as_token"), _string(path, data, "hs_token")
    if as_token == hs_token:
        raise _fail(path, "hs_token", "must differ from as_token")
    protocols = data.get("protocols") or []
    if not isinstance(protocols, list) or not all(isinstance(p, str) for p in protocols):
        raise _fail(path, "protocols", f"expected a list of strings, got {protocols!r}")
    if "namespaces" not in data:
        raise _fail(path, "namespaces", "is required")
    namespaces = _namespaces(path, data["namespaces"])
    return Registration(
        id=_string(path, data, "id"), url=_url(path, data), as_token=as_token,
        hs_token=hs_token, sender=f"@{sender_localpart}:{server_name}",
        users=namespaces["users"], aliases=namespaces["aliases"], rooms=namespaces["rooms"],
        rate_limited=_flag(path, data, ("rate_limited",), True),
        receive_ephemeral=_flag(path, data, (*EPHEMERAL_KEYS, "push_ephemeral"), False),
        receive_to_device=_flag(path, data, TO_DEVICE_KEYS, False),
        protocols=tuple(protocols), path=str(path))


def read_registration(path: Path, server_name: str) -> Registration:
    if not path.is_file():
        raise _fail(path, "", "registration file does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise _fail(path, "", f"not valid YAML: {e}") from None
    return parse_registration(data, path, server_name)


def load_registrations(paths: Sequence[Path], server_name: str) -> list[Registration]:
    """Every configured registration, or RegistrationError for the first bad file or for a
    duplicate id or token (a token must name one service in one role)."""
    registrations: list[Registration] = []
    ids: dict[str, Path] = {}
    tokens: dict[str, tuple[Path, str]] = {}
    for path in paths:
        registration = read_registration(path, server_name)
        if registration.id in ids:
            raise _fail(path, "id", f"{registration.id!r} is also the id in {ids[registration.id]}")
        ids[registration.id] = path
        for field in ("as_token", "hs_token"):
            token = getattr(registration, field)
            if token in tokens:
                other, other_field = tokens[token]
                raise _fail(path, field, f"the same token is the {other_field} of {other}")
            tokens[token] = (path, field)
        registrations.append(registration)
    return registrations
