"""The redaction algorithm: strip an event down to the keys that survive redaction.

Used both for redacting events and for computing signatures and reference hashes,
which cover only the redacted form of an event.
"""

from __future__ import annotations

from typing import Any

from protocol.room_versions import RoomVersion

__all__ = ["prune_event_dict"]

_TOP_LEVEL_V10 = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    }
)

# Room version 11 no longer protects origin, membership and prev_state.
_TOP_LEVEL_V11 = _TOP_LEVEL_V10 - {"origin", "membership", "prev_state"}

_CONTENT_V10: dict[str, frozenset[str]] = {
    "m.room.member": frozenset({"membership", "join_authorised_via_users_server"}),
    "m.room.create": frozenset({"creator"}),
    "m.room.join_rules": frozenset({"join_rule", "allow"}),
    "m.room.power_levels": frozenset(
        {
            "ban",
            "events",
            "events_default",
            "kick",
            "redact",
            "state_default",
            "users",
            "users_default",
        }
    ),
    "m.room.history_visibility": frozenset({"history_visibility"}),
}

_CONTENT_V11: dict[str, frozenset[str]] = {
    "m.room.member": frozenset({"membership", "join_authorised_via_users_server"}),
    "m.room.join_rules": frozenset({"join_rule", "allow"}),
    "m.room.power_levels": frozenset(
        {
            "ban",
            "events",
            "events_default",
            "invite",
            "kick",
            "redact",
            "state_default",
            "users",
            "users_default",
        }
    ),
    "m.room.history_visibility": frozenset({"history_visibility"}),
    "m.room.redaction": frozenset({"redacts"}),
}


def prune_event_dict(room_version: RoomVersion, pdu: dict[str, Any]) -> dict[str, Any]:
    """Return the redacted form of ``pdu`` for ``room_version``.

    The input is not modified. The result is a new top-level dict with a new
    ``content`` dict; nested values that survive redaction are shared with the input,
    so treat the result as read-only or copy it before mutating nested values.
    """
    if room_version.v11_redaction_rules:
        top_keys = _TOP_LEVEL_V11
        content_rules = _CONTENT_V11
    else:
        top_keys = _TOP_LEVEL_V10
        content_rules = _CONTENT_V10

    pruned = {key: value for key, value in pdu.items() if key in top_keys}
    event_type = pdu.get("type")
    content = pdu.get("content")
    if not isinstance(content, dict):
        content = {}

    new_content: dict[str, Any]
    if room_version.v11_redaction_rules and event_type == "m.room.create":
        # v11+: the create event keeps its whole content.
        new_content = dict(content)
    else:
        allowed = content_rules.get(event_type) if isinstance(event_type, str) else None
        new_content = (
            {key: value for key, value in content.items() if key in allowed} if allowed else {}
        )
        if room_version.v11_redaction_rules and event_type == "m.room.member":
            # v11+: third_party_invite survives but keeps only its "signed" key.
            tpi = content.get("third_party_invite")
            if isinstance(tpi, dict) and "signed" in tpi:
                new_content["third_party_invite"] = {"signed": tpi["signed"]}

    pruned["content"] = new_content
    return pruned
