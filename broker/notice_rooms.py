"""Read-only notice rooms: one room per (sender, recipient, kind) from a local account (an
app's sender, an organisation's account ``@_org.<id>``) to a user of this node or another,
made on first use, then reused.

The room is the sender's: rooms v12 give its creator every power, and its power levels ask
100 of every event, state change, invite, kick, ban and redaction, so the recipient reads and
sends receipts but cannot post, invite, remove anyone or change anything.  Its state event
``in.gov.broker.notice_room`` (state key "") says ``{"kind", "sender", "leave_allowed"}``; a
recipient may leave a ``broadcast`` room only when ``leave_allowed`` (:func:`check_leave`),
an ``app`` room always, and the app's next message brings them back
(:meth:`NoticeRooms.bring_back`).

The recipient sees the room without accepting anything: a user of this node is invited and
joined by the node in the batch that makes the room (one group commit for the room's ten
events, and for many rooms at once); a user of another server is invited, the invite's content
carrying ``in.gov.broker.notice_room`` ``{"kind"}``, and a node of ours joins its user itself
when the inviter is verified by its home node's attestation (:mod:`broker.notice_invites`);
other servers (Synapse) show an invite.

Which room a pair has is kept in memory (the :data:`CAPACITY` pairs used last) over the
``notice_rooms`` table, read in batches on a miss; concurrent calls for one pair share one
lookup and one creation.  The row is written once the room's events are durable: a crash in
between leaves a room nobody uses, and the next call makes another.

:meth:`NoticeRooms.deliver` is the broadcast path: for a slice of recipients it finds or makes
their rooms and puts one message in each, new rooms' messages in the batch that makes them,
the others' in one batch over rooms loaded together.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cachetools import LRUCache
from twisted.internet import defer
from twisted.python.failure import Failure

from broker.access_policy import REASON_FIELD
from broker.deferreds import observe
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.rooms.create_room import CreateRoomRequest, NewRooms
from broker.rooms.creator import EventSpec
from broker.rooms.live_room import LiveRoom
from broker.rooms.service import Rooms
from protocol.events import Event
from protocol.signing import server_name_of
from storage.events import PersistItem
from storage.notice_rooms import NoticeRoom, NoticeRoomStore

logger = logging.getLogger(__name__)

NOTICE_ROOM = "in.gov.broker.notice_room"  # state type, create content key, invite content key
NOTICE = "in.gov.broker.notice"  # the content key of every app or broadcast message
APP, BROADCAST = "app", "broadcast"
KINDS = (APP, BROADCAST)
LEAVE_FORBIDDEN = "notice_room_leave_forbidden"
CAPACITY = 200_000  # pairs held in memory (~200 bytes each)
SLICE = 50  # rooms built per reactor turn (signing nine events each: ~20 ms)
IN_FLIGHT = 2  # slices under way at once: one written while the next is built

# Everything asks the top level, which only the room's creator holds (rooms v12).
POWER_LEVELS: dict[str, Any] = {
    "users_default": 0, "events_default": 100, "state_default": 100, "invite": 100,
    "kick": 100, "ban": 100, "redact": 100, "events": {}, "notifications": {"room": 100},
}

T = TypeVar("T")
Key = tuple[str, str, str]  # (sender, kind, recipient)
InviteRemote = Callable[[LiveRoom, EventSpec], Awaitable[Event]]
SenderProfile = Callable[[str], Awaitable[dict[str, Any]]]
Existing = Callable[[list[str]], Awaitable[set[str]]]


@dataclass(frozen=True)
class Delivered:
    """A message put in a recipient's notice room."""

    recipient: str
    room_id: str
    event_id: str
    stream_ordering: int


def notice_state(kind: str, sender: str, leave_allowed: bool) -> dict[str, Any]:
    return {"kind": kind, "sender": sender, "leave_allowed": leave_allowed}


def check_leave(room: LiveRoom, user_id: str, trusted: Callable[[str], bool]) -> None:
    """Forbidden if ``user_id`` may not leave ``room``: a broadcast notice room whose state
    (set by its creator, ``trusted``: ours or verified) does not allow leaving."""
    state = room.state.get((NOTICE_ROOM, ""))
    create = room.state.get(("m.room.create", ""))
    if state is None or create is None or state.sender != create.sender or \
            user_id == state.sender or state.content.get("kind") != BROADCAST or \
            state.content.get("leave_allowed") is True or not trusted(create.sender):
        return
    raise Forbidden("This broadcast room may not be left: its organisation keeps its members"
                    " in it", **{REASON_FIELD: LEAVE_FORBIDDEN})


