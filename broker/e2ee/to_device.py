"""Send-to-device messaging: a device's messages to chosen devices of other users (key exchange,
verification), relayed but never read by the node.

- :meth:`ToDevice.send` answers ``PUT /sendToDevice/{eventType}/{txnId}``: local recipients are
  stored per device under one stream id and their syncs woken; remote ones are queued durably
  as one ``m.direct_to_device`` EDU per server.  The EDU's ``message_id`` is derived from the
  sender's device and transaction id, so a retried request that already queued its EDUs
  produces the same id and the receiving server drops the copy.
- :func:`on_direct_to_device_edu` delivers an inbound EDU to local devices once per
  ``(origin, message_id)``; the sender must belong to the origin server.
- :func:`sync_fields` puts a device's pending messages (oldest first, at most
  :data:`SYNC_LIMIT`) in /sync ``to_device.events``.  A message is deleted once the device
  syncs with a ``since`` token at or after the ``next_batch`` of the response that carried it:
  a client sends ``since`` only after it received that response, so this is the spec's
  acknowledgement, and a lost response means the message is sent again.
- :meth:`ToDevice.start` runs the purge of messages nobody collected within
  ``retention.undelivered_to_device_days`` (and those of deleted devices), hourly, until
  :meth:`ToDevice.stop`.

What the node keeps in memory (whether a device may still have messages) is only a shortcut that
lets a /sync with nothing new skip the database; a restarted process starts without it and asks
the database once per device.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.task import LoopingCall

from protocol.signing import server_name_of
from storage.to_device import ToDeviceStore, edu_dedupe, txn_dedupe

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.clock import Clock
    from broker.e2ee.context import E2ee
    from broker.notifier import Notifier
    from broker.streams import StreamWriter
    from federation.sender.sender import FederationSender

logger = logging.getLogger(__name__)

EDU_TYPE = "m.direct_to_device"
SYNC_LIMIT = 100
PURGE_INTERVAL_S = 3600.0
DAY_MS = 24 * 3600 * 1000

JsonDict = dict[str, Any]
Messages = Mapping[str, Mapping[str, JsonDict]]


def message_id_for(user_id: str, device_id: str, txn_id: str) -> str:
    """The EDU ``message_id`` of a client request: the same for every retry of it."""
    digest = hashlib.sha256(f"{user_id}\n{device_id}\n{txn_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


class ToDevice:
    """``federation_sender`` is None when federation is off (remote recipients are then
    dropped: no server would take them)."""

    def __init__(self, store: ToDeviceStore, streams: StreamWriter, notifier: Notifier,
                 clock: Clock, reactor: Any, server_name: str,
                 federation_sender: FederationSender | None, retention_days: int) -> None:
        self.store = store
        self.streams = streams
        self.notifier = notifier
        self.clock = clock
        self.reactor = reactor
        self.server_name = server_name
        self.federation_sender = federation_sender
        self.retention_days = retention_days
        # (user_id, device_id) -> whether the device may have messages the database still
        # holds (carried but unacknowledged, or beyond the last response's limit).  Absent:
        # unknown, ask the database.
        self._maybe_pending: dict[tuple[str, str], bool] = {}
        self._purge_loop: LoopingCall | None = None
        # Messages deleted undelivered since the node started: too old, or their device gone.
        self.deleted_expired = 0
        self.deleted_orphaned = 0
        # Told each local delivery (sender, type, messages, devices reached): application
        # services that take to-device messages.
        self.delivered_listeners: list[Callable[[str, str, Mapping[str, Mapping[str, JsonDict]],
                                                  dict[str, list[str]]], None]] = []

    # -- sending -----------------------------------------------------------------------------
    async def send(self, requester: Requester, event_type: str, txn_id: str,
                   messages: Messages) -> None:
        """Deliver ``messages`` from ``requester``'s device, once per transaction id."""
        sender, device_id = requester.user_id, requester.device_id
        dedupe = txn_dedupe(sender, device_id, txn_id)
        if await self.store.has_seen(dedupe):
            return
        local: dict[str, Mapping[str, JsonDict]] = {}
        remote: dict[str, dict[str, Mapping[str, JsonDict]]] = {}
        for user_id, by_device in messages.items():
            if self._is_mine(user_id):
                local[user_id] = by_device
            else:
                remote.setdefault(server_name_of(user_id), {})[user_id] = by_device
        if remote and self.federation_sender is not None:
            message_id = message_id_for(sender, device_id, txn_id)
            await defer.gatherResults([
                self.federation_sender.enqueue_edu(
                    server, EDU_TYPE, {"sender": sender, "type": event_type,
                                       "message_id": message_id, "messages": by_user},
                    persistent=True)
                for server, by_user in sorted(remote.items())], consumeErrors=True)
        await self._deliver_local(sender, event_type, local, dedupe)

    def _is_mine(self, user_id: str) -> bool:
        return user_id.split(":", 1)[-1] == self.server_name

    async def receive_edu(self, origin: str, content: JsonDict) -> None:
        """An ``m.direct_to_device`` EDU from ``origin``; malformed ones are dropped."""
        sender, event_type = content.get("sender"), content.get("type")
        message_id, messages = content.get("message_id"), content.get("messages")
        if not (isinstance(sender, str) and isinstance(event_type, str)
                and isinstance(message_id, str) and isinstance(messages, dict)):
            logger.info("malformed %s EDU from %s dropped", EDU_TYPE, origin)
            return
        if ":" not in sender or server_name_of(sender) != origin:
            logger.info("%s EDU from %s for sender %s dropped: not the sender's server",
                        EDU_TYPE, origin, sender)
            return
        local: dict[str, Mapping[str, JsonDict]] = {}
        for user_id, by_device in messages.items():
            if not isinstance(by_device, dict) or not self._is_mine(user_id):
                continue
            valid = {d: c for d, c in by_device.items() if isinstance(c, dict)}
            if valid:
                local[user_id] = valid
        await self._deliver_local(sender, event_type, local, edu_dedupe(origin, message_id))

    async def _deliver_local(self, sender: str, event_type: str,
                             local: Mapping[str, Mapping[str, JsonDict]],
                             dedupe: Any) -> None:
        delivered: dict[str, list[str]] | None = {}

        async def write(stream_id: int) -> None:
            nonlocal delivered
            delivered = await self.store.deliver(sender, event_type, local, stream_id,
                                                 self.clock.time_ms(), dedupe)

        await self.streams.write(
            lambda sid: defer.ensureDeferred(write(sid)), users=sorted(local))
        for user_id, device_ids in (delivered or {}).items():
            for device_id in device_ids:
                self._maybe_pending[(user_id, device_id)] = True
        for listener in self.delivered_listeners:
            listener(sender, event_type, local, delivered or {})

    # -- /sync -------------------------------------------------------------------------------
    def nothing_pending(self, requester: Requester, since: int, now: int) -> bool:
        """Whether the device is known, from memory, to have no message waiting."""
        user_id = requester.user_id
        return (since <= now and self._maybe_pending.get((user_id, requester.device_id)) is False
                and not self.notifier.user_changed_since(user_id, since))

    async def sync_fields(self, requester: Requester, since: int | None, now: int
                          ) -> dict[str, Any]:
        user_id, device_id = requester.user_id, requester.device_id
        key = (user_id, device_id)
        if since is not None and self.nothing_pending(requester, since, now):
            return {}
        messages, more = await self.store.take_pending(
            user_id, device_id, since, now, SYNC_LIMIT, self._received_since())
        # Carried messages wait for their acknowledgement: the next sync must look again.
        self._maybe_pending[key] = bool(messages) or more
        if not messages:
            return {}
        return {"to_device": {"events": [m.to_event() for m in messages]}}

    # -- expiry ------------------------------------------------------------------------------
    def _received_since(self) -> int:
        """The oldest receipt time a message may have and still be delivered now."""
        return self.clock.time_ms() - self.retention_days * DAY_MS

    def summary(self) -> dict[str, Any]:
        """The policy document's view: the maximum age and what was deleted undelivered."""
        return {"max_age": self.retention_days * DAY_MS, "deleted_expired": self.deleted_expired,
                "deleted_orphaned": self.deleted_orphaned}

    async def purge(self) -> None:
        """Delete messages older than the retention period and those of deleted devices."""
        days = self.retention_days
        counts = await self.store.purge_expired(self._received_since())
        self.deleted_expired += counts.expired
        self.deleted_orphaned += counts.orphaned
        if counts.expired or counts.orphaned:
            logger.info("to-device: deleted %d undelivered messages older than %d days and %d"
                        " of deleted devices", counts.expired, days, counts.orphaned)
        if counts.dedupe_records:
            logger.debug("to-device: deleted %d old deduplication records",
                         counts.dedupe_records)

    async def _purge_logged(self) -> None:
        try:
            await self.purge()
        except Exception:
            logger.exception("to-device: purge of undelivered messages failed")

    def start(self) -> None:
        """Purge now and then every :data:`PURGE_INTERVAL_S`, until :meth:`stop`."""
        if self._purge_loop is not None:
            return
        loop = LoopingCall(lambda: defer.ensureDeferred(self._purge_logged()))
        loop.clock = self.reactor
        self._purge_loop = loop
        loop.start(PURGE_INTERVAL_S, now=True)

    def stop(self) -> None:
        loop, self._purge_loop = self._purge_loop, None
        if loop is not None and loop.running:
            loop.stop()


async def sync_fields(e2ee: E2ee, requester: Requester, since: int | None, now: int
                      ) -> dict[str, Any]:
    return await e2ee.to_device.sync_fields(requester, since, now)


def sync_share_key(e2ee: E2ee, requester: Requester, since: int, now: int,
                   member_events: bool) -> Hashable | None:
    return () if e2ee.to_device.nothing_pending(requester, since, now) else None


async def on_direct_to_device_edu(e2ee: E2ee, origin: str, content: JsonDict) -> None:
    await e2ee.to_device.receive_edu(origin, content)
