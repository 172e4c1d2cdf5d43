"""``/relations``: the events relating to one event, as the reading user may see them.

Pages follow the relations index (storage/relations.py) by stream position: backwards from P
returns relations at or before P, newest first; forwards from P those after P, oldest first.
The parent must be readable by the user; the relations are filtered by the room's history
visibility and retention like ``/messages``.  With ``recurse`` the relations of relations are
followed too, up to :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.errors import DomainError, InvalidInput, NotFound
from broker.periodic import Periodic
from broker.rooms.visibility import restricts_history
from broker.services.history import History, Reader
from broker.sync.tokens import pagination_token
from protocol.events import Event
from storage.database import Database
from storage.relations import Relation, RelationStore

MAX_DEPTH = 3


@dataclass
class RelationsQuery:
    event_id: str
    rel_type: str | None
    event_type: str | None
    backwards: bool
    limit: int
    start: int | None  # the 'from' position, None from the edge
    to: int | None
    recurse: bool


def _wanted(q: RelationsQuery, relation: Relation) -> bool:
    return (q.rel_type is None or relation.rel_type == q.rel_type) and \
        (q.event_type is None or relation.type == q.event_type)


class Relations:
    def __init__(self, history: History, store: RelationStore) -> None:
        self.history = history
        self.store = store

    async def _check_parent(self, reader: Reader, event_id: str) -> None:
        """NotFound unless the user may read ``event_id`` in the reader's room."""
        event = (await self.history.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != reader.room.room_id or \
                int(event.unsigned["stream_ordering"]) > reader.bound or \
                self.history.retention.expired(reader.room.state, event):
            raise NotFound("Event not found")
        if restricts_history(reader.room):
            visible = await self.history.visibility.history_filter(
                reader.room.room_id, reader.user_id)
            if not visible.allows(event, reader.user_id):
                raise NotFound("Event not found")

    async def _tree(self, q: RelationsQuery) -> tuple[list[Relation], int]:
        """Every relation to the parent, and to those, up to MAX_DEPTH levels; the depth
        reached."""
        found: dict[str, Relation] = {}
        level, depth = [q.event_id], 0
        while level and depth < MAX_DEPTH:
            children = [r for r in await self.store.relations_of(level)
                        if r.event_id not in found]
            if not children:
                break
            depth += 1
            found.update((r.event_id, r) for r in children)
            level = [r.event_id for r in children]
        return sorted(found.values(), key=lambda r: r.stream_ordering), depth

    async def _candidates(self, q: RelationsQuery, bound: int
                          ) -> tuple[list[Relation], int | None]:
        """Up to ``limit`` + 1 relations in the page's window, in the page's order."""
        upper = bound if q.start is None or not q.backwards else min(q.start, bound)
        after = q.to if q.backwards else q.start
        if q.backwards and q.to is None:
            after = None
        if not q.backwards and q.to is not None:
            upper = min(upper, q.to)
        if q.recurse:
            tree, depth = await self._tree(q)
            window = [r for r in tree if _wanted(q, r) and r.stream_ordering <= upper
                      and (after is None or r.stream_ordering > after)]
            if q.backwards:
                window.reverse()
            return window[:q.limit + 1], depth
        page = await self.store.page(q.event_id, rel_type=q.rel_type, event_type=q.event_type,
                                     after=after, before=upper + 1, limit=q.limit + 1,
                                     backwards=q.backwards)
        return page, None

    async def relations(self, reader: Reader, q: RelationsQuery) -> dict[str, Any]:
        await self._check_parent(reader, q.event_id)
        candidates, depth = await self._candidates(q, reader.bound)
        more = len(candidates) > q.limit
        page = candidates[:q.limit]
        found = await self.history.events.get_events([r.event_id for r in page])
        events = await self._visible(
            reader, [found[r.event_id] for r in page if r.event_id in found])
        body: dict[str, Any] = {
            "chunk": await self.history.client_events.serialize(events, device=reader.device)}
        if more and page:
            last = page[-1].stream_ordering
            body["next_batch"] = pagination_token(last - 1 if q.backwards else last)
        if q.start is not None:
            body["prev_batch"] = pagination_token(q.start)
        if depth is not None:
            body["recursion_depth"] = depth
        return body

    async def refuse_duplicate_annotation(self, sender: str, device_id: str, txn_id: str,
                                          content: dict[str, Any]) -> None:
        """400 M_DUPLICATE_ANNOTATION if ``content`` annotates an event with a key its sender
        already annotated it with (a retry of the same send transaction is no duplicate).
        Only an annotation's send reads the index."""
        relates_to = content.get("m.relates_to")
        if not isinstance(relates_to, dict) or relates_to.get("rel_type") != "m.annotation":
            return
        target, key = relates_to.get("event_id"), relates_to.get("key")
        if isinstance(target, str) and isinstance(key, str) and \
                await self.store.has_annotation(target, sender, key, (device_id, txn_id)):
            raise InvalidInput("This event already has this annotation of yours",
                               errcode="M_DUPLICATE_ANNOTATION")

    async def aggregations(self, events: list[Event], user_id: str
                           ) -> dict[str, dict[str, Any]]:
        """``unsigned.m.relations`` of each of ``events`` that has any, for ``user_id``:
        ``m.thread`` (latest reply, count, whether the user took part), ``m.replace`` (the
        latest edit by the original sender: event_id, sender, origin_server_ts) and
        ``m.reference`` (the referencing events' IDs).  One read of the index and one of the
        events it names, whatever the number of events."""
        by_id = {e.event_id: e for e in events}
        bounds = await self._bounds(events, user_id)
        relations = [r for r in await self.store.relations_of(list(by_id))
                     if r.stream_ordering <= bounds[by_id[r.relates_to_id].room_id]]
        if not relations:
            return {}
        edits: dict[str, Relation] = {}
        references: dict[str, list[str]] = {}
        for relation in relations:  # oldest first
            parent = by_id[relation.relates_to_id]
            if relation.rel_type == "m.replace" and relation.sender == parent.sender:
                edits[parent.event_id] = relation
            elif relation.rel_type == "m.reference":
                references.setdefault(parent.event_id, []).append(relation.event_id)
        found: dict[str, dict[str, Any]] = {}
        threads = await self._summaries(user_id, [by_id[t] for t in dict.fromkeys(
            r.relates_to_id for r in relations if r.rel_type == "m.thread")], relations)
        edit_events = await self.history.events.get_events([r.event_id for r in edits.values()])
        for target, edit in edits.items():
            if edit.event_id in edit_events:
                found.setdefault(target, {})["m.replace"] = {
                    "event_id": edit.event_id, "sender": edit.sender,
                    "origin_server_ts": edit_events[edit.event_id].origin_server_ts}
        for target, ids in references.items():
            found.setdefault(target, {})["m.reference"] = {
                "chunk": [{"event_id": event_id} for event_id in ids]}
        for target, summary in threads.items():
            found.setdefault(target, {})["m.thread"] = summary
        return found

    async def _bounds(self, events: list[Event], user_id: str) -> dict[str, int]:
        """Per room of ``events``, the newest position whose relations the user may see:
        up to their departure for one who left (a reply sent after it is not theirs to
        read); for a reader who is no member (a world-readable room), up to the newest of
        the events served."""
        bounds: dict[str, int] = {}
        for room_id in {e.room_id for e in events}:
            try:
                room = await self.history.rooms.get_room(room_id)
                bounds[room_id] = await self.history.visibility.readable_until(room, user_id)
            except DomainError:
                bounds[room_id] = max(int(e.unsigned.get("stream_ordering", 0))
                                      for e in events if e.room_id == room_id)
        return bounds

    async def _visible(self, reader: Reader, events: list[Event]) -> list[Event]:
        room = reader.room
        events = self.history.retention.visible(room.state, events)
        if restricts_history(room):
            visible = await self.history.visibility.history_filter(room.room_id,
                                                                   reader.user_id)
            events = visible.filter(events, reader.user_id)
        return events

    async def _thread_summaries(self, reader: Reader, roots: list[Event]
                                ) -> dict[str, dict[str, Any]]:
        """The ``m.thread`` aggregation of each root, up to the reader's bound."""
        relations = [r for r in await self.store.relations_of([e.event_id for e in roots])
                     if r.stream_ordering <= reader.bound]
        return await self._summaries(reader.user_id, roots, relations)

    async def _summaries(self, user_id: str, roots: list[Event], relations: list[Relation]
                         ) -> dict[str, dict[str, Any]]:
        """The ``m.thread`` aggregation of each root from its ``relations`` (oldest first):
        its latest reply (serialized), the number of replies and whether the user started or
        replied to it."""
        if not roots:
            return {}
        latest: dict[str, Relation] = {}
        counts: dict[str, int] = {}
        participated = {e.event_id for e in roots if e.sender == user_id}
        for reply in (r for r in relations if r.rel_type == "m.thread"):
            latest[reply.relates_to_id] = reply  # oldest first: the last one is the latest
            counts[reply.relates_to_id] = counts.get(reply.relates_to_id, 0) + 1
            if reply.sender == user_id:
                participated.add(reply.relates_to_id)
        found = await self.history.events.get_events([r.event_id for r in latest.values()])
        shown = await self.history.client_events.serialize(
            [found[r.event_id] for r in latest.values() if r.event_id in found],
            device=(user_id, ""))
        by_id = {event["event_id"]: event for event in shown}
        return {root: {"latest_event": by_id[reply.event_id], "count": counts[root],
                       "current_user_participated": root in participated}
                for root, reply in latest.items() if reply.event_id in by_id}

    async def threads(self, reader: Reader, include_all: bool, start: int | None,
                      limit: int) -> dict[str, Any]:
        """``/threads``: the room's thread roots by latest reply, newest first."""
        page = await self.store.threads_page(
            reader.room.room_id, up_to=reader.bound, before=start,
            participant=None if include_all else reader.user_id, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        found = await self.history.events.get_events([root for root, _ in page])
        roots = await self._visible(reader, [found[root] for root, _ in page if root in found])
        summaries = await self._thread_summaries(reader, roots)
        chunk = await self.history.client_events.serialize(roots, device=reader.device)
        for event in chunk:
            summary = summaries.get(event["event_id"])
            if summary is not None:
                relations = event.setdefault("unsigned", {}).setdefault("m.relations", {})
                relations["m.thread"] = summary
        body: dict[str, Any] = {"chunk": chunk}
        if more and page:
            body["next_batch"] = pagination_token(page[-1][1])
        return body


FILL_STEP = 500  # events read per transaction of the background fill
FILL_INTERVAL_S = 60.0


class RelationsFill:
    """Indexes the relations of events stored before the index was kept (migration 270), a
    step of :data:`FILL_STEP` events a transaction, newest first; resumed after a restart
    where it stopped (the store keeps its position).  Once done each run is one read."""

    def __init__(self, store: RelationStore) -> None:
        self.store = store
        self.job = Periodic(self._run, "relations index fill")

    async def _run(self) -> None:
        while await self.store.fill_step(FILL_STEP):
            pass

    def start(self, reactor: Any) -> None:
        self.job.start(reactor, FILL_INTERVAL_S)

    def stop(self) -> None:
        self.job.stop()


def build_relations(history: History, db: Database) -> tuple[Relations, RelationsFill]:
    """The ``/relations`` service and the index's background fill, over one store."""
    store = RelationStore(db)
    return Relations(history, store), RelationsFill(store)
