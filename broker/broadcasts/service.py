"""Broadcasts from the portal: a ``broadcaster`` of an organisation sends a message to chosen
members of its sub-tree (:mod:`broker.broadcasts.audience`); each recipient gets it in the
organisation's read-only broadcast room (:mod:`broker.notice_rooms`, kind ``broadcast``, from
the organisation's account), which they may leave only when the organisation's setting
``broadcast_leave_allowed`` is true.  The message's content carries
``"in.gov.broker.notice": {"kind": "broadcast", "id": <broadcast ID>}``.

Sending fixes the recipients and writes them with the audit entry in one transaction, then a
job (:mod:`broker.broadcasts.jobs`) reaches them in batches; the answer does not wait for it.
The statistics are read when asked: ``delivered`` from the recipients' sync progress
(:class:`broker.sync_progress.SyncProgress`: a device of theirs synced past the message) or a
read receipt, ``read`` from the read receipts of their rooms (at or after the message): no
row is written per reader.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable
from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority
from broker.admin.model import BROADCAST_LEAVE_ALLOWED, Actor, BadField, check_body, check_org_id
from broker.broadcasts.audience import parse_audience, recipients
from broker.errors import NotFound
from broker.notice_rooms import BROADCAST, NOTICE
from broker.org_accounts import OrganisationAccounts
from storage.broadcasts import BroadcastRow, BroadcastStore

FIELDS = ("organisation", "audience", "body", "format")
FORMATS = ("text", "html")
MAX_BODY = 32_000  # characters
HTML = "org.matrix.custom.html"
_TAG = re.compile(r"<[^>]*>")


def message_content(body: Any, fmt: Any, broadcast_id: str) -> dict[str, Any]:
    """The message each recipient gets."""
    if not isinstance(body, str) or not body.strip():
        raise BadField("body", "must be a non-empty string")
    if len(body) > MAX_BODY:
        raise BadField("body", f"must be at most {MAX_BODY} characters",
                       errcode="M_INVALID_PARAM")
    if fmt is not None and fmt not in FORMATS:
        raise BadField("format", f"must be one of: {', '.join(FORMATS)}",
                       errcode="M_INVALID_PARAM")
    content: dict[str, Any] = {"msgtype": "m.text", "body": body}
    if fmt == "html":
        content.update(body=html.unescape(_TAG.sub("", body)), format=HTML,
                       formatted_body=body)
    content[NOTICE] = {"kind": BROADCAST, "id": broadcast_id}
    return content


def broadcast_json(row: BroadcastRow) -> dict[str, Any]:
    return {"broadcast_id": row.broadcast_id, "organisation": row.org_id,
            "sender": row.sender, "sent_by": row.sent_by, "audience": row.audience,
            "body": row.content.get("body"), "created_ts": row.created_ts,
            "finished_ts": row.finished_ts,
            "progress": {"state": "running" if row.finished_ts is None else "done",
                         "done": row.done, "total": row.recipients}}


class Broadcasts:
    def __init__(self, authority: Authority, audit: AuditLog, store: BroadcastStore,
                 start_job: Callable[[BroadcastRow], None], org_accounts: OrganisationAccounts,
                 synced_upto: Callable[[str], int], clock: Any) -> None:
        self.authority = authority
        self.audit = audit
        self.store = store
        # Reaches a broadcast's recipients (the node's job; a command leaves it to the running
        # node, which finds the broadcast in its change feed).
        self.start_job = start_job
        self.org_accounts = org_accounts
        self.synced_upto = synced_upto  # how far a user's devices have synced (memory)
        self.clock = clock

    async def send(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("organisation")
        async with self.audit.recording(actor, permissions.BROADCASTS_SEND,
                                        target if isinstance(target, str) else "") as entry:
            row, users = await self._prepare(entry, body)
            entry.detail.update(broadcast_id=row.broadcast_id, recipients=len(users),
                                audience=row.audience)
            await self.store.create(row, users, entry.draft())
        self.start_job(row)
        return {"broadcast_id": row.broadcast_id}

    async def _prepare(self, entry: Recording, body: dict[str, Any]
                       ) -> tuple[BroadcastRow, list[str]]:
        check_body(body, FIELDS, ("organisation", "body"))
        org_id = entry.organisation = check_org_id(body["organisation"], "organisation")
        tree, _ = await self.authority.require(entry.actor, permissions.BROADCASTS_SEND,
                                               org_id)
        org = tree.get(org_id)
        if org is None:
            raise NotFound(f"no organisation {org_id!r}")
        audience = parse_audience(body.get("audience"))
        broadcast_id = "bc_" + secrets.token_hex(10)
        content = message_content(body["body"], body.get("format"), broadcast_id)
        sender = await self.org_accounts.ensure(org_id, org.name)
        users = await recipients(self.store, tree, org_id, audience, sender)
        return BroadcastRow(
            broadcast_id, org_id, sender, entry.actor.user_id, org.name, content,
            audience.to_json(), org.settings.get(BROADCAST_LEAVE_ALLOWED) is True, len(users), 0,
            self.clock.time_ms(), None), users

    async def show(self, actor: Actor, broadcast_id: str) -> dict[str, Any]:
        """The broadcast, its progress and who received and read it."""
        async with self.audit.recording(actor, permissions.BROADCASTS_READ,
                                        broadcast_id) as entry:
            row = await self.store.get(broadcast_id)
            if row is None:
                raise NotFound(f"no broadcast {broadcast_id!r}")
            entry.organisation = row.org_id
            await self.authority.require(actor, permissions.BROADCASTS_READ, row.org_id)
            users = await self.store.recipients(broadcast_id)
            readers = await self.store.readers(broadcast_id)
        delivered = [user for user, position in users if position is not None and (
            user in readers or self.synced_upto(user) >= position)]
        return {**broadcast_json(row), "recipients": len(users), "delivered": len(delivered),
                "read": len(readers), "unread": [u for u, _ in users if u not in readers]}

    async def listing(self, actor: Actor, organisation: str | None, before_ts: int | None,
                      limit: int) -> dict[str, Any]:
        """The newest broadcasts of ``organisation`` (or of all the actor may read)."""
        async with self.audit.recording(actor, permissions.BROADCASTS_READ,
                                        organisation or "") as entry:
            entry.organisation = organisation
            _, _, scope = await self.authority.scope(actor, permissions.BROADCASTS_READ,
                                                     organisation)
            rows = await self.store.listing(scope, before_ts, limit)
        answer: dict[str, Any] = {"broadcasts": [broadcast_json(row) for row in rows]}
        if len(rows) == limit:
            answer["next_before_ts"] = rows[-1].created_ts
        return answer
