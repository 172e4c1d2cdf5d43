"""The one policy decision point: may this user create, invite, join, read a profile, search the
directory, send or give a room an alias?

Every request of those kinds passes through :class:`AccessPolicy`, whichever door it came in by
(Client-Server API, federation, and later the admin and application APIs), so a rule is added
in one place and holds on every path.  The decisions are synchronous and read only what the
caller hands over (no database round trip: sends and joins stay fast).  A refusal raises
:class:`broker.errors.Forbidden` with the reason.

Today the node allows everything the Matrix rules allow; the separation of verified and public
users, official groups and profile visibility are rules to be added here.  A deployment or a
test installs rules with :meth:`AccessPolicy.add_rule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from broker.errors import Forbidden


@dataclass(frozen=True)
class Decision:
    """What is asked.  ``action`` is one of :data:`ACTIONS`; ``target`` is the other party of
    the action (the invitee, the profile's owner, the room for a join or send)."""

    action: str
    actor: str
    target: str = ""
    room_id: str = ""
    event_type: str = ""
    origin: str = ""  # the server that asked, for a request that came over federation


ACTIONS = ("create_room", "invite", "join", "read_profile", "search_directory", "send",
           "create_alias")


class Rule(Protocol):
    def __call__(self, decision: Decision) -> str | None:
        """A reason to refuse, or None to let the decision go on to the next rule."""


class AccessPolicy:
    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self._rules: list[Rule] = list(rules)
        self.refused = 0  # decisions refused since start, for monitoring

    def add_rule(self, rule: Rule) -> None:
        self._rules.append(rule)

    def check(self, decision: Decision) -> None:
        """Go on, or :class:`Forbidden` with the first rule's reason to refuse."""
        if decision.action not in ACTIONS:
            raise ValueError(f"unknown policy action {decision.action!r}")
        for rule in self._rules:
            reason = rule(decision)
            if reason is not None:
                self.refused += 1
                raise Forbidden(reason)

    # One method per action, so callers read as what they ask.
    def may_create_room(self, user_id: str) -> None:
        self.check(Decision("create_room", user_id))

    def may_invite(self, inviter: str, invitee: str, room_id: str, *, origin: str = "") -> None:
        self.check(Decision("invite", inviter, invitee, room_id, origin=origin))

    def may_join(self, user_id: str, room_id: str, *, origin: str = "") -> None:
        self.check(Decision("join", user_id, room_id, room_id, origin=origin))

    def may_read_profile(self, viewer: str, owner: str, *, origin: str = "") -> None:
        self.check(Decision("read_profile", viewer, owner, origin=origin))

    def may_search_directory(self, user_id: str) -> None:
        self.check(Decision("search_directory", user_id))

    def may_send(self, user_id: str, room_id: str, event_type: str) -> None:
        self.check(Decision("send", user_id, room_id, room_id, event_type))

    def may_create_alias(self, user_id: str, room_id: str) -> None:
        self.check(Decision("create_alias", user_id, room_id, room_id))
