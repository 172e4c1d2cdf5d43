"""What administration is about: organisation IDs and fields, the tree, roles and grants.

Organisation IDs are stable: one or more labels separated by dots (``mha``, ``mha.dm``), each
label 1-32 characters of lower-case letters, digits, ``_`` and ``-``, starting with a letter or
digit; at most 128 characters in all.  The dots are a naming convention: the parent is the
``parent`` field, so an organisation keeps its ID when it moves in the tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from broker.errors import Conflict, DomainError, InvalidInput, MalformedContent, MissingInput
from storage.organisations import Organisation

ORG_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}(?:\.[a-z0-9][a-z0-9_-]{0,31})*")
MAX_ORG_ID = 128
MAX_NAME = 200
LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")

ROLES = ("node_admin", "org_admin", "verifier", "broadcaster", "auditor", "app_manager")
# The organisation setting that says what a correct emailed code does: verify at once, or
# queue the request for a verifier of the organisation (the default).
EMAIL_VERIFICATION = "email_verification"
EMAIL_MODES = ("queue", "auto")
# The organisation setting that says which profile fields each audience sees of its members
# (see broker/admin/profile_visibility.py): audience -> the fields it sees.
PROFILE_VISIBILITY = "profile_visibility"
# Whether members may leave the organisation's broadcast room (broker/broadcasts/).
BROADCAST_LEAVE_ALLOWED = "broadcast_leave_allowed"
PROFILE_FIELDS = ("displayname", "avatar_url", "designation", "organisation", "email", "phone")
SAME_ORGANISATION = "same_organisation"
VERIFIED_THIS_NODE = "verified_this_node"
VERIFIED_OTHER_NODES = "verified_other_nodes"
PUBLIC_AUDIENCE = "public"
AUDIENCES = (SAME_ORGANISATION, VERIFIED_THIS_NODE, VERIFIED_OTHER_NODES, PUBLIC_AUDIENCE)
# The organisation setting that gives rooms its members create the organisation's default
# retention (see broker/retention_orgs.py): {"max_lifetime": milliseconds}.
RETENTION = "retention"


class BadField(MalformedContent):
    """A field of an admin body or file is wrong; ``field`` names it (for line numbers)."""

    def __init__(self, field: str, message: str, *, errcode: str | None = None) -> None:
        super().__init__(f"'{field}': {message}", errcode=errcode)
        self.field = field


class MissingField(MissingInput):
    def __init__(self, field: str) -> None:
        super().__init__(f"'{field}' is required")
        self.field = field


class FieldConflict(Conflict):
    """A field names something another organisation holds (an email domain)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"'{field}': {message}")
        self.field = field


class EntryError(InvalidInput):
    """Entry ``index`` of a list of organisations (a file, an import) is wrong at ``field``."""

    def __init__(self, index: int, error: DomainError) -> None:
        self.field = str(getattr(error, "field", ""))
        where = f"organisations[{index}]" + (f".{self.field}" if self.field else "")
        message = error.message
        if self.field and message.startswith(f"'{self.field}': "):
            message = message[len(self.field) + 4:]
        super().__init__(f"{where}: {message}", errcode=error.errcode)
        self.index = index
        self.cause = error


