"""Builds /sync responses and long-polls for changes.

An incremental sync first asks memory what changed since the token (the notifier's per-user
and per-room positions, each live room's recent events, the typing serial) and reads the
database only for rooms and users that did change, batching those reads across rooms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from broker.auth import Requester
from broker.e2ee.sync import has_news as e2ee_news
from broker.filtering import Filter
from broker.push_rules_defaults import push_rules_content
from broker.retention import Retention
from broker.rooms.client_events import ClientEvents
from broker.rooms.live_room import LiveRoom
from broker.rooms.stripped_state import stripped, stripped_state
from broker.rooms.visibility import HistoryFilter, Visibility, restricts_history
from broker.sync.shared import SharedBuilds, SharedTimelines, TimelineKey, TimelineSection
from broker.sync.shared_responses import (
    SHARED_RESPONSES,
    E2eeShareKey,
    ResponseKey,
    ResponseSharing,
    SharedResponse,
    room_has_news,
)
from broker.sync.summary import RoomSummaries
from broker.sync.tokens import SyncToken, pagination_token
from protocol.events import Event
from protocol.strict_json import Encoded
from storage.remote_invites import RemoteInvite
from storage.remote_knocks import RemoteKnock

if TYPE_CHECKING:
    from broker.clock import Clock
    from broker.notifier import Notifier
    from broker.rooms.service import Rooms
    from broker.typing_tracker import TypingTracker
    from storage.account_data import AccountDataStore
    from storage.events import EventStore
    from storage.push_rules import PushRuleStore
    from storage.receipts import ReceiptStore
    from storage.remote_invites import RemoteInviteStore
    from storage.remote_knocks import RemoteKnockStore
    from storage.state import StateStore
    from storage.stream import StreamIdGenerator

DEFAULT_TIMELINE_LIMIT = 10


@dataclass
class SyncRequest:
    requester: Requester
    since: SyncToken | None
    filter: Filter
    full_state: bool = False
    timeout_ms: int = 0


@dataclass
class _RoomPlan:
    """A joined room to report, and how."""

    room: LiveRoom
    full: bool  # initial sync, newly joined, or full_state


@dataclass
class _Result:
    body: dict[str, Any]
    has_changes: bool
    stream_fields: dict[str, Any] = field(default_factory=dict)


E2eeFields = Callable[[Requester, "int | None", int], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class E2eeSync:
    """The end-to-end encryption fields of an answer, and what they depend on."""

    fields: E2eeFields
    share_key: E2eeShareKey


@dataclass(frozen=True)
class SyncStores:
    """The stores a sync reads."""

    events: EventStore
    state: StateStore
    receipts: ReceiptStore
    remote_invites: RemoteInviteStore
    account_data: AccountDataStore
    push_rules: PushRuleStore
    remote_knocks: RemoteKnockStore


class SyncHandler:
    def __init__(self, stores: SyncStores, rooms: Rooms, stream: StreamIdGenerator,
                 notifier: Notifier, typing: TypingTracker, visibility: Visibility,
                 client_events: ClientEvents, e2ee: E2eeSync, clock: Clock,
                 ignores_invite: Callable[[str, str], bool], retention: Retention) -> None:
        self.stores = stores
        self.retention = retention
        self.rooms = rooms
        self.stream = stream
        self.notifier = notifier
        self.typing = typing
        self.visibility = visibility
        self.client_events = client_events
        self.e2ee_fields = e2ee.fields
        self.clock = clock
        self.ignores_invite = ignores_invite  # (invitee, inviter): an invite never shown
        self.on_sync: Callable[[str], None] | None = None  # told the user of each sync
        # told (user, since's stream position) of each incremental sync: what a device of the
        # user has confirmed receiving (broker/sync_progress.py); memory only
        self.on_since: Callable[[str, int], None] | None = None
        self.summaries = RoomSummaries()
        self.shared_timelines = SharedTimelines()
        self.shared_responses: SharedBuilds[ResponseKey, SharedResponse] = SharedBuilds(
            SHARED_RESPONSES)
        self.sharing = ResponseSharing(
            rooms.registry, notifier, typing, self.summaries, retention, e2ee.share_key,
            lambda flt: flt.timeline_limit(DEFAULT_TIMELINE_LIMIT))

    async def sync(self, req: SyncRequest) -> dict[str, Any]:
        """Answer at once when there is news (or for an initial sync), else wait for news up
        to the timeout."""
        deadline = self.clock.time() + req.timeout_ms / 1000.0
        user_id = req.requester.user_id
        if self.on_sync is not None:
            self.on_sync(user_id)
        if req.since is not None:
            # A token from the future (never handed out by this node) waits and reports from
            # the current position, like any token of now.
            since = req.since.bounded_by(self._current())
            req = replace(req, since=since)
            if self.on_since is not None:
                self.on_since(user_id, since.stream)
        while True:
            now = self._current()
            result = await self._build(req, now)
            remaining = deadline - self.clock.time()
            if req.since is None or req.full_state or result.has_changes or remaining <= 0:
                return result.body
            if (self.stream.current_token() == now.stream
                    and self.typing.serial == now.typing):
                await self.notifier.wait_for_user(user_id, remaining)

    def _current(self) -> SyncToken:
        return SyncToken(self.stream.current_token(), self.typing.serial)

    async def _build(self, req: SyncRequest, now: SyncToken) -> _Result:
        """The answer at ``now``: one shared with every requester who gets the same bytes
        (see :mod:`broker.sync.shared_responses`), else built for this one."""
        rooms_map = await self.rooms.user_rooms.rooms_for_user(req.requester.user_id)
        key = None
        if req.since is not None and not req.full_state:
            key = self.sharing.key(req.requester, req.since, now, req.filter, rooms_map)
        if key is not None:
            kept = self.shared_responses.get(key, self.clock.time_ms())
            if kept is not None:
                return _Result(kept.body, True)
        result = await self._build_for(req, now, rooms_map)
        if key is not None and result.has_changes:
            body = Encoded(result.body)
            self.shared_responses.put(key, SharedResponse(body, self.clock.time_ms()))
            return _Result(body, True)
        return result

    async def _build_for(self, req: SyncRequest, now: SyncToken,
                         rooms_map: dict[str, str]) -> _Result:
        user_id = req.requester.user_id
        since = req.since
        user_changed = since is None or self.notifier.user_changed_since(user_id, since.stream)
        changed_memberships = await self._membership_changes(req, now, user_changed)
        # Joined rooms, and in an initial sync the rooms of every invite, in one batch; held
        # until the answer is built, so none is dropped from memory and read again meanwhile.
        held = await self._load_rooms([r for r, m in rooms_map.items()
                                       if m == "join" or (m == "invite" and since is None)])
        plans, invites, leaves = await self._plan_rooms(req, rooms_map, changed_memberships,
                                                        held)
        if since is not None and user_changed:
            plans += await self._rooms_with_private_receipts(req, now, rooms_map, plans)
        if user_changed:
            invites.update(await self._remote_invites(req, rooms_map))
        knocks = await self._knocks(req, rooms_map, changed_memberships) if user_changed else {}
        joined = await self._joined_sections(req, plans, now)
        account_data, room_account_data = await self._account_data(req, now, user_changed)
        self._add_room_account_data(req, joined, rooms_map, room_account_data)
        joined = {room_id: s for room_id, s in joined.items()
                  if since is None or req.full_state or _section_has_news(s)}
        body: dict[str, Any] = {
            "next_batch": str(now),
            "rooms": {"join": joined, "invite": invites, "leave": leaves, "knock": knocks},
            "account_data": {"events": account_data},
            "presence": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
        }
        e2ee = await self.e2ee_fields(req.requester, since.stream if since else None,
                                  now.stream)
        _merge_e2ee(body, e2ee)
        has_changes = bool(joined or invites or leaves or knocks or account_data) or e2ee_news(e2ee)
        return _Result(body, has_changes)

    async def _membership_changes(self, req: SyncRequest, now: SyncToken,
                                  user_changed: bool) -> dict[str, str]:
        """Room ID -> the user's membership event that changed since the token."""
        if req.since is None or not user_changed:
            return {}
        return {room_id: event_id
                for room_id, event_id, _stream in await self.stores.state
                .get_membership_changes(req.requester.user_id, req.since.stream, now.stream)}

    async def _plan_rooms(
        self, req: SyncRequest, rooms_map: dict[str, str], changed_memberships: dict[str, str],
        loaded: dict[str, LiveRoom],
    ) -> tuple[list[_RoomPlan], dict[str, Any], dict[str, Any]]:
        """The joined rooms to report (and how), the invite and the leave sections."""
        since, user_id = req.since, req.requester.user_id
        plans: list[_RoomPlan] = []
        invites: dict[str, Any] = {}
        leaves: dict[str, Any] = {}
        for room_id, membership in list(rooms_map.items()):
            if not req.filter.allows_room(room_id):
                continue
            newly = room_id in changed_memberships
            if membership == "join":
                room = loaded.get(room_id) or await self.rooms.registry.get(room_id)
                if room is None:
                    continue
                if since is None or req.full_state or newly:
                    plans.append(_RoomPlan(room, full=True))
                elif room_has_news(room, since, self.notifier, self.typing):
                    plans.append(_RoomPlan(room, full=False))
            elif membership == "invite" and (since is None or newly):
                section = await self._invite_section(room_id, user_id)
                if section is not None:
                    invites[room_id] = section
            elif membership in ("leave", "ban") and newly and since is not None:
                leaves[room_id] = await self._leave_section(
                    room_id, changed_memberships[room_id], since, req)
        return plans, invites, leaves

    async def _rooms_with_private_receipts(
        self, req: SyncRequest, now: SyncToken, rooms_map: dict[str, str],
        plans: list[_RoomPlan],
    ) -> list[_RoomPlan]:
        """Joined rooms not yet planned where a receipt only this user sees changed (a private
        receipt does not mark the room changed)."""
        assert req.since is not None
        planned = {p.room.room_id for p in plans}
        quiet = [r for r, m in rooms_map.items()
                 if m == "join" and r not in planned and req.filter.allows_room(r)]
        if not quiet:
            return []
        changed = await self.stores.receipts.get_receipts_changed(
            quiet, req.requester.user_id, req.since.stream, now.stream)
        more: list[_RoomPlan] = []
        for room_id in changed:
            room = await self.rooms.registry.get(room_id)
            if room is not None:
                more.append(_RoomPlan(room, full=False))
        return more

    async def _remote_invites(self, req: SyncRequest,
                              rooms_map: dict[str, str]) -> dict[str, Any]:
        """Invites to rooms on other servers, new since the token."""
        since = req.since
        invites: dict[str, Any] = {}
        for invite in await self.stores.remote_invites.get_invites(req.requester.user_id):
            fresh = since is None or invite.stream_id > since.stream
            if fresh and rooms_map.get(invite.room_id) not in ("join", "ban") and \
                    req.filter.allows_room(invite.room_id):
                invites[invite.room_id] = _remote_invite_section(invite)
        return invites

    async def _knocks(self, req: SyncRequest, rooms_map: dict[str, str],
                      changed_memberships: dict[str, str]) -> dict[str, Any]:
        """The user's knocks new since the token: on rooms held here (what the room shows a
        non-member) and on rooms of other servers (what their server answered)."""
        since, user_id = req.since, req.requester.user_id
        knocks: dict[str, Any] = {}
        for room_id, membership in rooms_map.items():
            if membership == "knock" and (since is None or room_id in changed_memberships) \
                    and req.filter.allows_room(room_id):
                room = await self.rooms.registry.get(room_id)
                if room is not None:
                    knocks[room_id] = _knock_section(stripped_state(room),
                                                     room.state.get(("m.room.member", user_id)))
        for knock in await self.stores.remote_knocks.get_knocks(user_id):
            fresh = since is None or knock.stream_id > since.stream
            if fresh and rooms_map.get(knock.room_id) in (None, "knock", "leave") and \
                    req.filter.allows_room(knock.room_id):
                knocks[knock.room_id] = _remote_knock_section(knock)
        return knocks

    def _add_room_account_data(self, req: SyncRequest, joined: dict[str, Any],
                               rooms_map: dict[str, str],
                               room_account_data: dict[str, dict[str, Any]]) -> None:
        """Put each joined room's account data into its section (a room with only that news
        gets a section of its own in an incremental sync)."""
        for room_id, data in room_account_data.items():
            section = joined.get(room_id)
            if section is None and rooms_map.get(room_id) == "join" and req.since is not None:
                section = joined[room_id] = self._empty_joined()
            if section is not None:
                section["account_data"]["events"] = [
                    {"type": t, "content": c} for t, c in data.items()
                    if req.filter.allows_room_account_data(t, room_id)]

    async def _load_rooms(self, room_ids: list[str]) -> dict[str, LiveRoom]:
        """Bring rooms into memory in one batch (after a restart, the first sync of a user in
        many rooms would otherwise read them one by one)."""
        return await self.rooms.registry.get_many(room_ids)

    @staticmethod
    def _empty_joined() -> dict[str, Any]:
        return {
            "timeline": {"events": [], "limited": False},
            "state": {"events": []},
            "ephemeral": {"events": []},
            "account_data": {"events": []},
            "summary": {},
            "unread_notifications": {},
        }

    # -- joined rooms -------------------------------------------------------------------------------
    async def _joined_sections(self, req: SyncRequest, plans: list[_RoomPlan],
                               now: SyncToken) -> dict[str, Any]:
        if not plans:
            return {}
        user_id = req.requester.user_id
        receipts_full = [p.room.room_id for p in plans if p.full]
        since_stream = req.since.stream if req.since is not None else 0
        mine_changed = self.notifier.user_changed_since(user_id, since_stream)
        receipts_incr = [p.room.room_id for p in plans if not p.full and (
            mine_changed or self.notifier.room_data_changed_since(p.room.room_id, since_stream))]
        receipts: dict[str, Any] = {}
        if req.filter.allows_ephemeral("m.receipt"):
            if receipts_full:
                receipts.update(await self.stores.receipts.get_receipts_for_rooms(
                    receipts_full, user_id))
            if receipts_incr and req.since is not None:
                receipts.update(await self.stores.receipts.get_receipts_changed(
                    receipts_incr, user_id, req.since.stream, now.stream))
        # What each room's history lets the user see, for the rooms reported whole.
        histories = await self.visibility.history_filters(
            [p.room.room_id for p in plans if p.full and restricts_history(p.room)], user_id)
        sections: dict[str, Any] = {}
        for plan in plans:
            sections[plan.room.room_id] = await self._joined_room(
                req, plan, now, receipts, histories.get(plan.room.room_id))
        return sections

    async def _timeline_events(self, room: LiveRoom, after: int | None, up_to: int,
                               limit: int) -> list[Event]:
        """Up to ``limit + 1`` newest events in ``(after, up_to]`` not expired under the
        room's retention policy, oldest first, from the room's recent window when it covers
        them.  Expired events are left out before the window is cut, so ``limited`` (one
        more than ``limit``) counts only events the client could still read."""
        retention = self.retention
        if after is None:
            candidates = retention.visible(
                room.state, [e for e in room.recent if e.unsigned["stream_ordering"] <= up_to])
            if len(candidates) > limit or room.recent_after == 0:
                return candidates[-(limit + 1):]
        else:
            cached = room.recent_since(after, up_to)
            if cached is not None:
                return retention.visible(room.state, cached)[-(limit + 1):]
        events = await self.stores.events.get_room_events(
            room.room_id, after=after, up_to=up_to, limit=limit + 1, backwards=True,
            sent_since=retention.sent_since(room.state))
        events.reverse()
        return retention.visible(room.state, events)

    async def _joined_room(self, req: SyncRequest, plan: _RoomPlan, now: SyncToken,
                           receipts: dict[str, Any],
                           history: HistoryFilter | None) -> dict[str, Any]:
        """A joined room's section (``history``: the filter of a restricted room shown whole)."""
        room = plan.room
        flt = req.filter
        since_stream = None if plan.full or req.since is None else req.since.stream
        timeline = await self._timeline(req, room, since_stream, now, history)
        state_events = await self._state_events(req, plan, now, timeline)
        device = (req.requester.user_id, req.requester.device_id)
        section = self._empty_joined()
        section["timeline"] = timeline.section
        serialized = await self.client_events.serialize(
            state_events, device=device, include_room_id=False) if state_events else []
        section["state"] = {"events": [flt.apply_event_fields(e) for e in serialized]}
        section["ephemeral"] = {"events": self._ephemeral(req, plan, receipts)}
        section["summary"] = self.summaries.summary(room, req.requester.user_id)
        return section

    async def _timeline(self, req: SyncRequest, room: LiveRoom, since_stream: int | None,
                        now: SyncToken, history: HistoryFilter | None) -> TimelineSection:
        """The room's timeline for this sync: the one every member woken by the same event
        shares (see :mod:`broker.sync.shared`), else built for this requester."""
        user_id = req.requester.user_id
        key: TimelineKey | None = None
        if since_stream is not None and history is None:
            key = (room.room_id, since_stream, now.stream, room.recent_version, req.filter.key)
            shared = self.shared_timelines.get(key, self.clock.time_ms())
            if shared is not None and user_id not in shared.senders and \
                    not self._holds_expired(room, shared.events):
                return shared
        flt = req.filter
        limit = flt.timeline_limit(DEFAULT_TIMELINE_LIMIT)
        window, limited = _newest(
            await self._timeline_events(room, since_stream, now.stream, limit), limit)
        first_stream = (window[0].unsigned["stream_ordering"] if window else now.stream + 1)
        events = [e for e in window if flt.allows_timeline_event(
                      e.type, e.sender, "url" in e.content, room.room_id, e.content)]
        if history is not None:
            events = history.filter(events, user_id)
        senders = frozenset(e.sender for e in events)
        shareable = key is not None and bool(events) and user_id not in senders
        serialized = await self.client_events.serialize(
            events, device=None if shareable else (user_id, req.requester.device_id),
            include_room_id=False)
        section: dict[str, Any] = {
            "events": [flt.apply_event_fields(e) for e in serialized],
            "limited": limited,
            "prev_batch": pagination_token(first_stream - 1),
        }
        if key is None or not shareable:
            return TimelineSection(events, window, limited, first_stream, section, senders, 0)
        built = TimelineSection(events, window, limited, first_stream, Encoded(section), senders,
                               self.clock.time_ms())
        self.shared_timelines.put(key, built)
        return built

    def _holds_expired(self, room: LiveRoom, events: list[Event]) -> bool:
        """Whether a shared timeline shows an event that has expired since it was built."""
        return len(self.retention.visible(room.state, events)) != len(events)

    async def _state_events(self, req: SyncRequest, plan: _RoomPlan, now: SyncToken,
                            timeline: TimelineSection) -> list[Event]:
        """The state section: the whole state for a room shown whole, the state changes in
        the gap before a limited timeline, else nothing."""
        room = plan.room
        flt = req.filter
        state_events: list[Event]
        if plan.full:
            in_timeline = {e.event_id for e in timeline.window}
            state_events = [e for e in room.state.values()
                            if e.event_id not in in_timeline
                            and e.unsigned.get("stream_ordering", 0) <= now.stream]
        elif timeline.limited and req.since is not None:
            gap = await self.stores.events.get_state_events_between(
                room.room_id, req.since.stream, timeline.first_stream - 1)
            latest: dict[tuple[str, str], Event] = {}
            for event in gap:
                latest[(event.type, event.state_key or "")] = event
            state_events = list(latest.values())
        else:
            return []
        state_events = [e for e in state_events if flt.allows_state_event(
            e.type, e.sender, False, room.room_id)]
        if flt.lazy_load_members and state_events:
            wanted = {e.sender for e in timeline.events} | {req.requester.user_id}
            state_events = [e for e in state_events
                            if e.type != "m.room.member" or e.state_key in wanted]
        return state_events

    def _ephemeral(self, req: SyncRequest, plan: _RoomPlan,
                   receipts: dict[str, Any]) -> list[dict[str, Any]]:
        room_id = plan.room.room_id
        ephemeral: list[dict[str, Any]] = []
        if (req.since is None or plan.full or self.typing.changed_since(
                room_id, req.since.typing)) and req.filter.allows_ephemeral("m.typing"):
            typing_users = self.typing.typing_users(room_id)
            if typing_users or req.since is not None:
                ephemeral.append({"type": "m.typing", "content": {"user_ids": typing_users}})
        if receipts.get(room_id):
            ephemeral.append({"type": "m.receipt", "content": receipts[room_id]})
        return ephemeral

    # -- invites and leaves ---------------------------------------------------------------------------
    async def _invite_section(self, room_id: str, user_id: str) -> dict[str, Any] | None:
        """The invite's section; None for an invite the user ignores."""
        room = await self.rooms.registry.get(room_id)
        events: list[dict[str, Any]] = []
        if room is not None:
            events.extend(stripped_state(room))
            invite = room.state.get(("m.room.member", user_id))
            if invite is not None and self.ignores_invite(user_id, invite.sender):
                return None
            if invite is not None:
                member = stripped(invite)
                member.update({"event_id": invite.event_id,
                               "origin_server_ts": invite.origin_server_ts})
                events.append(member)
            inviter = room.state.get(("m.room.member", invite.sender)) if invite else None
            if inviter is not None:
                events.append(stripped(inviter))
        return {"invite_state": {"events": events}}

    async def _leave_section(self, room_id: str, leave_event_id: str, since: SyncToken,
                             req: SyncRequest) -> dict[str, Any]:
        leave_stream = await self.stores.events.get_stream_ordering(leave_event_id) or 0
        limit = req.filter.timeline_limit(DEFAULT_TIMELINE_LIMIT)
        room = await self.rooms.registry.get(room_id)
        state = room.state if room is not None else {}
        # Expired events are left out before the window is cut, as for a joined room.
        events = await self.stores.events.get_room_events(
            room_id, after=since.stream, up_to=leave_stream, limit=limit + 1, backwards=True,
            sent_since=self.retention.sent_since(state))
        events.reverse()
        events, limited = _newest(self.retention.visible(state, events), limit)
        device = (req.requester.user_id, req.requester.device_id)
        first = events[0].unsigned["stream_ordering"] if events else leave_stream + 1
        return {
            "timeline": {
                "events": await self.client_events.serialize(events, device=device,
                                                 include_room_id=False),
                "limited": limited,
                "prev_batch": pagination_token(first - 1),
            },
            "state": {"events": []},
            "account_data": {"events": []},
        }

    # -- account data -------------------------------------------------------------------------------
    async def _account_data(self, req: SyncRequest, now: SyncToken, user_changed: bool,
                            ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        store = self.stores.account_data
        user_id = req.requester.user_id
        if req.since is None:
            global_data = await store.get_global_account_data(user_id)
            room_data = await store.get_room_account_data(user_id)
            if "m.push_rules" not in global_data:
                # Clients expect their (default) push rules in the first sync.
                snapshot = await self.stores.push_rules.get_push_rules(user_id)
                global_data["m.push_rules"] = push_rules_content(user_id, snapshot)
        elif user_changed:
            global_data, room_data = await store.get_account_data_changes(
                user_id, req.since.stream, now.stream)
        else:
            return [], {}
        events = [{"type": t, "content": c} for t, c in global_data.items()
                  if req.filter.allows_account_data(t)]
        return events, room_data


def _newest(events: list[Event], limit: int) -> tuple[list[Event], bool]:
    """The newest ``limit`` of ``events`` (oldest first), and whether any were left out."""
    kept = events[max(0, len(events) - limit):] if limit > 0 else []
    return kept, len(kept) < len(events)


def _section_has_news(section: dict[str, Any]) -> bool:
    return bool(section["timeline"]["events"] or section["state"]["events"]
                or section["ephemeral"]["events"] or section["account_data"]["events"])


def _knock_section(state: list[dict[str, Any]], knock: Event | None) -> dict[str, Any]:
    """A knock on a room held here: the room's stripped state and the knock itself."""
    events = list(state)
    if knock is not None and knock.membership == "knock":
        member = stripped(knock)
        member.update({"event_id": knock.event_id, "origin_server_ts": knock.origin_server_ts})
        events.append(member)
    return {"knock_state": {"events": events}}


def _remote_knock_section(knock: RemoteKnock) -> dict[str, Any]:
    """A knock on a room of another server: the state its server answered with, and the
    knock."""
    event = knock.event
    member = {"type": "m.room.member", "state_key": knock.user_id, "sender": knock.user_id,
              "content": event.get("content", {}), "event_id": knock.event_id,
              "origin_server_ts": event.get("origin_server_ts")}
    return {"knock_state": {"events": [*knock.knock_state, member]}}


def _remote_invite_section(invite: RemoteInvite) -> dict[str, Any]:
    """An invite to a room on another server: the state its server sent, and the invite."""
    event = invite.event
    member = {"type": "m.room.member", "state_key": invite.user_id, "sender": event.get("sender"),
              "content": event.get("content", {}), "event_id": invite.event_id,
              "origin_server_ts": event.get("origin_server_ts")}
    return {"invite_state": {"events": [*invite.invite_state, member]}}


def _merge_e2ee(body: dict[str, Any], fields: dict[str, Any]) -> None:
    """Put the end-to-end encryption fields into the response (they replace the empty
    defaults)."""
    for key, value in fields.items():
        if isinstance(body.get(key), dict) and isinstance(value, dict):
            body[key].update(value)
        else:
            body[key] = value
