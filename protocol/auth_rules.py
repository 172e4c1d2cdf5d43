"""The authorization rules of room versions 10, 11 and 12.

``check_auth`` implements the state-dependent rules against a set of auth state (the
event's auth events, the state before it, or the current state).
``check_auth_events_selection`` implements the state-independent checks on an
event's own ``auth_events`` list. Both raise ``AuthError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import decode_b64, encode_canonical_json
from protocol.errors import AuthError
from protocol.events import Event
from protocol.identifiers import is_user_id
from protocol.power_levels import (
    get_named_level,
    get_required_level,
    get_room_creators,
    get_user_power_level,
    is_power_level_int,
)
from protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from protocol.signing import server_name_of

__all__ = [
    "AuthError",
    "StateKey",
    "auth_types_for_event",
    "check_auth",
    "check_auth_events_selection",
    "check_redaction_applies",
    "get_named_level",
    "get_required_level",
    "get_user_power_level",
]

StateKey = tuple[str, str]

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
THIRD_PARTY_INVITE = "m.room.third_party_invite"

_LEVEL_KEYS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)


def _domain(user_id: str) -> str:
    try:
        return server_name_of(user_id)
    except ValueError as exc:
        raise AuthError(f"invalid user ID {user_id!r}") from exc


def auth_types_for_event(
    room_version: RoomVersion,
    type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> list[StateKey]:
    """The (type, state_key) pairs an event's auth_events should reference.

    Per the spec's "auth events selection"; room v12 never selects the create event.
    Knocks also select the join rules, which their auth rule needs.
    """
    if type == CREATE:
        return []
    wanted: list[StateKey] = []
    if room_version.create_event_in_auth_events:
        wanted.append((CREATE, ""))
    wanted.append((POWER_LEVELS, ""))
    wanted.append((MEMBER, sender))
    if type == MEMBER:
        membership = content.get("membership")
        if state_key is not None:
            wanted.append((MEMBER, state_key))
        if membership in ("join", "invite", "knock"):
            wanted.append((JOIN_RULES, ""))
        if membership == "invite":
            tpi = content.get("third_party_invite")
            signed = tpi.get("signed") if isinstance(tpi, dict) else None
            token = signed.get("token") if isinstance(signed, dict) else None
            if isinstance(token, str):
                wanted.append((THIRD_PARTY_INVITE, token))
        authoriser = content.get("join_authorised_via_users_server")
        if room_version.restricted_join_rule and isinstance(authoriser, str):
            wanted.append((MEMBER, authoriser))
    return list(dict.fromkeys(wanted))


def check_auth_events_selection(
    room_version: RoomVersion, event: Event, auth_events: Iterable[Event]
) -> None:
    """State-independent checks of the events an event lists in its auth_events.

    Rejects duplicates, entries the selection algorithm would not pick, rejected
    entries, entries from another room, a missing (v10/v11) or present (v12) create
    event, and non-state entries. ``auth_events`` are the events of ``event.auth_event_ids``.
    """
    if event.type == CREATE:
        if event.auth_event_ids:
            raise AuthError("create event must not have auth_events")
        return
    expected = set(
        auth_types_for_event(room_version, event.type, event.sender, event.state_key, event.content)
    )
    seen: set[StateKey] = set()
    for auth_event in auth_events:
        if not auth_event.is_state():
            raise AuthError(f"auth event {auth_event.event_id} is not a state event")
        key = (auth_event.type, auth_event.state_key or "")
        if key in seen:
            raise AuthError(f"duplicate auth event for {key}")
        seen.add(key)
        if key not in expected:
            raise AuthError(f"unexpected auth event for {key}")
        if auth_event.rejected_reason is not None:
            raise AuthError(f"auth event {auth_event.event_id} was rejected")
        if auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {auth_event.event_id} is from another room")
    if room_version.create_event_in_auth_events and (CREATE, "") not in seen:
        raise AuthError("no m.room.create event among auth_events")


def _check_create(room_version: RoomVersion, event: Event) -> None:
    if event.prev_event_ids:
        raise AuthError("create event has prev_events")
    if room_version.room_id_is_create_event_hash:
        if "room_id" in event.pdu:
            raise AuthError("create event must not have a room_id in this room version")
    else:
        room_id = event.pdu.get("room_id")
        if not isinstance(room_id, str) or room_id.partition(":")[2] != _domain(event.sender):
            raise AuthError("create event room_id domain does not match sender")
    content = event.content
    if "room_version" in content and content["room_version"] not in KNOWN_ROOM_VERSIONS:
        raise AuthError(f"unknown room version {content['room_version']!r}")
    if not room_version.implicit_room_creator and "creator" not in content:
        raise AuthError("create event has no creator")
    if room_version.privileged_creators and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(is_user_id(u) for u in extra):
            raise AuthError("additional_creators must be a list of valid user IDs")


def check_auth(
    room_version: RoomVersion,
    event: Event,
    auth_events: Mapping[StateKey, Event],
    create_event: Event,
) -> None:
    """Apply the authorization rules to ``event`` given the auth state ``auth_events``.

    ``auth_events`` maps (type, state_key) to state events (the event's auth events or a
    room state); ``create_event`` is the room's create event. Raises ``AuthError``.
    Signatures must already have been verified cryptographically by the caller.
    """
    if event.type == CREATE:
        _check_create(room_version, event)
        return
    _check_room_and_origin(event, create_event)
    if event.type == MEMBER:
        _check_membership(room_version, event, auth_events, create_event)
        return
    _check_other_event(room_version, event, auth_events, create_event)


def _check_room_and_origin(event: Event, create_event: Event) -> None:
    """Every event but the create event: it belongs to the room, its sender's server signed it
    (a third-party invite is signed by the inviting server), and the room federates with it."""
    # The event must belong to the room created by create_event.
    if event.room_id != create_event.room_id:
        raise AuthError("event room_id does not match the room's create event")
    if create_event.rejected_reason is not None:
        raise AuthError("room create event was rejected")

    sender_domain = _domain(event.sender)
    is_3pid_invite = (
        event.type == MEMBER
        and event.membership == "invite"
        and "third_party_invite" in event.content
    )
    if not is_3pid_invite and sender_domain not in event.signatures:
        raise AuthError(f"event not signed by sender's server {sender_domain}")

    if create_event.content.get("m.federate", True) is False and sender_domain != _domain(
        create_event.sender
    ):
        raise AuthError("room does not allow federation")


def _check_other_event(
    room_version: RoomVersion,
    event: Event,
    auth_events: Mapping[StateKey, Event],
    create_event: Event,
) -> None:
    """Any event but create and member: the sender is joined and has the power to send it."""
    if _membership_of(auth_events, event.sender) != "join":
        raise AuthError(f"sender {event.sender} is not in the room")

    pl_event = auth_events.get((POWER_LEVELS, ""))
    pl_content = pl_event.content if pl_event is not None else None
    sender_level = get_user_power_level(event.sender, pl_event, create_event, room_version)

    if event.type == THIRD_PARTY_INVITE:
        if sender_level < get_named_level(pl_content, "invite", 0):
            raise AuthError("sender lacks power to invite")
        return

    required = get_required_level(event.type, event.is_state(), pl_content)
    if required > sender_level:
        raise AuthError(f"sender needs power level {required} to send {event.type}")

    state_key = event.state_key
    if state_key is not None and state_key.startswith("@") and state_key != event.sender:
        raise AuthError("state_key starting with @ must be the sender")

    if event.type == POWER_LEVELS:
        _check_power_levels(room_version, event, pl_event, sender_level, create_event)


def _membership_of(auth_events: Mapping[StateKey, Event], user_id: str) -> str:
    member = auth_events.get((MEMBER, user_id))
    if member is None:
        return "leave"
    membership = member.content.get("membership")
    return membership if isinstance(membership, str) else "leave"


@dataclass(frozen=True)
class _Membership:
    """What the membership rules look at: the event, its sender and target, and the room's
    join rule and power levels in the auth state."""

    room_version: RoomVersion
    event: Event
    auth_events: Mapping[StateKey, Event]
    create_event: Event
    sender: str
    target: str
    authoriser: Any  # content.join_authorised_via_users_server, unchecked
    sender_membership: str
    target_membership: str
    join_rule: Any
    pl_event: Event | None
    pl_content: Mapping[str, Any] | None
    sender_level: int | float
    target_level: int | float
    invite_level: int | float

    def named_level(self, name: str, default: int) -> int | float:
        return get_named_level(self.pl_content, name, default)


def _check_membership(
    room_version: RoomVersion,
    event: Event,
    auth_events: Mapping[StateKey, Event],
    create_event: Event,
) -> None:
    target = event.state_key
    membership = event.content.get("membership")
    if target is None or not isinstance(membership, str):
        raise AuthError("member event needs a state_key and content.membership")

    authoriser = event.content.get("join_authorised_via_users_server")
    if room_version.restricted_join_rule and authoriser is not None:
        if not isinstance(authoriser, str) or not is_user_id(authoriser):
            raise AuthError("join_authorised_via_users_server is not a user ID")
        if _domain(authoriser) not in event.signatures:
            raise AuthError("join not signed by the authorising user's server")

    sender = event.sender
    jr_event = auth_events.get((JOIN_RULES, ""))
    pl_event = auth_events.get((POWER_LEVELS, ""))
    pl_content = pl_event.content if pl_event is not None else None
    m = _Membership(
        room_version, event, auth_events, create_event, sender, target, authoriser,
        sender_membership=_membership_of(auth_events, sender),
        target_membership=_membership_of(auth_events, target),
        join_rule=jr_event.content.get("join_rule", "invite") if jr_event is not None
        else "invite",
        pl_event=pl_event,
        pl_content=pl_content,
        sender_level=get_user_power_level(sender, pl_event, create_event, room_version),
        target_level=get_user_power_level(target, pl_event, create_event, room_version),
        invite_level=get_named_level(pl_content, "invite", 0),
    )
    check = _MEMBERSHIP_CHECKS.get(membership)
    if check is None or (membership == "knock" and not room_version.knock_join_rule):
        raise AuthError(f"unknown membership {membership!r}")
    check(m)


def _check_join(m: _Membership) -> None:
    room_version, create_event, target = m.room_version, m.create_event, m.target
    original_creator = (
        create_event.sender
        if room_version.implicit_room_creator
        else create_event.content.get("creator")
    )
    if m.event.prev_event_ids == [create_event.event_id] and target == original_creator:
        return
    if m.sender != target:
        raise AuthError("cannot join on behalf of another user")
    if m.target_membership == "ban":
        raise AuthError("user is banned")
    knock_rules = ("knock",) if room_version.knock_join_rule else ()
    restricted_rules: tuple[str, ...] = ()
    if room_version.restricted_join_rule:
        restricted_rules += ("restricted",)
    if room_version.knock_restricted_join_rule:
        restricted_rules += ("knock_restricted",)
    if m.join_rule == "invite" or m.join_rule in knock_rules:
        if m.target_membership in ("invite", "join"):
            return
        raise AuthError("room is invite-only and user is not invited")
    if m.join_rule in restricted_rules:
        _check_restricted_join(m)
        return
    if m.join_rule == "public":
        return
    raise AuthError(f"cannot join a room with join rule {m.join_rule!r}")


def _check_restricted_join(m: _Membership) -> None:
    if m.target_membership in ("invite", "join"):
        return
    authoriser = m.authoriser
    if not isinstance(authoriser, str):
        raise AuthError("restricted join without join_authorised_via_users_server")
    if _membership_of(m.auth_events, authoriser) != "join":
        raise AuthError("authorising user is not in the room")
    authoriser_level = get_user_power_level(
        authoriser, m.pl_event, m.create_event, m.room_version
    )
    if authoriser_level < m.invite_level:
        raise AuthError("authorising user lacks power to invite")


def _check_invite(m: _Membership) -> None:
    if "third_party_invite" in m.event.content:
        _check_third_party_invite(m.event, m.auth_events, m.target_membership)
        return
    if m.sender_membership != "join":
        raise AuthError("inviter is not in the room")
    if m.target_membership in ("join", "ban"):
        raise AuthError(f"cannot invite a user whose membership is {m.target_membership}")
    if m.sender_level >= m.invite_level:
        return
    raise AuthError("sender lacks power to invite")


def _check_leave(m: _Membership) -> None:
    if m.sender == m.target:
        allowed = (
            ("invite", "join", "knock") if m.room_version.knock_join_rule
            else ("invite", "join")
        )
        if m.target_membership in allowed:
            return
        raise AuthError(f"cannot leave from membership {m.target_membership}")
    if m.sender_membership != "join":
        raise AuthError("sender is not in the room")
    if m.target_membership == "ban" and m.sender_level < m.named_level("ban", 50):
        raise AuthError("sender lacks power to unban")
    if m.sender_level >= m.named_level("kick", 50) and m.target_level < m.sender_level:
        return
    raise AuthError("sender lacks power to kick this user")


def _check_ban(m: _Membership) -> None:
    if m.sender_membership != "join":
        raise AuthError("sender is not in the room")
    if m.sender_level >= m.named_level("ban", 50) and m.target_level < m.sender_level:
        return
    raise AuthError("sender lacks power to ban this user")


def _check_knock(m: _Membership) -> None:
    knockable = ["knock"]
    if m.room_version.knock_restricted_join_rule:
        knockable.append("knock_restricted")
    if m.join_rule not in knockable:
        raise AuthError("room does not allow knocking")
    if m.sender != m.target:
        raise AuthError("cannot knock on behalf of another user")
    if m.sender_membership not in ("ban", "invite", "join"):
        return
    raise AuthError(f"cannot knock from membership {m.sender_membership}")


_MEMBERSHIP_CHECKS: dict[str, Callable[[_Membership], None]] = {
    "join": _check_join,
    "invite": _check_invite,
    "leave": _check_leave,
    "ban": _check_ban,
    "knock": _check_knock,
}

def _check_third_party_invite(
    event: Event, auth_events: Mapping[StateKey, Event], target_membership: str
) -> None:
    if target_membership == "ban":
        raise AuthError("invited user is banned")
    tpi = event.content.get("third_party_invite")
    signed = tpi.get("signed") if isinstance(tpi, dict) else None
    if not isinstance(signed, dict):
        raise AuthError("third_party_invite has no signed object")
    mxid, token = signed.get("mxid"), signed.get("token")
    if not isinstance(mxid, str) or not isinstance(token, str):
        raise AuthError("third_party_invite.signed needs mxid and token")
    if mxid != event.state_key:
        raise AuthError("third_party_invite mxid does not match state_key")
    invite_event = auth_events.get((THIRD_PARTY_INVITE, token))
    if invite_event is None:
        raise AuthError("no matching m.room.third_party_invite event")
    if invite_event.sender != event.sender:
        raise AuthError("sender does not match the third party invite's sender")

    public_keys: list[str] = []
    content = invite_event.content
    if isinstance(content.get("public_key"), str):
        public_keys.append(content["public_key"])
    for entry in content.get("public_keys") or []:
        if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
            public_keys.append(entry["public_key"])

    message = encode_canonical_json(
        {k: v for k, v in signed.items() if k not in ("signatures", "unsigned")}
    )
    signatures = signed.get("signatures")
    if isinstance(signatures, dict):
        for server_sigs in signatures.values():
            if not isinstance(server_sigs, dict):
                continue
            for signature_b64 in server_sigs.values():
                for key_b64 in public_keys:
                    try:
                        key = nacl.signing.VerifyKey(decode_b64(key_b64))
                        key.verify(message, decode_b64(signature_b64))
                    except (ValueError, TypeError, nacl.exceptions.CryptoError):
                        continue
                    return
    raise AuthError("no valid signature on the third party invite")


def _check_power_levels(
    room_version: RoomVersion,
    event: Event,
    current: Event | None,
    sender_level: int | float,
    create_event: Event,
) -> None:
    new = event.content
    _check_power_levels_shape(room_version, new, create_event)
    if current is None:
        return
    old = current.content
    for name in _LEVEL_KEYS:
        old_value, new_value = old.get(name), new.get(name)
        if old_value == new_value and (name in old) == (name in new):
            continue
        if _level_above(old_value, sender_level) or _level_above(new_value, sender_level):
            raise AuthError(f"sender cannot change {name!r} beyond their own level")
    for name in ("events", "notifications"):
        _check_level_map_changes(name, _mapping(old, name), _mapping(new, name), sender_level)
    _check_user_level_changes(event.sender, _mapping(old, "users"), _mapping(new, "users"),
                              sender_level)


def _check_power_levels_shape(
    room_version: RoomVersion, new: Mapping[str, Any], create_event: Event
) -> None:
    """The new content alone: integer levels, user IDs as keys, no creator listed."""
    for name in _LEVEL_KEYS:
        if name in new and not is_power_level_int(new[name]):
            raise AuthError(f"power level {name!r} must be an integer")
    for name in ("events", "notifications"):
        if name in new:
            mapping = new[name]
            if not isinstance(mapping, dict) or not all(
                is_power_level_int(v) for v in mapping.values()
            ):
                raise AuthError(f"power levels {name!r} must map to integers")
    if "users" in new:
        users = new["users"]
        if not isinstance(users, dict) or not all(
            is_user_id(u) and is_power_level_int(v) for u, v in users.items()
        ):
            raise AuthError("power levels 'users' must map user IDs to integers")
        if room_version.privileged_creators:
            creators = get_room_creators(create_event, room_version)
            if any(u in creators for u in users):
                raise AuthError("room creators cannot be listed in power levels users")


def _mapping(content: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = content.get(name)
    return value if isinstance(value, dict) else {}


def _check_level_map_changes(name: str, old_map: dict[str, Any], new_map: dict[str, Any],
                             sender_level: int | float) -> None:
    """``events`` or ``notifications``: no entry changed from or to above the sender's level."""
    for key in set(old_map) | set(new_map):
        in_old, in_new = key in old_map, key in new_map
        if in_old and in_new and old_map[key] == new_map[key]:
            continue
        if in_old and _level_above(old_map[key], sender_level):
            raise AuthError(f"sender cannot change {name}.{key} from above their level")
        if in_new and _level_above(new_map[key], sender_level):
            raise AuthError(f"sender cannot set {name}.{key} above their level")