@dataclass(frozen=True)
class Grant:
    """A role over an organisation's sub-tree, or over the whole node (``organisation`` None)."""

    role: str
    organisation: str | None = None

    def to_json(self) -> dict[str, str]:
        found = {"role": self.role}
        if self.organisation is not None:
            found["organisation"] = self.organisation
        return found


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: a user ID and the client's address, or a command (whose
    ``authority`` is given: the grants it acts with, instead of the ones stored for it)."""

    user_id: str
    client_ip: str
    authority: tuple[Grant, ...] | None = None


NODE_AUTHORITY = (Grant("node_admin"),)


def check_org_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str):
        raise BadField(field, "must be a string")
    if len(value) > MAX_ORG_ID or not ORG_ID.fullmatch(value):
        raise BadField(field, f"{value!r} is not an organisation ID (dot-separated labels of"
                       " a-z, 0-9, '_' and '-', such as 'mha.dm')", errcode="M_INVALID_PARAM")
    return value


def check_body(body: dict[str, Any], allowed: Iterable[str], required: Iterable[str] = ()
               ) -> None:
    """Refuse a field not in ``allowed`` (400 M_BAD_JSON naming it) or a missing one."""
    allowed = tuple(allowed)
    for name in body:
        if name not in allowed:
            raise BadField(name, f"unknown field (expected one of: {', '.join(allowed)})")
    for name in required:
        if body.get(name) is None:
            raise MissingField(name)


def optional_text(body: dict[str, Any], field: str, maximum: int) -> str | None:
    """The one optional text field of a body that holds nothing else (null: absent)."""
    check_body(body, (field,))
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise BadField(field, "must be a string")
    if value is not None and len(value) > maximum:
        raise BadField(field, f"must be at most {maximum} characters",
                       errcode="M_INVALID_PARAM")
    return value


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadField(field, "must be a non-empty string")
    if len(value) > MAX_NAME:
        raise BadField(field, f"must be at most {MAX_NAME} characters")
    return value


def _names(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadField(field, "must be an object of language code to name, such as {\"hi\": ...}")
    for language, name in value.items():
        if not LANGUAGE.fullmatch(language):
            raise BadField(f"{field}.{language}", "is not a language code such as 'hi'")
        _name(name, f"{field}.{language}")
    return dict(value)


def _domains(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise BadField(field, "must be a list of domain names")
    found: list[str] = []
    for index, domain in enumerate(value):
        if not isinstance(domain, str) or not DOMAIN.fullmatch(domain) or len(domain) > 253:
            raise BadField(f"{field}[{index}]", f"{domain!r} is not a lower-case domain name")
        if domain in found:
            raise BadField(f"{field}[{index}]", f"{domain!r} is listed twice")
        found.append(domain)
    return tuple(found)


def _settings(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadField(field, "must be an object")
    _check_json(value, field)
    mode = value.get(EMAIL_VERIFICATION, EMAIL_MODES[0])
    if mode not in EMAIL_MODES:
        raise BadField(f"{field}.{EMAIL_VERIFICATION}", f"must be one of:"
                       f" {', '.join(EMAIL_MODES)}", errcode="M_INVALID_PARAM")
    if PROFILE_VISIBILITY in value:
        check_profile_visibility(value[PROFILE_VISIBILITY], f"{field}.{PROFILE_VISIBILITY}")
    if RETENTION in value:
        check_retention(value[RETENTION], f"{field}.{RETENTION}")
    if not isinstance(value.get(BROADCAST_LEAVE_ALLOWED, False), bool):
        raise BadField(f"{field}.{BROADCAST_LEAVE_ALLOWED}", "must be true or false")
    return dict(value)


def check_retention(value: Any, field: str) -> int:
    """A ``retention`` setting: ``{"max_lifetime": milliseconds}``, a positive integer as
    ``m.room.retention`` states it; the lifetime."""
    if not isinstance(value, dict) or set(value) != {"max_lifetime"}:
        raise BadField(field, 'must be an object {"max_lifetime": milliseconds}',
                       errcode="M_INVALID_PARAM")
    lifetime = value["max_lifetime"]
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
        raise BadField(f"{field}.max_lifetime", "must be a positive number of milliseconds",
                       errcode="M_INVALID_PARAM")
    return lifetime


def check_profile_visibility(value: Any, field: str) -> dict[str, frozenset[str]]:
    """A ``profile_visibility`` setting: an object of audience (:data:`AUDIENCES`) to the
    list of profile fields (:data:`PROFILE_FIELDS`) it sees; an audience left out takes what
    the organisation above (or the node's default) gives it."""
    if not isinstance(value, dict):
        raise BadField(field, "must be an object of audience to a list of profile fields")
    found: dict[str, frozenset[str]] = {}
    for audience, fields in value.items():
        where = f"{field}.{audience}"
        if audience not in AUDIENCES:
            raise BadField(where, f"unknown audience (expected one of: {', '.join(AUDIENCES)})",
                           errcode="M_INVALID_PARAM")
        if not isinstance(fields, list):
            raise BadField(where, "must be a list of profile fields")
        for index, name in enumerate(fields):
            if name not in PROFILE_FIELDS:
                raise BadField(f"{where}[{index}]", f"unknown profile field {name!r} (expected"
                               f" one of: {', '.join(PROFILE_FIELDS)})",
                               errcode="M_INVALID_PARAM")
            if fields.index(name) != index:
                raise BadField(f"{where}[{index}]", f"{name!r} is listed twice",
                               errcode="M_INVALID_PARAM")
        found[audience] = frozenset(fields)
    return found


def email_mode(org: Organisation) -> str:
    """What a correct emailed code does for ``org``: ``queue`` or ``auto``."""
    mode = org.settings.get(EMAIL_VERIFICATION, EMAIL_MODES[0])
    return str(mode)


def _check_json(value: Any, field: str) -> None:
    """Settings are JSON that canonical JSON can encode: strings, integers, booleans, null,
    lists and objects (no fractions, no dates)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadField(field, f"keys must be strings, got {key!r}")
            _check_json(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{field}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 2**53:
            raise BadField(field, "integers must lie within +-(2**53 - 1)")
    elif value is not None and not isinstance(value, str | bool):
        raise BadField(field, f"must be a string, integer, boolean, list or object, got {value!r}")


CREATE_FIELDS = ("id", "name", "parent", "names", "email_domains", "settings")
UPDATE_FIELDS = ("name", "parent", "names", "email_domains", "settings")


def organisation_from(body: dict[str, Any], now_ms: int,
                      before: Organisation | None = None) -> Organisation:
    """The organisation a create body (``before`` None) or an update body describes; each
    field is checked and a wrong one named.  In an update, an absent field keeps its value
    and ``"parent": null`` makes the organisation top-level."""
    if before is None:
        check_body(body, CREATE_FIELDS, ("id", "name"))
        org_id = check_org_id(body["id"])
        before = Organisation(org_id, "", created_ts=now_ms)
    else:
        check_body(body, UPDATE_FIELDS)
        org_id = before.org_id
    parent = before.parent
    if "parent" in body:
        parent = None if body["parent"] is None else check_org_id(body["parent"], "parent")
    return Organisation(
        org_id,
        _name(body["name"], "name") if "name" in body else before.name,
        parent,
        _names(body["names"], "names") if "names" in body else before.names,
        _domains(body["email_domains"], "email_domains") if "email_domains" in body
        else before.email_domains,
        _settings(body["settings"], "settings") if "settings" in body else before.settings,
        before.created_ts, now_ms)


def organisation_json(org: Organisation) -> dict[str, Any]:
    return {"id": org.org_id, "name": org.name, "names": org.names, "parent": org.parent,
            "email_domains": list(org.email_domains), "settings": org.settings}


class Tree:
    """The organisations as a tree: parents, children and sub-trees."""

    def __init__(self, orgs: Iterable[Organisation]) -> None:
        self.orgs = {org.org_id: org for org in orgs}
        self._children: dict[str | None, list[str]] = {}
        for org in sorted(self.orgs.values(), key=lambda o: o.org_id):
            self._children.setdefault(org.parent, []).append(org.org_id)

    def __contains__(self, org_id: object) -> bool:
        return org_id in self.orgs

    def get(self, org_id: str) -> Organisation | None:
        return self.orgs.get(org_id)

    def children(self, org_id: str | None) -> list[str]:
        return list(self._children.get(org_id, ()))

    def ancestors(self, org_id: str) -> Iterator[str]:
        """``org_id``, its parent, its parent's parent... up to the top (stops on a loop)."""
        seen: set[str] = set()
        current: str | None = org_id
        while current is not None and current not in seen:
            seen.add(current)
            yield current
            org = self.orgs.get(current)
            current = org.parent if org else None

    def covers(self, scope: str, org_id: str) -> bool:
        """Whether ``org_id`` lies in ``scope``'s sub-tree (``scope`` itself included)."""
        return scope in self.ancestors(org_id)

    def subtree(self, org_id: str) -> list[str]:
        found, pending = [], [org_id]
        while pending:
            current = pending.pop()
            found.append(current)
            pending.extend(self._children.get(current, ()))
        return found

    def check_placement(self, org_id: str, parent: str | None) -> None:
        """Refuse an unknown parent, or one inside ``org_id``'s own sub-tree (a cycle)."""
        if parent is None:
            return
        if parent not in self.orgs:
            raise BadField("parent", f"unknown organisation {parent!r}",
                           errcode="M_INVALID_PARAM")
        if org_id in self.ancestors(parent):
            raise BadField("parent", f"{parent!r} lies inside {org_id!r}'s sub-tree: the tree"
                           " would have a cycle", errcode="M_INVALID_PARAM")

    def nested(self, org_id: str | None = None) -> list[dict[str, Any]]:
        """The (sub-)tree below ``org_id`` as nested JSON objects."""
        return [{**organisation_json(self.orgs[child]), "children": self.nested(child)}
                for child in self.children(org_id)]
