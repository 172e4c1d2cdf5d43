"""Room versions this node understands, expressed as explicit feature flags.

Only stable versions 10, 11 and 12 are supported. Each flag names one rule change so
callers test the behaviour they care about rather than comparing version strings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "RoomVersion",
    "RoomVersions",
    "KNOWN_ROOM_VERSIONS",
    "DEFAULT_ROOM_VERSION",
    "get_room_version",
]


@dataclass(frozen=True, slots=True)
class RoomVersion:
    """The behaviour switches of one room version."""

    identifier: str
    #: "v4": event IDs are "$" + url-safe unpadded base64 of the reference hash.
    event_id_format: Literal["v4"]
    #: State resolution algorithm: "v2" (rooms 2-11) or "v2.1" (room 12, MSC4297).
    state_res: Literal["v2", "v2.1"]
    #: Signing keys must be valid (valid_until_ts) at the event's origin_server_ts.
    enforce_key_validity: bool
    #: Integers must be within canonical range and floats are refused (v6+).
    strict_canonical_json: bool
    #: "notifications" in power levels are checked by the auth rules (v6+).
    limit_notifications_power_levels: bool
    #: The "knock" join rule and membership exist (v7+).
    knock_join_rule: bool
    #: The "restricted" join rule and join_authorised_via_users_server exist (v8+).
    restricted_join_rule: bool
    #: The "knock_restricted" join rule exists (v10+).
    knock_restricted_join_rule: bool
    #: Power level values must be integers, never strings (v10+).
    integer_only_power_levels: bool
    #: Redaction algorithm of room version 11 (MSC2176 / MSC3821 / MSC3989).
    v11_redaction_rules: bool
    #: The creator is the create event's sender; content has no "creator" (v11+).
    implicit_room_creator: bool
    #: Redactions carry "redacts" inside content rather than at top level (v11+).
    redacts_in_content: bool
    #: Room ID is "!" + the create event's reference hash; create has no room_id (v12).
    room_id_is_create_event_hash: bool
    #: Creators (sender + additional_creators) have infinite power (v12, MSC4289).
    privileged_creators: bool

    @property
    def create_event_in_auth_events(self) -> bool:
        """Whether events list the m.room.create event in their auth_events."""
        return not self.room_id_is_create_event_hash


class RoomVersions:
    """The supported room versions as attributes."""

    V10 = RoomVersion(
        identifier="10",
        event_id_format="v4",
        state_res="v2",
        enforce_key_validity=True,
        strict_canonical_json=True,
        limit_notifications_power_levels=True,
        knock_join_rule=True,
        restricted_join_rule=True,
        knock_restricted_join_rule=True,
        integer_only_power_levels=True,
        v11_redaction_rules=False,
        implicit_room_creator=False,
        redacts_in_content=False,
        room_id_is_create_event_hash=False,
        privileged_creators=False,
    )
    # Each version is the previous one plus what the spec changed in it.
    V11 = replace(
        V10,
        identifier="11",
        v11_redaction_rules=True,
        implicit_room_creator=True,
        redacts_in_content=True,
    )
    V12 = replace(
        V11,
        identifier="12",
        state_res="v2.1",
        room_id_is_create_event_hash=True,
        privileged_creators=True,
    )


KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (RoomVersions.V10, RoomVersions.V11, RoomVersions.V12)
}

DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion:
    """Look up a room version, raising ``KeyError`` for unsupported identifiers."""
    return KNOWN_ROOM_VERSIONS[identifier]
