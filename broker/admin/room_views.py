"""What the admin API shows of a room: metadata only (names, aliases, settings, member counts,
who created it and whether it is blocked), never a message.

A room belongs to its creator's organisation (``organisation``; None when the creator belongs
to none here or is on another server), which decides whose grants cover it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.rooms.live_room import LiveRoom
from storage.room_admin import Block, RoomRow

# The state (state key '') a room list entry reads without loading the room.
LIST_TYPES = ("m.room.name", "m.room.canonical_alias")
LOCAL_MEMBERSHIPS = ("join", "invite", "knock")


def _text(content: dict[str, Any] | None, key: str) -> str | None:
    value = (content or {}).get(key)
    return value if isinstance(value, str) else None


def list_item(row: RoomRow, joined: int, state: dict[str, dict[str, Any]], blocked: bool
              ) -> dict[str, Any]:
    """A room in the list: read from its summary (current state), not the live room."""
    return {"room_id": row.room_id, "name": _text(state.get("m.room.name"), "name"),
            "canonical_alias": _text(state.get("m.room.canonical_alias"), "alias"),
            "creator": row.creator, "organisation": row.organisation,
            "room_version": row.room_version, "created_ts": row.created_ts,
            "joined_members": joined, "public": row.is_public, "blocked": blocked}


def matches(item: dict[str, Any], aliases: list[str], q: str) -> bool:
    """``q`` (any case) is part of the room ID, its name, canonical alias or a local alias."""
    if not q:
        return True
    term = q.lower()
    texts = [item["room_id"], item["name"], item["canonical_alias"], *aliases]
    return any(term in text.lower() for text in texts if text)


def block_json(block: Block | None) -> dict[str, Any] | None:
    if block is None:
        return None
    return {"blocked_by": block.blocked_by, "blocked_ts": block.blocked_ts,
            "reason": block.reason}


def local_members(room: LiveRoom, is_mine: Callable[[str], bool]) -> list[str]:
    """The room's local members (joined, invited or knocking), in user ID order."""
    return sorted(u for u in room.members_with(*LOCAL_MEMBERSHIPS) if is_mine(u))


def details(row: RoomRow, room: LiveRoom, block: Block | None, aliases: list[str],
            is_mine: Callable[[str], bool]) -> dict[str, Any]:
    """One room in full: its settings, counts and local members, from the live room."""
    encryption = room.state_content("m.room.encryption")
    return {
        "room_id": row.room_id,
        "name": _text(room.state_content("m.room.name"), "name"),
        "topic": _text(room.state_content("m.room.topic"), "topic"),
        "canonical_alias": _text(room.state_content("m.room.canonical_alias"), "alias"),
        "aliases": aliases,
        "creator": row.creator,
        "organisation": row.organisation,
        "room_version": row.room_version,
        "created_ts": row.created_ts,
        "join_rule": _text(room.state_content("m.room.join_rules"), "join_rule") or "invite",
        "encryption": _text(encryption, "algorithm"),
        "joined_members": len(room.members_with("join")),
        "invited_members": len(room.members_with("invite")),
        "local_members": [{"user_id": u, "membership": room.membership_of(u)}
                          for u in local_members(room, is_mine)],
        "public": row.is_public,
        "blocked": block_json(block),
    }
