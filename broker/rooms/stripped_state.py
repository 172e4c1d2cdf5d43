"""Stripped state: the few state events that describe a room to someone not in it yet (an
invitee), reduced to type, state key, content and sender."""

from __future__ import annotations

from typing import Any

from broker.rooms.live_room import LiveRoom
from protocol.events import Event

STRIPPED_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
                  "m.room.canonical_alias", "m.room.encryption", "m.room.topic")


def stripped(event: Event) -> dict[str, Any]:
    return {"type": event.type, "state_key": event.state_key, "content": event.content,
            "sender": event.sender}


def stripped_state(room: LiveRoom) -> list[dict[str, Any]]:
    return [stripped(event) for event_type in STRIPPED_TYPES
            if (event := room.state.get((event_type, ""))) is not None]
