"""Event filters (the spec's Filter, EventFilter and RoomEventFilter), parsed once, used per event.

``Filter.from_json`` validates a filter definition (400 ``M_BAD_JSON`` naming the offending key);
the parsed objects answer "does this event pass?" on hot paths, so every type list is compiled up
front: plain names into a frozenset, ``*`` wildcards into one anchored regex.  ``resolve_filter``
turns /sync's ``filter`` query argument (a stored filter id or inline JSON) into a :class:`Filter`;
``parse_room_event_filter`` does the same for /messages' inline RoomEventFilter.

Apart from ``resolve_filter`` (which reads stored filters) this module is pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from broker.errors import InvalidInput, MalformedContent
from broker.message_tags import TAGS_FIELD, tags_of
from protocol.strict_json import loads_strict

if TYPE_CHECKING:
    from storage.filters import FilterStore

DEFAULT_MAX_LIMIT = 1000
# RoomEventFilter fields (in the manner of MSC2326's labels): events carrying at least one of
# these message tags, and events carrying none of those.
TAGS_FILTER = "in.gov.broker.tags"
NOT_TAGS_FILTER = "in.gov.broker.not_tags"
FILTER_ID = re.compile("[0-9]{1,18}")  # a stored filter id (fits a BIGINT)


class _Patterns:
    """A compiled list of event types where ``*`` matches any sequence of characters."""

    __slots__ = ("_exact", "_regex")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        wild: list[str] = []
        for pattern in patterns:
            if "*" in pattern:
                wild.append(".*".join(re.escape(part) for part in pattern.split("*")))
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._regex = re.compile("(?:" + "|".join(wild) + r")\Z", re.DOTALL) if wild else None

    def matches(self, value: str) -> bool:
        if value in self._exact:
            return True
        return self._regex is not None and self._regex.match(value) is not None


# -- validation helpers ------------------------------------------------------------------------

def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedContent(f"'{path or 'filter'}' must be an object")
    return value


def _bool(body: dict[str, Any], key: str, path: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise MalformedContent(f"'{_where(path, key)}' must be a boolean")
    return value


def _strings(body: dict[str, Any], key: str, path: str, prefix: str = "") -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedContent(f"'{_where(path, key)}' must be an array of strings")
    if prefix:
        for item in value:
            if not item.startswith(prefix) or len(item) < 2:
                raise MalformedContent(f"'{_where(path, key)}' holds {item!r}, which does not start"
                               f" with '{prefix}'")
    return value


def split_property_path(path: str) -> tuple[str, ...]:
    """A dot-separated property path (``\\.`` is a literal dot, ``\\\\`` a backslash)."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            current.append(escaped if escaped in ".\\" else "\\" + escaped)
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(parts)


