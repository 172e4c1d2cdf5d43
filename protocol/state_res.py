"""State resolution v2 (room versions 2-11) and v2.1 (room version 12, MSC4297).

Pure functions: no I/O. The caller hands over every event the algorithm may read in
``event_map`` (or an ``auth_chain_of`` accelerator for the auth chain walks), and gets
back the resolved state map ``(type, state_key) -> event_id``.

The algorithm, per the spec's "Room State Resolution" for room version 2 onwards:

1. Split the state sets into the *unconflicted state map* (keys present in every set
   with the same event) and the *conflicted state set* (everything else).
2. The *full conflicted set* is the conflicted state set plus the *auth difference*
   (events in some but not all of the state sets' auth chains) and, for v2.1, the
   *conflicted state subgraph* (events on an ``auth_events`` path between two
   conflicted events).
3. Power events of the full conflicted set (power levels, join rules, kicks and bans of
   others), together with their auth ancestors inside the full conflicted set, are
   sorted by the *reverse topological power ordering* and replayed with the *iterative
   auth checks* onto the unconflicted state (v2) or onto an empty state (v2.1).
4. The remaining events are sorted by *mainline ordering* against the resolved power
   levels and replayed the same way.
5. The unconflicted state is laid back on top.

Readings of the spec worth knowing (they match Synapse, the reference server):

- The full auth chain of a state set includes the state events themselves, so an event
  that every set holds is never part of the auth difference.
- The power sort graph follows ``auth_events`` edges between events of the full
  conflicted set only; an event reached only through events outside it is not added.
- In v2.1 the partially resolved state starts empty, so when the power levels are not
  conflicted the mainline is empty and the remaining events sort by
  origin_server_ts then event ID; they are then checked against their own auth events.
- Events marked rejected (``rejected_reason``) are replayed like any other, as the spec
  says; only rejected *auth* events are never used as auth state. (Synapse skips
  previously rejected events here, a deviation it documents.)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from protocol.auth_rules import auth_types_for_event, check_auth
from protocol.errors import AuthError, StateResolutionError
from protocol.events import Event
from protocol.power_levels import get_user_power_level
from protocol.room_versions import RoomVersion

__all__ = [
    "StateKey",
    "StateMap",
    "StateResolutionError",
    "full_conflicted_set",
    "is_power_event",
    "resolve_state",
]

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")


def is_power_event(event: Event) -> bool:
    """Power levels, join rules, or a leave/ban of a member by someone else."""
    if not event.is_state():
        return False
    key = (event.type, event.state_key)
    if key == POWER_LEVELS_KEY or key == JOIN_RULES_KEY:
        return True
    if event.type == "m.room.member" and event.membership in ("leave", "ban"):
        return event.sender != event.state_key
    return False


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Event],
    auth_chain_of: Callable[[str], set[str]] | None = None,
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with the state resolution algorithm of ``room_version``.

    ``event_map`` must hold every event the algorithm reads: the create event, the
    events of the full conflicted set, their auth events, the power levels chains
    walked by the mainline ordering and, unless ``auth_chain_of`` is given, every event
    of the state sets' auth chains. ``auth_chain_of(event_id)`` may return the auth
    chain of an event (its ``auth_events``, theirs, and so on; not the event itself)
    from an index; it is called at most once per event.

    Raises ``StateResolutionError`` when a needed event is missing, when an event
    belongs to another room, or when the state sets disagree on the create event.
    """
    if not state_sets:
        return {}
    if len(state_sets) == 1:
        return dict(state_sets[0])
    unconflicted, conflicted = _separate(state_sets)
    if not conflicted:
        return unconflicted
    resolver = _Resolver(room_version, event_map, auth_chain_of, state_sets)
    return resolver.resolve(state_sets, unconflicted, conflicted)


def full_conflicted_set(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Event],
    auth_chain_of: Callable[[str], set[str]] | None = None,
) -> set[str]:
    """The events ``resolve_state`` replays: conflicted state, auth difference and, for
    v2.1, the conflicted state subgraph. Empty when nothing is conflicted."""
    if len(state_sets) < 2:
        return set()
    unconflicted, conflicted = _separate(state_sets)
    if not conflicted:
        return set()
    resolver = _Resolver(room_version, event_map, auth_chain_of, state_sets)
    return resolver.full_conflicted_set(state_sets, unconflicted, conflicted)


