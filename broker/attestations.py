"""What this node attests of its own users to other nodes: a verified user's class, the
organisation they are verified for and since when.

Two ways out, both signed by this node:

- in the membership events the node creates for its users: a join carries the content key
  ``in.gov.broker.attestation`` ``{"class": "verified", "organisation": ..., "since": <ms>}``
  while the user is verified, and none while they are public (covered by the event's server
  signature, as all content is).  The node sets the key itself on every membership event it
  builds, whatever a client or another server's template put there: a membership of anyone
  else, or of a public user, carries none;
- the answer to the federation query ``in.gov.broker.user_status`` (:func:`user_status`).

The other nodes' side is :mod:`broker.remote_classes`.  See docs/admin/groups.md.
"""

from __future__ import annotations

from typing import Any

from broker.admin.classes import PUBLIC, VERIFIED, UserClasses

ATTESTATION = "in.gov.broker.attestation"
#: The federation query (``GET /_matrix/federation/v1/query/in.gov.broker.user_status``).
USER_STATUS_QUERY = "in.gov.broker.user_status"


def attestation_of(classes: UserClasses, user_id: str) -> dict[str, Any] | None:
    """The attestation a join of ``user_id`` (a local user) carries now; None while public."""
    row = classes.verification(user_id)
    if row is None:
        return None
    return {"class": VERIFIED, "organisation": row.org_id, "since": row.verified_ts}


def attested_member_content(content: dict[str, Any], attestation: dict[str, Any] | None
                            ) -> dict[str, Any]:
    """``content`` of a membership event the node builds with ``attestation`` as its only
    attestation (None: without one); ``content`` itself when nothing changes."""
    wanted = attestation if content.get("membership") == "join" else None
    if content.get(ATTESTATION) == wanted and (wanted is not None or ATTESTATION not in content):
        return content
    adjusted = {k: v for k, v in content.items() if k != ATTESTATION}
    if wanted is not None:
        adjusted[ATTESTATION] = wanted
    return adjusted


def user_status(classes: UserClasses, user_id: str) -> dict[str, Any]:
    """The query's answer for a local user who exists: ``organisation`` and ``since`` are null
    for a public user."""
    found = attestation_of(classes, user_id)
    if found is None:
        return {"user_id": user_id, "class": PUBLIC, "organisation": None, "since": None}
    return {"user_id": user_id, **found}
