"""The fields of a government account in admin bodies and import files: checking each one,
and the account's JSON answer.

A user belongs to at most one organisation, with an optional designation, employee ID,
official email and phone.  A verification names its organisation, its basis (one of
:data:`BASES`) and may expire (``expires_at``, milliseconds since the epoch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from broker.admin.model import BadField, check_body, check_org_id
from broker.org_accounts import RESERVED_PREFIX, is_reserved_localpart
from protocol.identifiers import is_new_localpart
from storage.accounts import AccountRow, VerificationRow
from storage.organisations import Member

CLASSES = ("verified", "public")
BASES = ("document", "official_email", "in_person", "import")
DETAILS = ("designation", "employee_id", "email", "phone")
CREATE_FIELDS = ("localpart", "password", "displayname", "organisation", *DETAILS, "class",
                 "basis")
REACHABLE = "reachable_by_public"  # forced by an admin: true, false, or null (the user's choice)
UPDATE_FIELDS = ("organisation", *DETAILS, REACHABLE)
VERIFY_FIELDS = ("organisation", "basis", "expires_at")
MAX_DETAIL = 200
MAX_USER_ID = 255
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
PHONE = re.compile(r"\+?[0-9][0-9 -]{2,23}")


@dataclass(frozen=True)
class Place:
    """Where an account sits: its organisation (None: none) and the details that go with it."""

    organisation: str | None
    designation: str | None = None
    employee_id: str | None = None
    email: str | None = None
    phone: str | None = None

    def member(self, user_id: str) -> Member | None:
        if self.organisation is None:
            return None
        return Member(user_id, self.organisation, self.designation, self.employee_id,
                      self.email, self.phone)

    @staticmethod
    def of(member: Member | None) -> Place:
        if member is None:
            return Place(None)
        return Place(member.org_id, member.designation, member.employee_id, member.email,
                     member.phone)


def check_localpart(value: Any, server_name: str) -> str:
    """The user ID a ``localpart`` gives on this node."""
    if not isinstance(value, str) or not value:
        raise BadField("localpart", "must be a non-empty string")
    if not is_new_localpart(value):
        raise BadField("localpart", f"{value!r} may only contain a-z, 0-9, '.', '_', '=', '-',"
                       " '/' and '+'", errcode="M_INVALID_USERNAME")
    if is_reserved_localpart(value):
        raise BadField("localpart", f"localparts starting {RESERVED_PREFIX!r} are reserved for"
                       " organisations' accounts", errcode="M_EXCLUSIVE")
    user_id = f"@{value}:{server_name}"
    if len(user_id) > MAX_USER_ID:
        raise BadField("localpart", f"the user ID may be at most {MAX_USER_ID} characters",
                       errcode="M_INVALID_USERNAME")
    return user_id


def check_detail(name: str, value: Any) -> str | None:
    """One of :data:`DETAILS` (None or '' clears it)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_DETAIL:
        raise BadField(name, f"must be a non-empty string of at most {MAX_DETAIL} characters")
    if name == "email" and not EMAIL.fullmatch(value):
        raise BadField(name, f"{value!r} is not an email address with a lower-case domain",
                       errcode="M_INVALID_PARAM")
    if name == "phone" and not PHONE.fullmatch(value):
        raise BadField(name, f"{value!r} is not a phone number (digits, spaces, '-', an"
                       " optional leading '+')", errcode="M_INVALID_PARAM")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BadField(name, f"must be one of: {', '.join(choices)}",
                       errcode="M_INVALID_PARAM")
    return str(value)


def place_from(body: dict[str, Any], before: Place | None = None) -> Place:
    """The place a create body (``before`` None) or an update body gives; in an update an
    absent field keeps its value and null clears it."""
    before = before or Place(None)
    organisation = before.organisation
    if "organisation" in body:
        organisation = None if body["organisation"] is None else check_org_id(
            body["organisation"], "organisation")
    details = {name: check_detail(name, body[name]) if name in body else getattr(before, name)
               for name in DETAILS}
    if organisation is None and any(details.values()):
        name = next(n for n in DETAILS if details[n])
        raise BadField(name, "needs an organisation: only a member of one has"
                       f" a {name.replace('_', ' ')}", errcode="M_INVALID_PARAM")
    return Place(organisation, **details)


def check_update(body: dict[str, Any]) -> None:
    check_body(body, UPDATE_FIELDS)
    if REACHABLE in body and body[REACHABLE] is not None and not isinstance(
            body[REACHABLE], bool):
        raise BadField(REACHABLE, "must be true, false or null")


def check_create(body: dict[str, Any]) -> None:
    check_body(body, CREATE_FIELDS, ("localpart",))
    for name in ("password", "displayname"):
        if name in body and not isinstance(body[name], str):
            raise BadField(name, "must be a string")
    if "class" in body:
        check_choice("class", body["class"], CLASSES)
    if "basis" in body:
        check_choice("basis", body["basis"], BASES)
        if body.get("class") != "verified":
            raise BadField("basis", "is only given with \"class\": \"verified\"",
                           errcode="M_INVALID_PARAM")


def verification_state(row: VerificationRow, now_ms: int) -> str:
    if row.revoked_ts is not None:
        return "revoked"
    if row.expires_ts is not None and row.expires_ts <= now_ms:
        return "expired"
    return "active"


def verification_json(row: VerificationRow, now_ms: int) -> dict[str, Any]:
    found: dict[str, Any] = {
        "organisation": row.org_id, "basis": row.basis, "verified_by": row.verified_by,
        "verified_at": row.verified_ts, "state": verification_state(row, now_ms)}
    if row.expires_ts is not None:
        found["expires_at"] = row.expires_ts
    if row.revoked_ts is not None:
        found.update(revoked_by=row.revoked_by, revoked_at=row.revoked_ts)
    return found


def account_json(row: AccountRow, user_class: str, verification: dict[str, Any] | None,
                 roles: list[dict[str, str]], reachable: bool | None = None) -> dict[str, Any]:
    place = Place.of(row.member)
    return {"user_id": row.user_id, "displayname": row.displayname,
            "created_at": row.created_ts, "expires_at": row.expires_ts,
            "deactivated": row.deactivated,
            "class": user_class, "organisation": place.organisation,
            **{name: getattr(place, name) for name in DETAILS},
            "verification": verification, "roles": roles, REACHABLE: reachable}