def _separate(
    state_sets: Sequence[StateMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """The unconflicted state map and the conflicted state set, grouped by key.

    A key missing from any one state set is conflicted.
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    first, rest = state_sets[0], state_sets[1:]
    for key, event_id in first.items():
        if all(other.get(key) == event_id for other in rest):
            unconflicted[key] = event_id
    for state_set in state_sets:
        for key in state_set.keys() - unconflicted.keys():
            conflicted.setdefault(key, set()).add(state_set[key])
    return unconflicted, conflicted


class _Resolver:
    """One resolution: the inputs plus the per-call memos (auth chains, power, PLs)."""

    def __init__(
        self,
        room_version: RoomVersion,
        event_map: Mapping[str, Event],
        auth_chain_of: Callable[[str], set[str]] | None,
        state_sets: Sequence[StateMap],
    ) -> None:
        self.rv = room_version
        self.event_map = event_map
        self.auth_chain_of = auth_chain_of
        self._chains: dict[str, frozenset[str]] = {}
        self._pl_of: dict[str, str | None] = {}
        self.create = self._find_create(state_sets)
        self.room_id = self.create.room_id

    # Event access -----------------------------------------------------------------
    def get(self, event_id: str) -> Event:
        event = self.event_map.get(event_id)
        if event is None:
            raise StateResolutionError(f"state resolution needs event {event_id}, not given")
        if event.room_id != self.room_id:
            raise StateResolutionError(
                f"event {event_id} is in room {event.room_id}, not {self.room_id}"
            )
        return event

    def _find_create(self, state_sets: Sequence[StateMap]) -> Event:
        create_ids = {s[CREATE_KEY] for s in state_sets if CREATE_KEY in s}
        if len(create_ids) > 1:
            raise StateResolutionError("state sets disagree on the m.room.create event")
        if create_ids:
            create_id = create_ids.pop()
        elif self.rv.room_id_is_create_event_hash:
            # Room v12: the room ID is the create event's reference hash.
            some_id = next((eid for s in state_sets for eid in s.values()), None)
            if some_id is None:
                raise StateResolutionError("state sets are empty; no create event")
            some_event = self.event_map.get(some_id)
            if some_event is None:
                raise StateResolutionError(f"state resolution needs event {some_id}, not given")
            create_id = "$" + some_event.room_id[1:]
        else:
            raise StateResolutionError("no m.room.create event in the state sets")
        create = self.event_map.get(create_id)
        if create is None:
            raise StateResolutionError(f"state resolution needs create event {create_id}")
        if create.type != "m.room.create" or create.state_key != "":
            raise StateResolutionError(f"event {create_id} is not an m.room.create event")
        return create

    # Auth chains ------------------------------------------------------------------
    def _chain(self, event_id: str) -> frozenset[str]:
        """The accelerator's auth chain of one event, memoised."""
        chain = self._chains.get(event_id)
        if chain is None:
            assert self.auth_chain_of is not None
            chain = frozenset(self.auth_chain_of(event_id))
            self._chains[event_id] = chain
        return chain

    def closure(
        self, seeds: Iterable[str], stop: set[str] | frozenset[str] = frozenset()
    ) -> set[str]:
        """The seeds and all their auth ancestors, leaving out anything in ``stop``.

        ``stop`` must be closed under taking auth events (an ancestor-closed set), so
        the walk need not go past it.
        """
        result: set[str] = set()
        if self.auth_chain_of is not None:
            for seed in seeds:
                if seed not in stop and seed not in result:
                    result.add(seed)
                    result.update(self._chain(seed))
            return result - stop if stop else result
        stack = [seed for seed in seeds if seed not in stop]
        result.update(stack)
        while stack:
            event = self.get(stack.pop())
            for auth_id in event.auth_event_ids:
                if auth_id not in result and auth_id not in stop:
                    result.add(auth_id)
                    stack.append(auth_id)
        return result

    def auth_difference(
        self, state_sets: Sequence[StateMap], unconflicted: Mapping[StateKey, str]
    ) -> set[str]:
        """Events in some but not all of the state sets' full auth chains.

        Every chain holds the chain of the unconflicted state, so that part is walked
        once and each set then only walks its conflicted events' new ancestors.
        """
        common = self.closure(unconflicted.values())
        unconflicted_keys = unconflicted.keys()
        extras = [
            self.closure((s[k] for k in s.keys() - unconflicted_keys), stop=common)
            for s in state_sets
        ]
        union = set().union(*extras)
        intersection = set(extras[0]).intersection(*extras[1:])
        return union - intersection

    def conflicted_subgraph(self, conflicted_ids: set[str]) -> set[str]:
        """Events on an auth_events path from one conflicted event to another (v2.1)."""
        ancestors = self.closure(conflicted_ids)
        if self.auth_chain_of is not None:
            return {
                eid
                for eid in ancestors
                if eid in conflicted_ids or not conflicted_ids.isdisjoint(self._chain(eid))
            }
        # reaches[x]: x is conflicted or one of its auth ancestors is. Iterative DFS.
        reaches: dict[str, bool] = {}
        for start in ancestors:
            if start in reaches:
                continue
            stack: list[tuple[str, bool]] = [(start, False)]
            while stack:
                eid, expanded = stack.pop()
                if eid in reaches:
                    continue
                parents = self.get(eid).auth_event_ids
                if expanded:
                    reaches[eid] = eid in conflicted_ids or any(
                        reaches.get(p, False) for p in parents
                    )
                    continue
                stack.append((eid, True))
                stack.extend((p, False) for p in parents if p not in reaches)
        return {eid for eid, ok in reaches.items() if ok}

    # Orderings --------------------------------------------------------------------
    def pl_of(self, event_id: str) -> str | None:
        """The m.room.power_levels event among an event's auth_events, memoised."""
        if event_id in self._pl_of:
            return self._pl_of[event_id]
        found: str | None = None
        for auth_id in self.get(event_id).auth_event_ids:
            auth_event = self.get(auth_id)
            if auth_event.type == "m.room.power_levels" and auth_event.state_key == "":
                found = auth_id
                break
        self._pl_of[event_id] = found
        return found

    def sender_power(self, event: Event) -> int | float:
        """The sender's power level according to the event's own auth events."""
        pl_id = self.pl_of(event.event_id)
        pl_event = self.get(pl_id) if pl_id is not None else None
        return get_user_power_level(event.sender, pl_event, self.create, self.rv)

    def reverse_topological_power_sort(self, full_conflicted: set[str]) -> list[str]:
        """Power events of the full conflicted set plus their auth ancestors in it, sorted.

        The graph follows auth_events edges inside the full conflicted set. Kahn's
        algorithm emits an event once all its auth events in the graph are out, picking
        the highest sender power level, then the lowest origin_server_ts, then the
        lowest event ID.
        """
        parents: dict[str, list[str]] = {}
        stack = [eid for eid in full_conflicted if is_power_event(self.get(eid))]
        while stack:
            eid = stack.pop()
            if eid in parents:
                continue
            in_set = [a for a in self.get(eid).auth_event_ids if a in full_conflicted]
            parents[eid] = in_set
            stack.extend(a for a in in_set if a not in parents)
        return self._kahn(parents, self._power_key)

    def _power_key(self, event_id: str) -> tuple[int | float, int, str]:
        event = self.get(event_id)
        return (-self.sender_power(event), event.origin_server_ts, event_id)

    @staticmethod
    def _kahn(
        parents: Mapping[str, list[str]], key: Callable[[str], tuple[int | float, int, str]]
    ) -> list[str]:
        waiting = {eid: len(set(ps)) for eid, ps in parents.items()}
        children: dict[str, list[str]] = {}
        for eid, ps in parents.items():
            for parent in set(ps):
                children.setdefault(parent, []).append(eid)
        heap = [(key(eid), eid) for eid, count in waiting.items() if count == 0]
        heapq.heapify(heap)
        ordered: list[str] = []
        while heap:
            _, eid = heapq.heappop(heap)
            ordered.append(eid)
            for child in children.get(eid, ()):
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(heap, (key(child), child))
        if len(ordered) != len(parents):
            raise StateResolutionError("auth_events graph has a cycle")
        return ordered

    def mainline_sort(self, event_ids: Iterable[str], power_levels_id: str | None) -> list[str]:
        """Mainline ordering of ``event_ids`` based on the power levels event given.

        An event's mainline position is the index, in the mainline of the resolved power
        levels (index 0 is the resolved event itself), of the first power levels event
        met walking up from the event's own auth power levels; infinity if none. Larger
        positions (older bases) sort first, then origin_server_ts, then event ID.
        """
        positions: dict[str, float] = {}
        index = 0
        current = power_levels_id
        while current is not None and current not in positions:
            positions[current] = index
            index += 1
            current = self.pl_of(current)

        def landing(pl_id: str | None) -> float:
            path: list[str] = []
            while pl_id is not None and pl_id not in positions:
                path.append(pl_id)
                pl_id = self.pl_of(pl_id)
            found = positions[pl_id] if pl_id is not None else math.inf
            for passed in path:  # memoise: they land on the same mainline event
                positions[passed] = found
            return found

        def sort_key(event_id: str) -> tuple[float, int, str]:
            event = self.get(event_id)
            return (-landing(self.pl_of(event_id)), event.origin_server_ts, event_id)

        return sorted(event_ids, key=sort_key)

    # Iterative auth checks --------------------------------------------------------
    def iterative_auth_checks(
        self, event_ids: Iterable[str], state: dict[StateKey, str]
    ) -> dict[StateKey, str]:
        """Apply, in order, each event that passes the auth rules; updates ``state``.

        An event is checked against its own (non-rejected) auth events, overlaid by the
        state built so far at every key the auth rules need for it.
        """
        for event_id in event_ids:
            event = self.get(event_id)
            if not event.is_state():
                continue
            auth_state: dict[StateKey, Event] = {}
            for auth_id in event.auth_event_ids:
                auth_event = self.get(auth_id)
                if auth_event.rejected_reason is None and auth_event.is_state():
                    auth_state[(auth_event.type, auth_event.state_key or "")] = auth_event
            for key in auth_types_for_event(
                self.rv, event.type, event.sender, event.state_key, event.content
            ):
                resolved_id = state.get(key)
                if resolved_id is not None:
                    resolved = self.get(resolved_id)
                    if resolved.rejected_reason is None:
                        auth_state[key] = resolved
            try:
                check_auth(self.rv, event, auth_state, self.create)
            except AuthError:
                continue
            state[(event.type, event.state_key or "")] = event_id
        return state

    # The algorithm ----------------------------------------------------------------
    def full_conflicted_set(
        self,
        state_sets: Sequence[StateMap],
        unconflicted: Mapping[StateKey, str],
        conflicted: Mapping[StateKey, set[str]],
    ) -> set[str]:
        conflicted_ids: set[str] = set().union(*conflicted.values())
        full_conflicted = conflicted_ids | self.auth_difference(state_sets, unconflicted)
        if self.rv.state_res == "v2.1":
            full_conflicted |= self.conflicted_subgraph(conflicted_ids)
        for event_id in full_conflicted:
            self.get(event_id)  # every event of the full conflicted set must be given
        return full_conflicted

    def resolve(
        self,
        state_sets: Sequence[StateMap],
        unconflicted: dict[StateKey, str],
        conflicted: Mapping[StateKey, set[str]],
    ) -> dict[StateKey, str]:
        full_conflicted = self.full_conflicted_set(state_sets, unconflicted, conflicted)

        power_sorted = self.reverse_topological_power_sort(full_conflicted)
        base = {} if self.rv.state_res == "v2.1" else dict(unconflicted)
        partial = self.iterative_auth_checks(power_sorted, base)

        replayed = set(power_sorted)
        leftover = [eid for eid in full_conflicted if eid not in replayed]
        leftover = self.mainline_sort(leftover, partial.get(POWER_LEVELS_KEY))
        resolved = self.iterative_auth_checks(leftover, partial)

        resolved.update(unconflicted)
        return resolved