class NoticeRooms:
    def __init__(self, server_name: str, store: NoticeRoomStore, rooms: Rooms,
                 new_rooms: NewRooms, invite_remote: InviteRemote,
                 sender_profile: SenderProfile, existing: Existing, clock: Any,
                 capacity: int = CAPACITY) -> None:
        self.server_name = server_name
        self.store = store
        self.rooms = rooms
        self.new_rooms = new_rooms
        self.invite_remote = invite_remote  # an invite countersigned by the invitee's server
        self.sender_profile = sender_profile  # what the sender's join restates
        self.existing = existing  # which of these local users have an account
        self.clock = clock
        self._known: LRUCache[Key, str] = LRUCache(capacity)  # -> room ID
        self._pending: dict[Key, defer.Deferred[str]] = {}  # looked up or made now
        self.rooms_made = 0

    # -- the interface ----------------------------------------------------------------------------
    async def room_for(self, sender: str, recipient: str, *, kind: str, name: str,
                       leave_allowed: bool = False) -> str:
        found = await self.rooms_for(sender, [recipient], kind=kind, name=name,
                                     leave_allowed=leave_allowed)
        return found[recipient]

    async def rooms_for(self, sender: str, recipients: Sequence[str], *, kind: str, name: str,
                        leave_allowed: bool = False) -> dict[str, str]:
        """Recipient -> their room from ``sender`` of this ``kind`` (made now if need be)."""
        found, _ = await self._resolve(sender, recipients, kind, name, leave_allowed, None)
        return found

    async def deliver(self, sender: str, recipients: Sequence[str], *, kind: str, name: str,
                      leave_allowed: bool, content: dict[str, Any]) -> list[Delivered]:
        """Put one message (``content``) in each recipient's room, making the rooms that do
        not exist with it; every room's state says ``leave_allowed`` afterwards.  A user of
        this node who left their room is not reached (nor listed in the answer)."""
        found, sent = await self._resolve(sender, recipients, kind, name, leave_allowed,
                                          content)
        existing = {r: room_id for r, room_id in found.items() if r not in sent}
        if existing:
            sent.update(await self._send(sender, existing, kind, leave_allowed, content))
        return [sent[r] for r in found if r in sent]

    # -- finding ----------------------------------------------------------------------------------
    async def _resolve(self, sender: str, recipients: Sequence[str], kind: str, name: str,
                       leave_allowed: bool, content: dict[str, Any] | None
                       ) -> tuple[dict[str, str], dict[str, Delivered]]:
        """Each recipient's room, and the messages put in the rooms made now."""
        self._check(sender, kind, recipients)
        wanted = list(dict.fromkeys(recipients))
        found: dict[str, str] = {}
        waiting: dict[str, defer.Deferred[str]] = {}
        mine: dict[str, defer.Deferred[str]] = {}
        for recipient in wanted:
            key = (sender, kind, recipient)
            room_id = self._known.get(key)
            if room_id is not None:
                found[recipient] = room_id
            elif key in self._pending:
                waiting[recipient] = observe(self._pending[key])
            else:
                mine[recipient] = self._pending[key] = defer.Deferred()
        sent: dict[str, Delivered] = {}
        if mine:
            try:
                made, sent = await self._lookup_or_make(sender, kind, list(mine), name,
                                                        leave_allowed, content)
            except BaseException as e:
                self._fail(sender, kind, mine, e)
                raise
            found.update(made)
        for recipient, d in waiting.items():
            found[recipient] = await d
        return {r: found[r] for r in wanted}, sent

    def _check(self, sender: str, kind: str, recipients: Sequence[str]) -> None:
        if kind not in KINDS:
            raise InvalidInput(f"a notice room's kind is one of {', '.join(KINDS)}, not {kind!r}")
        if server_name_of(sender) != self.server_name:
            raise InvalidInput(f"{sender} is not an account of this node")
        if sender in recipients:
            raise InvalidInput(f"{sender} cannot be sent its own notices")

    def _fail(self, sender: str, kind: str, pending: dict[str, defer.Deferred[str]],
              error: BaseException) -> None:
        for recipient, d in pending.items():
            if self._pending.get((sender, kind, recipient)) is d:
                del self._pending[(sender, kind, recipient)]
            if not d.called:
                d.errback(error)
                d.addErrback(lambda _failure: None)  # its waiters have it; the caller raises

    def _settle(self, sender: str, kind: str, recipient: str, room_id: str) -> None:
        key = (sender, kind, recipient)
        self._known[key] = room_id
        d = self._pending.pop(key, None)
        if d is not None and not d.called:
            d.callback(room_id)

    async def _lookup_or_make(self, sender: str, kind: str, recipients: list[str], name: str,
                              leave_allowed: bool, content: dict[str, Any] | None
                              ) -> tuple[dict[str, str], dict[str, Delivered]]:
        stored = await self.store.find(sender, kind, recipients)
        found: dict[str, str] = {}
        for recipient, row in stored.items():
            self._settle(sender, kind, recipient, row.room_id)
            found[recipient] = row.room_id
        missing = [r for r in recipients if r not in stored]
        sent: dict[str, Delivered] = {}
        local = [r for r in missing if self._is_mine(r)]
        unknown = set(local) - await self.existing(local) if local else set()
        if unknown:
            raise NotFound(f"no such users here: {', '.join(sorted(unknown)[:20])}",
                           users=sorted(unknown))
        if missing:
            profile = await self.sender_profile(sender)
            for made, messages in await self._pipelined(
                    missing, lambda part: self._make(sender, kind, part, name, leave_allowed,
                                                     profile, content)):
                found.update(made)
                sent.update(messages)
        return found, sent

    async def _pipelined(self, recipients: list[str],
                         work: Callable[[list[str]], Coroutine[Any, Any, T]]) -> list[T]:
        """``work`` on each slice of ``recipients``, the next slice built (a reactor turn
        later) while the one before is written: at most :data:`IN_FLIGHT` at once.  A
        failure is raised once every slice started has ended."""
        started: list[defer.Deferred[T]] = []
        for start in range(0, len(recipients), SLICE):
            if start:
                await self._turn()
                if len(started) >= IN_FLIGHT:  # the oldest under way has ended
                    await observe(started[-IN_FLIGHT]).addErrback(lambda _failure: None)
            started.append(defer.ensureDeferred(work(recipients[start:start + SLICE])))
        return await _settled(started)

    # -- making -----------------------------------------------------------------------------------
    async def _make(self, sender: str, kind: str, recipients: list[str], name: str,
                    leave_allowed: bool, profile: dict[str, Any],
                    content: dict[str, Any] | None
                    ) -> tuple[dict[str, str], dict[str, Delivered]]:
        """Make the rooms of ``recipients`` in one batch (with a message in each if
        ``content``), record them, then invite the recipients of other servers."""
        built: list[tuple[str, LiveRoom, PersistItem | None]] = []
        items: list[PersistItem] = []
        try:
            for recipient in recipients:
                room, room_items = self._build(sender, kind, recipient, name, leave_allowed,
                                               profile)
                message = None if content is None else self.rooms.creator.build(
                    room, EventSpec(sender=sender, type="m.room.message", content=content))
                items.extend(room_items if message is None else [*room_items, message])
                built.append((recipient, room, message))
        except BaseException:
            self.rooms.writer.release(items)
            raise
        for _, room, _ in built:
            self.rooms.registry.add(room)
        try:
            await self.rooms.writer.persist(items)
        except BaseException:
            for _, room, _ in built:
                self.rooms.registry.invalidate(room.room_id)
            raise
        now = self.clock.time_ms()
        await self.store.add([NoticeRoom(sender, recipient, kind, room.room_id, leave_allowed,
                                         now) for recipient, room, _ in built])
        self.rooms_made += len(built)
        sent: dict[str, Delivered] = {}
        for recipient, room, message in built:
            self._settle(sender, kind, recipient, room.room_id)
            if message is not None:
                sent[recipient] = Delivered(recipient, room.room_id, message.event.event_id,
                                            message.stream_ordering)
        await self._invite_remote(sender, kind, [(r, room) for r, room, _ in built
                                                 if not self._is_mine(r)])
        return {recipient: room.room_id for recipient, room, _ in built}, sent

    def _build(self, sender: str, kind: str, recipient: str, name: str, leave_allowed: bool,
               profile: dict[str, Any]) -> tuple[LiveRoom, list[PersistItem]]:
        local = self._is_mine(recipient)
        room, items = self.new_rooms.build(CreateRoomRequest(
            creator=sender, preset="private_chat", name=name,
            invite=[recipient] if local else [], creation_content={NOTICE_ROOM: kind},
            power_level_content_override=POWER_LEVELS, creator_profile=profile,
            implied_defaults=True,
            initial_state=[{"type": NOTICE_ROOM, "state_key": "",
                            "content": notice_state(kind, sender, leave_allowed)}]))
        if local:
            try:
                items.append(self.rooms.creator.build(room, EventSpec(
                    sender=recipient, type="m.room.member", content={"membership": "join"},
                    state_key=recipient)))
            except BaseException:
                self.rooms.writer.release(items)
                raise
        return room, items

    async def _invite_remote(self, sender: str, kind: str,
                             rooms: list[tuple[str, LiveRoom]]) -> None:
        """Invite each recipient of another server (their node countersigns); one that fails
        is logged, and invited again when a message is next delivered to the room."""
        invites = [defer.ensureDeferred(self._invite(sender, kind, recipient, room))
                   for recipient, room in rooms]
        if invites:
            await defer.gatherResults(invites, consumeErrors=True)

    async def _invite(self, sender: str, kind: str, recipient: str, room: LiveRoom) -> None:
        try:
            await self.invite_remote(room, EventSpec(
                sender=sender, type="m.room.member", state_key=recipient,
                content={"membership": "invite", NOTICE_ROOM: {"kind": kind}}))
        except Exception as e:
            logger.warning("inviting %s to the notice room %s failed: %s", recipient,
                           room.room_id, e)

    async def bring_back(self, sender: str, recipient: str, room_id: str, kind: str) -> None:
        """Make sure ``recipient`` is in their ``kind`` room from ``sender`` before a message
        goes in: a user of this node who left it is invited and joined again by the node
        (an application's messages arrive without anything to accept, as the first one
        did); a user of another server not invited nor joined (they left, or the first
        invite failed) is invited again, their node joining them as it did."""
        room = await self.rooms.registry.get(room_id)
        if room is None or room.membership_of(recipient) == "join":
            return
        if not self._is_mine(recipient):
            if room.membership_of(recipient) != "invite":
                await self._invite(sender, kind, recipient, room)
            return
        if room.membership_of(recipient) != "invite":
            await self.rooms.send(room_id, sender, "m.room.member", {"membership": "invite"},
                                  state_key=recipient)
        await self.rooms.send(room_id, recipient, "m.room.member", {"membership": "join"},
                              state_key=recipient)

    # -- sending into existing rooms ------------------------------------------------------------
    async def _send(self, sender: str, rooms: dict[str, str], kind: str, leave_allowed: bool,
                    content: dict[str, Any]) -> dict[str, Delivered]:
        sent: dict[str, Delivered] = {}
        live = await self.rooms.registry.get_many(rooms.values())  # read together, if need be
        for part in await self._pipelined(list(rooms), lambda recipients: self._send_slice(
                sender, {r: rooms[r] for r in recipients}, kind, leave_allowed, content, live)):
            sent.update(part)
        return sent

    async def _send_slice(self, sender: str, rooms: dict[str, str], kind: str,
                          leave_allowed: bool, content: dict[str, Any],
                          live: dict[str, LiveRoom]) -> dict[str, Delivered]:
        items: list[PersistItem] = []
        messages: dict[str, PersistItem] = {}
        uninvited: list[tuple[str, LiveRoom]] = []
        restated: list[str] = []
        try:
            for recipient, room_id in rooms.items():
                room = live.get(room_id)
                if room is None:
                    logger.warning("the notice room %s of %s is gone", room_id, recipient)
                    continue
                if self._is_mine(recipient) and room.membership_of(recipient) != "join":
                    continue  # they left it (as its state allowed): nothing more reaches them
                state = room.state_content(NOTICE_ROOM) or {}
                if state.get("leave_allowed") is not leave_allowed:
                    items.append(self.rooms.creator.build(room, EventSpec(
                        sender=sender, type=NOTICE_ROOM, state_key="",
                        content=notice_state(kind, sender, leave_allowed))))
                    restated.append(room_id)
                if not self._is_mine(recipient) and \
                        room.membership_of(recipient) not in ("invite", "join"):
                    uninvited.append((recipient, room))
                messages[recipient] = self.rooms.creator.build(
                    room, EventSpec(sender=sender, type="m.room.message", content=content))
                items.append(messages[recipient])
        except BaseException:
            self.rooms.writer.release(items)
            raise
        await self.rooms.writer.persist(items)
        if restated:
            await self.store.set_leave_allowed(restated, leave_allowed)
        await self._invite_remote(sender, kind, uninvited)
        return {r: Delivered(r, item.event.room_id, item.event.event_id, item.stream_ordering)
                for r, item in messages.items()}

    # -- helpers ----------------------------------------------------------------------------------
    def _is_mine(self, user_id: str) -> bool:
        return server_name_of(user_id) == self.server_name

    def _turn(self) -> defer.Deferred[None]:
        """Let the reactor serve others before the next slice."""
        d: defer.Deferred[None] = defer.Deferred()
        self.clock.call_later(0, d.callback, None)
        return d


async def _settled(started: list[defer.Deferred[T]]) -> list[T]:
    """The results of ``started``, once every one has ended (the first failure raised)."""
    results = await defer.DeferredList(started, consumeErrors=True)
    for ok, result in results:
        if not ok:
            assert isinstance(result, Failure)
            result.raiseException()
    return [result for _, result in results]
