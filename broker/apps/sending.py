"""An application's messages: checked and accepted at once, then put in the recipient's
notice room from the app's sender.

:meth:`AppMessages.send` refuses at once what cannot be sent — a kind the app may not send
(403, ``kind_not_allowed``), an unknown recipient (404, ``unknown_recipient``), the
separation rules (the sender is a verified account reachable by the public, asked as an
invite of the recipient), tags the sender may not use, an attachment that is not a file the
app uploaded, a recipient's rate limit (429) — then records the idempotency key (a replay
answers the first message's ID and sends nothing, after a restart too), queues the message
with :class:`broker.apps.tracking.MessageTracker` and answers its ID.  The message then goes
into ``NoticeRooms.room_for(sender, recipient, kind="app")`` (made on first use) as
``m.room.message`` — ``m.text``, or ``m.file`` per attachment with the text as the first one's
caption — carrying ``in.gov.broker.notice`` ``{"kind", "id"}``; the tracker is told the last
event (``sent``) or why it failed (``fail``).  An OTP (and any message with ``ttl_s``) is
auto-deleted: its expiry is written in the event's own transaction and the auto-delete job
redacts it when due (:mod:`broker.auto_delete`), while the tracker marks it ``expired``.

Message IDs are ``<app_id>.<random>``: an app reads the status of its own messages only.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from broker.access_policy import REASON_FIELD, AccessPolicy
from broker.apps.recipients import RecipientRef, Recipients
from broker.apps.tracking import MessageStatus, MessageTracker
from broker.errors import DomainError, Forbidden, InvalidInput, NotFound
from broker.message_tags import TAGS_FIELD, MessageTags
from broker.notice_rooms import APP, NOTICE, NoticeRooms
from broker.ratelimit import RateLimiter
from broker.rooms.service import Rooms
from protocol.signing import server_name_of
from storage.apps import AppRow, AppStore
from storage.database import IntegrityError
from storage.media import MediaStore

logger = logging.getLogger(__name__)

KINDS = ("otp", "alert", "notification")
OTP_TTL_DEFAULT_S = 300
TTL_MIN_S, TTL_MAX_S = 30, 86_400
HTML = "org.matrix.custom.html"
KIND_NOT_ALLOWED = "kind_not_allowed"
BAD_ATTACHMENT = "attachment_not_found"
REVOKED_BEFORE_SENT = "the app was revoked before the message was sent"
# The device the sender's events are sent from (a name only: the transaction IDs that make a
# message's events once each, a resumed send included, are keyed by it).
SENDING_DEVICE = "broker-apps"
REMOTE_JOIN_WAIT_S = 10.0
JOIN_POLL_S = 0.05
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Attachment:
    content_uri: str
    filename: str
    mimetype: str


@dataclass(frozen=True)
class AppMessage:
    """What an app asks to send (checked for shape by the HTTP layer)."""

    to: RecipientRef
    kind: str
    body: str
    html: bool = False  # ``body`` is HTML (``format: "html"``)
    tags: tuple[str, ...] = ()
    ttl_s: int | None = None
    attachments: tuple[Attachment, ...] = ()
    idempotency_key: str | None = None


@dataclass(frozen=True)
class SendingDeps:
    server_name: str
    store: AppStore
    recipients: Recipients
    notice_rooms: NoticeRooms
    rooms: Rooms
    tracker: MessageTracker
    policy: AccessPolicy
    tags: MessageTags
    limiter: RateLimiter
    media: MediaStore
    clock: Any


def plain_text(markup: str) -> str:
    """The text of an HTML body, for clients that show no HTML."""
    return html.unescape(_TAG.sub("", markup))


def caption(message: AppMessage) -> dict[str, Any]:
    if not message.html:
        return {"body": message.body}
    return {"body": plain_text(message.body), "format": HTML, "formatted_body": message.body}


def check_tags(tags: MessageTags, sender: str, message: AppMessage,
               content: dict[str, Any]) -> None:
    """Put the message's tags in ``content``, refused if the sender may not use them."""
    if message.tags:
        content[TAGS_FIELD] = list(message.tags)
    tags.check(sender, "m.room.message", content)


