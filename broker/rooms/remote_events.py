"""Accepting events from other servers into rooms we are in.

For each PDU (already shape-checked, hash-checked and signature-verified by the caller):
fetch missing prev and auth events from the sending server, check the event against its own
auth events and against the state before it, soft-fail it if the room's current state forbids it
(or, for a membership, the node's policy refuses it: :attr:`RemoteEvents.admits`), then persist
it.  The room's new current state is the state after the event when the event
extends every forward extremity, and the resolution of the two otherwise.

Processing of one room is serialised; the final update of the live room happens without any
await in between (a resolution is redone if a local state event changed the room meanwhile, as
often as that takes).  An event is written once: a copy arriving while the first is still being
written waits for that write.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.state_loader import StateIds, StateLoader
from broker.rooms.writer import ResolvedState, RoomWriter
from protocol.auth_rules import (
    check_auth,
    check_auth_events_selection,
    check_redaction_applies,
)
from protocol.errors import AuthError
from protocol.events import Event
from storage.events import EventStore, PersistItem
from storage.state import StateStore

logger = logging.getLogger(__name__)

MAX_MISSING_EVENTS = 20
FETCHED_STATES_KEPT = 1000


class RemoteEventRejected(Exception):
    """A PDU we will not accept; the message is the reason reported to the sender."""


#: Whether the node's policy admits a membership event from ``origin`` into the room's current
#: state: (origin, room, event) -> bool.
Admits = Callable[[str, LiveRoom, Event], Awaitable[bool]]


class RemoteEvents:
    def __init__(self, writer: RoomWriter, registry: RoomRegistry, events: EventStore,
                 state_store: StateStore, state: StateLoader, fetcher: Any) -> None:
        self.writer = writer  # applies accepted events to their live rooms and writes them
        self.registry = registry
        self.events = events
        self.state_store = state_store
        self.state = state
        self.fetcher = fetcher  # RemoteFetcher: fetches and verifies events from peers
        self._locks: dict[str, defer.DeferredLock] = {}
        # Events handed to the persister and not yet durable, with whoever waits for them: the
        # same event arriving again meanwhile waits for that write instead of being written
        # twice.
        self._unwritten: dict[str, list[defer.Deferred[None]]] = {}
        # The state after events we hold only as outliers, learnt from peers when a gap in the
        # room's history could not be filled.
        self._fetched_states: OrderedDict[str, StateIds] = OrderedDict()
        # The node's say on memberships (official groups, reachability), set at wiring: an event
        # it refuses is soft-failed, on whatever path it arrived (a transaction too).
        self.admits: Admits | None = None

    def _lock(self, room_id: str) -> defer.DeferredLock:
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = defer.DeferredLock()
        return lock

    async def on_pdu(self, origin: str, event: Event, *, known: bool | None = None
                     ) -> defer.Deferred[None]:
        """Accept one verified PDU; raises RemoteEventRejected with the reason.  Returns a
        Deferred that fires once the event is durable (callers accepting many PDUs wait for
        all of them together, so their writes share transactions).  ``known``: whether the
        caller already looked the event up."""
        room = await self.registry.get(event.room_id)
        if room is None:
            raise RemoteEventRejected(f"this server is not in room {event.room_id}")
        lock = self._lock(event.room_id)
        await lock.acquire()
        try:
            if event.event_id in self._unwritten:
                return self._wait_for_write(event.event_id)
            if known is None:
                known = bool(await self.state_store.known_event_ids([event.event_id]))
            if known:
                return defer.succeed(None)
            # A membership the policy decides on takes the full path, where it is asked.
            if not self._policy_decides(event):
                fast = self._extend_tip(room, event)
                if fast is not None:
                    return fast
            return await self._process(origin, room, event, fetch_missing=True)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:  # nobody took it over: forget it
                self._locks.pop(event.room_id, None)

    def _policy_decides(self, event: Event) -> bool:
        return self.admits is not None and event.type == "m.room.member"

    def _extend_tip(self, room: LiveRoom, event: Event) -> defer.Deferred[None] | None:
        """The usual case, decided from memory alone: the event follows exactly the room's
        forward extremities and cites current state as its auth events.  Then the state
        before it is the current state; None when that does not hold."""
        if set(event.prev_event_ids) != set(room.extremities) or event.type == \
                "m.room.redaction":
            return None
        auth = room.auth_events_of(event)
        if sorted(event.auth_event_ids) != sorted(e.event_id for e in auth.values()):
            return None
        try:
            check_auth_events_selection(room.room_version, event, list(auth.values()))
            check_auth(room.room_version, event, auth, room.create_event)
        except AuthError as e:
            raise RemoteEventRejected(f"event fails auth against the state before it: {e}"
                                      ) from e
        return self._persist([self.writer.apply(room, event)])

    def _persist(self, items: list[PersistItem]) -> defer.Deferred[None]:
        """Queue the items for writing; fires once they are durable."""
        ids = [item.event.event_id for item in items]
        waiters: list[defer.Deferred[None]] = []
        for event_id in ids:
            self._unwritten[event_id] = waiters

        def written(result: Any) -> None:
            for event_id in ids:
                if self._unwritten.get(event_id) is waiters:
                    del self._unwritten[event_id]
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(None)

        first: defer.Deferred[None] = defer.Deferred()
        waiters.append(first)
        self.writer.persist(items).addBoth(written)
        return first

    def _wait_for_write(self, event_id: str) -> defer.Deferred[None]:
        """A Deferred firing when the pending write of ``event_id`` does (at once if there
        is none any more)."""
        waiters = self._unwritten.get(event_id)
        if waiters is None:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        waiters.append(waiter)
        return waiter

    async def _process(self, origin: str, room: LiveRoom, event: Event, *,
                       fetch_missing: bool) -> defer.Deferred[None]:
        if event.event_id in self._unwritten:
            return self._wait_for_write(event.event_id)
        # Looked up again: an answer from before waiting for the room may be stale.
        if await self.state_store.known_event_ids([event.event_id]):
            return defer.succeed(None)
        missing = await self._prevs_without_state(room, event)
        if missing and fetch_missing:
            await self._fill_gap(origin, room, event)
            missing = await self._prevs_without_state(room, event)
        if missing and fetch_missing:
            # Too far behind to fetch every event in between: take the state at the missing
            # events from the sender instead (the room forks here and is resolved).
            for prev in sorted(missing):
                await self._fetch_state_after(origin, room, prev)
            missing = await self._prevs_without_state(room, event)
        if missing:
            raise RemoteEventRejected(
                f"missing prev_events {sorted(missing)} that {origin} could not supply")
        auth_events = await self._auth_events(origin, event)
        create = room.create_event
        try:
            check_auth_events_selection(room.room_version, event, list(auth_events.values()))
            check_auth(room.room_version, event,
                       {(e.type, e.state_key or ""): e for e in auth_events.values()}, create)
        except AuthError as e:
            raise RemoteEventRejected(f"event fails auth against its auth events: {e}") from e

        redaction_target = await self._redaction_target(room, event)
        before = await self._state_before(room, event)
        before_events = await self.state.events_for(before)
        try:
            check_auth(room.room_version, event,
                       room.auth_events_of(event, before_events), create)
        except AuthError as e:
            raise RemoteEventRejected(f"event fails auth against the state before it: {e}"
                                      ) from e
        if self._policy_decides(event):
            assert self.admits is not None
            if not await self.admits(origin, room, event):
                logger.info("soft-failing %s in %s: the node's policy refuses it",
                            event.event_id, room.room_id)
                return self._persist(self.writer.outliers([event]))
        after = dict(before)
        if event.is_state():
            after[(event.type, event.state_key or "")] = event.event_id
        current_events = await self._current_state_with(room, event, after, before_events)
        if not self._allowed_now(room, event):
            return self._persist(self.writer.outliers([event]))  # soft-failed
        return self._persist([self.writer.apply(
            room, event, redaction_target=redaction_target,
            resolved=ResolvedState(after=after, current=current_events))])

    async def _current_state_with(self, room: LiveRoom, event: Event, after: StateIds,
                                  before_events: dict[tuple[str, str], Event]
                                  ) -> dict[tuple[str, str], Event]:
        """The room's current state once the event is added: the state after it when it
        extends every forward extremity, else the resolution of that and the current state.

        Returns with the room as the answer saw it (nothing awaited since), so the caller
        applies the event at once.  A local state event landing during a resolution makes it
        resolve again against the new state: under any load the event goes through, never
        refused (local messages, which change no state, do not make it resolve again)."""
        prevs = set(event.prev_event_ids)
        key = (event.type, event.state_key or "")
        while not set(room.extremities) <= prevs:
            state_version = room.state_version
            current = await self.state.resolve(
                room.room_version, [{k: e.event_id for k, e in room.state.items()}, after],
                [event])
            resolved = await self.state.events_for(
                {k: v for k, v in current.items() if v != event.event_id})
            if event.is_state() and current.get(key) == event.event_id:
                resolved[key] = event
            if room.state_version == state_version:
                return resolved
            logger.info("state of %s changed while resolving %s: resolving again",
                        room.room_id, event.event_id)
        extended = dict(before_events)
        if event.is_state():
            extended[key] = event
        return extended

    async def _redaction_target(self, room: LiveRoom, event: Event) -> str | None:
        """The event a remote redaction prunes, when the redaction rules let it."""
        if event.type != "m.room.redaction" or not event.redacts:
            return None
        target = (await self.events.get_events([event.redacts])).get(event.redacts)
        if target is None or target.room_id != room.room_id:
            return None
        if check_redaction_applies(room.room_version, event, target, room.power_levels,
                                   room.create_event):
            return target.event_id
        logger.info("redaction %s of %s does not apply", event.event_id, target.event_id)
        return None

    def _allowed_now(self, room: LiveRoom, event: Event) -> bool:
        """Soft-fail check against the room's current state."""
        try:
            check_auth(room.room_version, event, room.auth_events_of(event),
                       room.create_event)
        except AuthError as e:
            logger.info("soft-failing %s in %s: %s", event.event_id, room.room_id, e)
            return False
        return True

    async def _state_after(self, room: LiveRoom, event_id: str) -> StateIds | None:
        fetched = self._fetched_states.get(event_id)
        if fetched is not None:
            return fetched
        return await self.state.state_ids_after(room.room_id, event_id)

    async def _prevs_without_state(self, room: LiveRoom, event: Event) -> set[str]:
        missing = set()
        for prev in event.prev_event_ids:
            if await self._state_after(room, prev) is None:
                missing.add(prev)
        return missing

    async def _state_before(self, room: LiveRoom, event: Event) -> StateIds:
        states: list[StateIds] = []
        for prev in event.prev_event_ids:
            state = await self._state_after(room, prev)
            assert state is not None
            states.append(state)
        return await self.state.resolve(room.room_version, states)

    async def _fetch_state_after(self, origin: str, room: LiveRoom, event_id: str) -> None:
        """Learn the state after ``event_id`` from ``origin``: the state before it, its auth
        chain and the event itself, all verified and kept as outliers."""
        try:
            state, chain = await self.fetcher.fetch_state(origin, room, event_id)
            event = await self.fetcher.fetch_event(origin, event_id, room.room_version,
                                                   room.room_id)
        except Exception as e:
            logger.info("could not fetch the state at %s from %s: %s", event_id, origin, e)
            return
        if event is None or not any(e.type == "m.room.create" for e in state + chain):
            return
        await self.store_outliers([*chain, *state, event])
        after = {(e.type, e.state_key or ""): e.event_id for e in state if e.is_state()}
        if event.is_state():
            after[(event.type, event.state_key or "")] = event.event_id
        self._fetched_states[event_id] = after
        logger.info("bridged a gap in %s at %s with the state %s holds there", room.room_id,
                    event_id, origin)
        while len(self._fetched_states) > FETCHED_STATES_KEPT:
            self._fetched_states.popitem(last=False)

    async def _auth_events(self, origin: str, event: Event) -> dict[str, Event]:
        found = await self.events.get_events(event.auth_event_ids)
        missing = [eid for eid in event.auth_event_ids if eid not in found]
        if missing:
            try:
                fetched = await self.fetcher.fetch_auth_chain(origin, event)
            except Exception as e:
                logger.info("could not fetch the auth chain of %s from %s: %s",
                            event.event_id, origin, e)
                fetched = []
            await self.store_outliers(fetched)
            found.update({e.event_id: e for e in fetched if e.event_id in missing})
        still = [eid for eid in event.auth_event_ids if eid not in found]
        if still:
            raise RemoteEventRejected(f"missing auth_events {still}")
        return found

    async def _fill_gap(self, origin: str, room: LiveRoom, event: Event) -> None:
        """Ask the sender for the events between our extremities and this event, then
        process them oldest first."""
        try:
            events = await self.fetcher.get_missing_events(
                origin, room, event, limit=MAX_MISSING_EVENTS)
        except Exception as e:
            logger.info("could not fetch events missing before %s from %s: %s",
                        event.event_id, origin, e)
            return
        bridged = False
        for missing_event in sorted(events, key=lambda e: (e.depth, e.origin_server_ts)):
            if missing_event.event_id == event.event_id:
                continue
            if not bridged:
                # The oldest fetched event may itself follow events we cannot fetch: bridge
                # that gap once with the sender's state, so the rest chain on and no hole is
                # left in the timeline.
                for prev in await self._prevs_without_state(room, missing_event):
                    await self._fetch_state_after(origin, room, prev)
                bridged = True
            try:
                await (await self._process(origin, room, missing_event, fetch_missing=False))
            except RemoteEventRejected as e:
                logger.info("gap event %s refused: %s", missing_event.event_id, e)

    async def store_outliers(self, events: list[Event]) -> None:
        """Persist state and auth events learnt over federation outside the timeline."""
        unique = list({e.event_id: e for e in events}.values())
        known = await self.state_store.known_event_ids([e.event_id for e in unique])
        fresh = [e for e in unique if e.event_id not in known]
        pending = {e.event_id for e in fresh if e.event_id in self._unwritten}
        fresh = [e for e in fresh if e.event_id not in pending]
        for event_id in sorted(pending):
            await self._wait_for_write(event_id)
        if not fresh:
            return
        await self._persist(self.writer.outliers(fresh))
