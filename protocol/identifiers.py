"""The Matrix identifier grammar (spec appendices, "Identifier Grammar"), as predicates.

Every identifier is at most 255 bytes of UTF-8 and ends in a valid server name where it has
one.  Patterns are matched whole (``fullmatch``): a trailing newline is not part of any
identifier.

- user ID ``@localpart:server``: localparts of new accounts use ``a-z 0-9 . _ = - / +``;
  existing (historical) ones from other servers any printable ASCII except ``:``;
- room alias ``#localpart:server``: the localpart has no ``:``, ``#``, whitespace or control
  characters;
- room ID ``!opaque`` or ``!opaque:server`` (room version 12 IDs have no server), event ID
  ``$opaque``: printable ASCII.
"""

from __future__ import annotations

import re
from typing import Any

from protocol.discovery import is_valid_server_name

__all__ = ["MAX_ID_BYTES", "is_new_localpart", "is_user_id", "is_room_alias",
           "is_room_alias_localpart", "is_room_id", "is_event_id", "is_valid_server_name",
           "within_id_limit"]

MAX_ID_BYTES = 255

_NEW_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")
_HISTORICAL_LOCALPART = re.compile(r"[!-9;-~]+")
_ALIAS_LOCALPART = re.compile(r"[^\s:#\x00-\x1f\x7f]+")
_OPAQUE = re.compile(r"[!-9;-~]+")
_EVENT_OPAQUE = re.compile(r"[!-~]+")


def within_id_limit(value: str) -> bool:
    """Whether ``value`` fits the spec's 255-byte limit (identifiers, event types, state keys)."""
    return len(value.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES


def _sigil_local_server(value: Any, sigil: str) -> tuple[str, str] | None:
    if not isinstance(value, str) or not value.startswith(sigil) or not within_id_limit(value):
        return None
    localpart, sep, server = value[1:].partition(":")
    if not sep or not is_valid_server_name(server):
        return None
    return localpart, server


def is_new_localpart(localpart: str) -> bool:
    """Whether a new account may have ``localpart``."""
    return _NEW_LOCALPART.fullmatch(localpart) is not None


def is_user_id(value: Any) -> bool:
    """``@localpart:server``, with a historical localpart allowed (users of other servers)."""
    parts = _sigil_local_server(value, "@")
    return parts is not None and _HISTORICAL_LOCALPART.fullmatch(parts[0]) is not None


def is_room_alias_localpart(localpart: str) -> bool:
    return _ALIAS_LOCALPART.fullmatch(localpart) is not None


def is_room_alias(value: Any) -> bool:
    """``#localpart:server``."""
    parts = _sigil_local_server(value, "#")
    return parts is not None and is_room_alias_localpart(parts[0])


def is_room_id(value: Any) -> bool:
    """``!opaque`` (room version 12) or ``!opaque:server``."""
    if not isinstance(value, str) or not value.startswith("!") or not within_id_limit(value):
        return False
    opaque, sep, server = value[1:].partition(":")
    if _OPAQUE.fullmatch(opaque) is None:
        return False
    return not sep or is_valid_server_name(server)


def is_event_id(value: Any) -> bool:
    """``$opaque`` (``$local:server`` in old room versions matches too)."""
    return (isinstance(value, str) and value.startswith("$") and within_id_limit(value)
            and _EVENT_OPAQUE.fullmatch(value[1:]) is not None)