class EventFilter:
    """The spec's EventFilter, extended to RoomEventFilter when ``room_event`` is set."""

    __slots__ = ("limit", "_types", "_not_types", "_senders", "_not_senders", "_rooms",
                 "_not_rooms", "contains_url", "lazy_load_members", "include_redundant_members",
                 "unread_thread_notifications", "_tags", "_not_tags", "_matches_all")

    def __init__(self, body: dict[str, Any] | None = None, *, path: str = "",
                 room_event: bool = False) -> None:
        body = _object(body if body is not None else {}, path)
        limit = body.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise MalformedContent(f"'{_where(path, 'limit')}' must be an integer")
        if limit is not None and limit < 1:
            raise MalformedContent(f"'{_where(path, 'limit')}' must be greater than 0")
        self.limit: int | None = limit
        types = _strings(body, "types", path)
        not_types = _strings(body, "not_types", path)
        senders = _strings(body, "senders", path, "@")
        not_senders = _strings(body, "not_senders", path, "@")
        self._types = _Patterns(types) if types is not None else None
        self._not_types = _Patterns(not_types) if not_types else None
        self._senders = frozenset(senders) if senders is not None else None
        self._not_senders = frozenset(not_senders or ())
        rooms = not_rooms = tags = None
        not_tags: list[str] | None = None
        self.contains_url: bool | None = None
        self.lazy_load_members = self.include_redundant_members = False
        self.unread_thread_notifications = False
        if room_event:
            rooms = _strings(body, "rooms", path, "!")
            not_rooms = _strings(body, "not_rooms", path, "!")
            self.contains_url = _bool(body, "contains_url", path)
            self.lazy_load_members = bool(_bool(body, "lazy_load_members", path))
            self.include_redundant_members = bool(
                _bool(body, "include_redundant_members", path))
            self.unread_thread_notifications = bool(
                _bool(body, "unread_thread_notifications", path))
            tags = _strings(body, TAGS_FILTER, path)
            not_tags = _strings(body, NOT_TAGS_FILTER, path)
        self._tags = frozenset(tags) if tags is not None else None
        self._not_tags = frozenset(not_tags or ())
        self._rooms = frozenset(rooms) if rooms is not None else None
        self._not_rooms = frozenset(not_rooms or ())
        self._matches_all = (self._types is None and self._not_types is None
                             and self._senders is None and not self._not_senders
                             and self._rooms is None and not self._not_rooms
                             and self.contains_url is None
                             and self._tags is None and not self._not_tags)

    @property
    def matches_all(self) -> bool:
        """True when the filter lets every event through (callers may skip it)."""
        return self._matches_all

    def allows_type(self, event_type: str) -> bool:
        if self._not_types is not None and self._not_types.matches(event_type):
            return False
        return self._types is None or self._types.matches(event_type)

    def allows_sender(self, sender: str | None) -> bool:
        if sender is None:
            return True
        if sender in self._not_senders:
            return False
        return self._senders is None or sender in self._senders

    def allows_room(self, room_id: str | None) -> bool:
        if room_id is None:
            return True
        if room_id in self._not_rooms:
            return False
        return self._rooms is None or room_id in self._rooms

    def allows_tags(self, content: dict[str, Any] | None) -> bool:
        """The message tags check (``content`` None: not considered)."""
        if content is None or (self._tags is None and not self._not_tags):
            return True
        carried = content.get(TAGS_FIELD)
        if not isinstance(carried, list):
            carried = []
        try:
            return self._passes_tags(carried)
        except TypeError:  # an unhashable item (an event from another server)
            return self._passes_tags(tags_of(content))

    def _passes_tags(self, carried: list[Any]) -> bool:
        if self._not_tags and not self._not_tags.isdisjoint(carried):
            return False
        return self._tags is None or not self._tags.isdisjoint(carried)

    def allows(self, event_type: str, sender: str | None = None, contains_url: bool = False,
               room_id: str | None = None, content: dict[str, Any] | None = None) -> bool:
        """Whether an event with these properties passes (None: not considered)."""
        if self._matches_all:
            return True
        if self.contains_url is not None and self.contains_url != contains_url:
            return False
        return (self.allows_type(event_type) and self.allows_sender(sender)
                and self.allows_room(room_id) and self.allows_tags(content))

    def allows_event(self, event: dict[str, Any]) -> bool:
        """Whether a client- or federation-format event dict passes."""
        content = event.get("content")
        has_url = isinstance(content, dict) and isinstance(content.get("url"), str)
        return self.allows(str(event.get("type", "")), event.get("sender"), has_url,
                           event.get("room_id"), content if isinstance(content, dict) else None)

    def limit_or(self, default: int, maximum: int = DEFAULT_MAX_LIMIT) -> int:
        """The filter's limit (or ``default``), at most ``maximum``."""
        return min(self.limit if self.limit is not None else default, maximum)


def _canonical(body: dict[str, Any]) -> str:
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


