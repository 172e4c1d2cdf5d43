"""Power level arithmetic shared by the auth rules and by the node's own checks.

Room v12 (MSC4289) gives room creators (the create event's sender plus any
``additional_creators``) an infinitely high power level, represented as ``math.inf``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from protocol.events import Event
from protocol.room_versions import RoomVersion

__all__ = [
    "CREATOR_POWER_LEVEL",
    "NAMED_LEVEL_DEFAULTS",
    "get_room_creators",
    "get_user_power_level",
    "get_required_level",
    "get_named_level",
    "is_power_level_int",
]

#: The power level of a privileged creator in room v12.
CREATOR_POWER_LEVEL = math.inf

#: Defaults for the named levels when a power levels event omits them.
NAMED_LEVEL_DEFAULTS: dict[str, int] = {
    "invite": 0,
    "kick": 50,
    "ban": 50,
    "redact": 50,
    "users_default": 0,
    "events_default": 0,
}


def is_power_level_int(value: Any) -> bool:
    """True for a JSON integer (``bool`` is not an integer here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _as_level(value: Any, default: int) -> int:
    return value if is_power_level_int(value) else default


def get_room_creators(create_event: Event, room_version: RoomVersion) -> frozenset[str]:
    """The room's creators: the create sender (or v10 ``creator``) plus v12 additional_creators."""
    if room_version.implicit_room_creator:
        creators = {create_event.sender}
    else:
        creator = create_event.content.get("creator")
        creators = {creator} if isinstance(creator, str) else set()
    if room_version.privileged_creators:
        extra = create_event.content.get("additional_creators")
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    return frozenset(creators)


def get_user_power_level(
    user_id: str,
    power_levels_event: Event | None,
    create_event: Event,
    room_version: RoomVersion,
) -> int | float:
    """A user's power level; ``math.inf`` for v12 creators.

    Without a power levels event the creator has 100 and everyone else 0.
    """
    if room_version.privileged_creators and user_id in get_room_creators(
        create_event, room_version
    ):
        return CREATOR_POWER_LEVEL
    if power_levels_event is None:
        return 100 if user_id in get_room_creators(create_event, room_version) else 0
    content = power_levels_event.content
    default = _as_level(content.get("users_default"), 0)
    users = content.get("users")
    if isinstance(users, dict) and user_id in users:
        return _as_level(users[user_id], default)
    return default


def get_required_level(
    event_type: str, state_key_is_state: bool, power_levels: Mapping[str, Any] | None
) -> int:
    """The power level needed to send ``event_type``.

    ``power_levels`` is the content of the current power levels event, or ``None`` if
    the room has none (then every event needs 0).
    """
    if power_levels is None:
        return 0
    events = power_levels.get("events")
    if isinstance(events, dict) and event_type in events:
        value = events[event_type]
        if is_power_level_int(value):
            return int(value)
    if state_key_is_state:
        return _as_level(power_levels.get("state_default"), 50)
    return _as_level(power_levels.get("events_default"), 0)


def get_named_level(power_levels: Mapping[str, Any] | None, name: str, default: int) -> int:
    """A top-level level (``invite``, ``kick``, ``ban``, ``redact``...) or ``default``."""
    if power_levels is None:
        return default
    return _as_level(power_levels.get(name), default)