def _check_user_level_changes(sender: str, old_users: dict[str, Any],
                              new_users: dict[str, Any], sender_level: int | float) -> None:
    """``users``: no other user's level changed from at or above the sender's, and none set
    above it."""
    for user in set(old_users) | set(new_users):
        in_old, in_new = user in old_users, user in new_users
        if in_old and in_new and old_users[user] == new_users[user]:
            continue
        if in_old and user != sender:
            old_value = old_users[user]
            if is_power_level_int(old_value) and old_value >= sender_level:
                raise AuthError(f"sender cannot change the level of {user}")
        if in_new and _level_above(new_users[user], sender_level):
            raise AuthError(f"sender cannot grant {user} a level above their own")


def _level_above(value: Any, sender_level: int | float) -> bool:
    return is_power_level_int(value) and value > sender_level


def check_redaction_applies(
    room_version: RoomVersion,
    redaction: Event,
    redacted: Event,
    power_levels_event: Event | None,
    create_event: Event,
) -> bool:
    """Whether a (valid) redaction should be applied to ``redacted``.

    Room v3+ "handling redactions": the redaction sender's power level is at least the
    redact level, or the redaction's sender domain matches the original sender's.
    """
    if redaction.redacts != redacted.event_id or redaction.room_id != redacted.room_id:
        return False
    pl_content = power_levels_event.content if power_levels_event is not None else None
    level = get_user_power_level(redaction.sender, power_levels_event, create_event, room_version)
    if level >= get_named_level(pl_content, "redact", 50):
        return True
    return _domain(redaction.sender) == _domain(redacted.sender)