@dataclass
class AppMessages:
    deps: SendingDeps
    in_flight: set[defer.Deferred[None]] = field(default_factory=set)
    on_sent: Callable[[str], None] | None = None  # told each message put in a room (tests)

    async def send(self, app: AppRow, message: AppMessage) -> str:
        """Accept ``message`` from ``app``: its message ID (the first one's for a replayed
        idempotency key)."""
        deps = self.deps
        if message.kind not in app.kinds:
            raise Forbidden(f"This app may not send {message.kind!r} messages",
                            **{REASON_FIELD: KIND_NOT_ALLOWED})
        ttl_s = message.ttl_s
        if ttl_s is None and message.kind == "otp":
            ttl_s = OTP_TTL_DEFAULT_S
        if ttl_s is not None and not TTL_MIN_S <= ttl_s <= TTL_MAX_S:
            raise InvalidInput(f"'ttl_s' must be {TTL_MIN_S} to {TTL_MAX_S} seconds")
        recipient = await deps.recipients.resolve(message.to)
        deps.policy.may_invite(app.sender, recipient, "")  # the separation rules
        message_id = f"{app.app_id}.{secrets.token_urlsafe(12)}"
        contents = self._contents(app, message, message_id)
        for content in contents:  # the tags the sender may use (memory only)
            deps.tags.check(app.sender, "m.room.message", content)
        await self._check_attachments(app, message.attachments)
        if message.idempotency_key is not None:
            first = await self._claim(app, message.idempotency_key, message_id)
            if first != message_id:
                return first  # a replay: the first message, nothing sent
        deps.limiter.check("app_recipient", f"{app.app_id}:{recipient}")
        now = deps.clock.time_ms()
        ttl_ms = None if ttl_s is None else ttl_s * 1000
        await deps.tracker.queue(message_id, app.app_id, recipient,
                                 None if ttl_ms is None else now + ttl_ms,
                                 outbox=json.dumps({"contents": contents}))
        self._start(app, recipient, message_id, contents, ttl_ms)
        return message_id

    async def resume(self, app_of: Callable[[str], AppRow | None]) -> int:
        """Send the messages accepted before the node stopped and never put in their room
        (at start, once the tracker is loaded); how many.  Each event's transaction ID is
        derived from the message's, so one written just before the stop is not written
        twice; an OTP keeps its first expiry; a revoked app's message fails."""
        now, resumed = self.deps.clock.time_ms(), 0
        for row in await self.deps.tracker.unsent():
            app = app_of(row.app_id)
            if app is None or app.revoked_ts is not None or row.outbox is None:
                await self.deps.tracker.fail(row.message_id, REVOKED_BEFORE_SENT)
                continue
            if row.expires_ts is not None and row.expires_ts <= now:
                continue  # expired unsent: the tracker's expiry check says so
            ttl_ms = None if row.expires_ts is None else row.expires_ts - now
            self._start(app, row.recipient, row.message_id,
                        json.loads(row.outbox)["contents"], ttl_ms)
            resumed += 1
        if resumed:
            logger.info("apps: %d message(s) accepted before the last stop sent now", resumed)
        return resumed

    def _start(self, app: AppRow, recipient: str, message_id: str,
               contents: list[dict[str, Any]], ttl_ms: int | None) -> None:
        sending = defer.ensureDeferred(self._deliver(app, recipient, message_id, contents,
                                                     ttl_ms))
        self.in_flight.add(sending)
        sending.addBoth(lambda _: self.in_flight.discard(sending))

    async def status(self, app: AppRow, message_id: str) -> MessageStatus:
        """The status of one of the app's messages; NotFound for anything else."""
        found = None
        if message_id.startswith(f"{app.app_id}."):
            found = await self.deps.tracker.status(message_id)
        if found is None:
            raise NotFound(f"No message {message_id!r} of this app")
        return found

    def _contents(self, app: AppRow, message: AppMessage, message_id: str
                  ) -> list[dict[str, Any]]:
        """The events' contents: one text, or one file per attachment (the text as the
        first one's caption)."""
        marker = {NOTICE: {"kind": message.kind, "id": message_id}}
        tags = {TAGS_FIELD: list(message.tags)} if message.tags else {}
        if not message.attachments:
            return [{"msgtype": "m.text", **caption(message), **tags, **marker}]
        files = []
        for index, attachment in enumerate(message.attachments):
            text = caption(message) if index == 0 and message.body else {
                "body": attachment.filename}
            files.append({"msgtype": "m.file", **text, "filename": attachment.filename,
                          "url": attachment.content_uri,
                          "info": {"mimetype": attachment.mimetype}, **tags, **marker})
        return files

    async def _check_attachments(self, app: AppRow, attachments: tuple[Attachment, ...]
                                 ) -> None:
        prefix = f"mxc://{self.deps.server_name}/"
        for attachment in attachments:
            uri = attachment.content_uri
            record = await self.deps.media.get_media(uri[len(prefix):]) \
                if uri.startswith(prefix) else None
            if record is None or record.user_id != app.sender:
                raise InvalidInput(f"{uri!r} is not a file this app uploaded"
                                   " (POST /_broker/apps/v1/media)",
                                   **{REASON_FIELD: BAD_ATTACHMENT})

    async def _claim(self, app: AppRow, key: str, message_id: str) -> str:
        store, now = self.deps.store, self.deps.clock.time_ms()
        try:
            return await store.claim_key(app.app_id, key, message_id, now)
        except IntegrityError:  # a concurrent request with the key claimed it first
            return await store.claim_key(app.app_id, key, message_id, now)

    async def _joined(self, room_id: str, recipient: str) -> None:
        """Wait (at most :data:`REMOTE_JOIN_WAIT_S`) until a user of another server invited
        to a new room has joined: their node takes in only what follows the join, so a
        message sent before it would never reach them.  A node that only shows the invite
        (Synapse) gets the message after the wait; its user reads it once they accept."""
        clock = self.deps.clock
        deadline = clock.time() + REMOTE_JOIN_WAIT_S
        while clock.time() < deadline:
            room = await self.deps.rooms.registry.get(room_id)
            if room is None or room.membership_of(recipient) != "invite":
                return
            waited: defer.Deferred[None] = defer.Deferred()
            clock.call_later(JOIN_POLL_S, waited.callback, None)
            await waited

    async def _deliver(self, app: AppRow, recipient: str, message_id: str,
                       contents: list[dict[str, Any]], ttl_ms: int | None) -> None:
        deps = self.deps
        try:
            room_id = await deps.notice_rooms.room_for(app.sender, recipient, kind=APP,
                                                       name=app.name)
            await deps.notice_rooms.bring_back(app.sender, recipient, room_id, APP)
            if server_name_of(recipient) != deps.server_name:
                await self._joined(room_id, recipient)
            event_id = ""
            for index, content in enumerate(contents):
                event = await deps.rooms.send(room_id, app.sender, "m.room.message", content,
                                              auto_delete_ms=ttl_ms, device_id=SENDING_DEVICE,
                                              txn_id=f"{message_id}.{index}")
                event_id = event.event_id
            await deps.tracker.sent(message_id, room_id, event_id)
        except DomainError as e:
            logger.info("app %s: message %s to %s failed: %s", app.app_id, message_id,
                        recipient, e.message)
            await deps.tracker.fail(message_id, e.message)
        except Exception as e:
            logger.exception("app %s: message %s to %s failed", app.app_id, message_id,
                             recipient)
            await deps.tracker.fail(message_id, f"internal error: {type(e).__name__}")
        if self.on_sent is not None:
            self.on_sent(message_id)