class Filter:
    """The spec's Filter (what /sync and /user/{userId}/filter take), parsed and compiled."""

    __slots__ = ("event_fields", "event_format", "presence", "account_data", "_rooms",
                 "_not_rooms", "include_leave", "ephemeral", "state", "timeline",
                 "room_account_data", "_field_paths", "source", "key")

    def __init__(self, body: dict[str, Any] | None = None) -> None:
        body = _object(body if body is not None else {}, "")
        self.source = body
        #: The definition in canonical form: filters with the same key pass the same events.
        self.key = _canonical(body)
        fields = _strings(body, "event_fields", "")
        self.event_fields: list[str] | None = fields
        self._field_paths = tuple(split_property_path(f) for f in fields) if fields else ()
        event_format = body.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise MalformedContent("'event_format' must be 'client' or 'federation'")
        self.event_format: str = event_format
        self.presence = EventFilter(body.get("presence"), path="presence")
        self.account_data = EventFilter(body.get("account_data"), path="account_data")
        room = _object(body.get("room") if body.get("room") is not None else {}, "room")
        rooms = _strings(room, "rooms", "room", "!")
        self._rooms = frozenset(rooms) if rooms is not None else None
        self._not_rooms = frozenset(_strings(room, "not_rooms", "room", "!") or ())
        self.include_leave = bool(_bool(room, "include_leave", "room"))
        self.ephemeral = EventFilter(room.get("ephemeral"), path="room.ephemeral",
                                     room_event=True)
        self.state = EventFilter(room.get("state"), path="room.state", room_event=True)
        self.timeline = EventFilter(room.get("timeline"), path="room.timeline", room_event=True)
        self.room_account_data = EventFilter(room.get("account_data"),
                                             path="room.account_data", room_event=True)

    @classmethod
    def from_json(cls, body: Any) -> Filter:
        """Parse and validate a filter definition; 400 ``M_BAD_JSON`` when it is malformed."""
        return cls(_object(body, ""))

    # -- rooms -------------------------------------------------------------------------------
    def allows_room(self, room_id: str) -> bool:
        """The top-level ``room.rooms`` / ``room.not_rooms`` check (applied before the rest)."""
        if room_id in self._not_rooms:
            return False
        return self._rooms is None or room_id in self._rooms

    @property
    def lazy_load_members(self) -> bool:
        """``room.state.lazy_load_members`` (the /sync switch for lazy-loading members)."""
        return self.state.lazy_load_members

    @property
    def include_redundant_members(self) -> bool:
        return self.state.include_redundant_members

    @property
    def unread_thread_notifications(self) -> bool:
        return self.timeline.unread_thread_notifications

    def timeline_limit(self, default: int, maximum: int = DEFAULT_MAX_LIMIT) -> int:
        """``room.timeline.limit`` or ``default``, at most ``maximum``."""
        return self.timeline.limit_or(default, maximum)

    # -- per-event checks --------------------------------------------------------------------
    def allows_timeline_event(self, event_type: str, sender: str | None,
                              contains_url: bool = False, room_id: str | None = None,
                              content: dict[str, Any] | None = None) -> bool:
        return self.timeline.allows(event_type, sender, contains_url, room_id, content)

    def allows_state_event(self, event_type: str, sender: str | None,
                           contains_url: bool = False, room_id: str | None = None) -> bool:
        return self.state.allows(event_type, sender, contains_url, room_id)

    def allows_ephemeral(self, event_type: str, room_id: str | None = None) -> bool:
        return self.ephemeral.allows(event_type, None, False, room_id)

    def allows_room_account_data(self, data_type: str, room_id: str | None = None) -> bool:
        return self.room_account_data.allows(data_type, None, False, room_id)

    def allows_account_data(self, data_type: str) -> bool:
        """Global account data (top-level ``account_data``)."""
        return self.account_data.allows(data_type)

    def allows_presence(self, event_type: str = "m.presence", sender: str | None = None) -> bool:
        return self.presence.allows(event_type, sender)

    # -- output ------------------------------------------------------------------------------
    def apply_event_fields(self, event: dict[str, Any]) -> dict[str, Any]:
        """Only the ``event_fields`` of a client-format event (the event itself when the list is
        absent or empty).  The result shares unchanged sub-objects with ``event``."""
        if not self._field_paths:
            return event
        result: dict[str, Any] = {}
        for path in self._field_paths:
            value: Any = event
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                target = result
                for key in path[:-1]:
                    target = target.setdefault(key, {})
                target[path[-1]] = value
        return result


DEFAULT_FILTER = Filter()


def _inline_json(filter_param: str) -> Any:
    try:
        return loads_strict(filter_param)
    except ValueError as e:
        raise InvalidInput(f"'filter' is not valid JSON: {e}") from e


async def resolve_filter(filters: FilterStore, user_id: str, filter_param: str | None
                         ) -> Filter:
    """/sync's ``filter`` argument: inline JSON (starts with '{') or an id the user uploaded."""
    if filter_param is None or filter_param == "":
        return DEFAULT_FILTER
    if filter_param.lstrip().startswith("{"):
        return Filter.from_json(_inline_json(filter_param))
    if not FILTER_ID.fullmatch(filter_param):
        raise InvalidInput(f"'filter' must be a filter id or a JSON object: {filter_param!r}")
    stored = await filters.get_filter(user_id, int(filter_param))
    if stored is None:
        raise InvalidInput(f"Unknown filter {filter_param}")
    return Filter.from_json(stored)


def parse_room_event_filter(filter_param: str | None) -> EventFilter:
    """/messages' (and /context's) ``filter`` argument: an inline RoomEventFilter."""
    if not filter_param:
        return EventFilter(room_event=True)
    return EventFilter(_object(_inline_json(filter_param), "filter"), room_event=True)


#: Parsed /sync filters kept (inline definitions and stored ones, each).
FILTER_CACHE_SIZE = 4096


class CachedFilters:
    """:func:`resolve_filter` with the parsed filters kept: a client sends the same filter
    with every /sync (an ID it uploaded, or the same inline JSON), and parsing it costs more
    than the rest of answering a woken long-poll; a stored one would be a database read each
    time.  Stored filters never change (the API has no way to), so a kept one is never stale;
    what fails to parse is not kept."""

    def __init__(self, filters: FilterStore, size: int = FILTER_CACHE_SIZE) -> None:
        from cachetools import LRUCache

        self.filters = filters
        self._inline: LRUCache[str, Filter] = LRUCache(maxsize=size)
        self._stored: LRUCache[tuple[str, str], Filter] = LRUCache(maxsize=size)

    async def __call__(self, user_id: str, filter_param: str | None) -> Filter:
        if filter_param is None or filter_param == "":
            return DEFAULT_FILTER
        inline = filter_param.lstrip().startswith("{")
        kept = self._inline.get(filter_param) if inline else \
            self._stored.get((user_id, filter_param))
        if kept is None:
            kept = await resolve_filter(self.filters, user_id, filter_param)
            if inline:
                self._inline[filter_param] = kept
            else:
                self._stored[(user_id, filter_param)] = kept
        return kept
