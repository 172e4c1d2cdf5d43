"""The one policy decision point: may this user create, invite, join, knock, read a profile,
search the directory, send or give a room an alias?

Every request of those kinds passes through :class:`AccessPolicy`, whichever door it came in by
(Client-Server API, federation, and later the admin and application APIs), so a rule is added
in one place and holds on every path.  The decisions are synchronous and read only what the
caller hands over (no database round trip: sends and joins stay fast).  A refusal raises
:class:`broker.errors.Forbidden` with the reason.

The node installs its rules (rooms shut down, official groups, member limits: see
docs/admin/groups.md) with :meth:`AccessPolicy.add_rule`; a test may install its own.  A rule
that names itself (a :class:`Refusal`) puts its name in the error body as
``"in.gov.broker.reason"``; every refusal is counted per rule (:attr:`AccessPolicy.refusals`)
and logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from broker.errors import Forbidden

logger = logging.getLogger(__name__)

# The error body's field naming the rule that refused.
REASON_FIELD = "in.gov.broker.reason"
# The name counted for a rule that gives only a message.
UNNAMED_RULE = "unnamed"

OFFICIAL = "official"
INFORMAL = "informal"
IMAGE_PACKS = "image_packs"  # an organisation's image pack room (broker/image_packs.py)


@dataclass(frozen=True)
class RoomFacts:
    """What the policy knows of a room, read from memory by the caller: its kind (an official
    group, an organisation's image pack room or an informal room), the organisation of an
    official group or a pack room, whether it is a direct
    chat, and how many members it has (joined or invited)."""

    kind: str = INFORMAL
    organisation: str = ""
    direct: bool = False
    members: int = 0


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
    room: RoomFacts | None = None  # None: the room is not held here (or not asked about)
    # create_room of an official group: its organisation and that one's ancestors, nearest
    # first (the creator's organisation must be one of them).
    lineage: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """A rule's refusal: its name (stable, given to clients and counted), a message, and the
    Matrix error code (``M_FORBIDDEN`` unless the spec names another for the case)."""

    rule: str
    message: str
    errcode: str = "M_FORBIDDEN"


ACTIONS = ("create_room", "invite", "join", "knock", "read_profile", "search_directory",
           "send", "create_alias", "add_member")


class Rule(Protocol):
    def __call__(self, decision: Decision) -> Refusal | str | None:
        """A refusal (or only its message), or None to let the decision go on to the next
        rule."""


@dataclass(frozen=True)
class InstalledRule:
    """What the policy document says of a rule: its name, the reasons (:class:`Refusal`
    names) it may refuse with, and what it holds, in words."""

    name: str
    reasons: tuple[str, ...]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reasons": list(self.reasons),
                "description": self.description}


class AccessPolicy:
    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self._rules: list[Rule] = list(rules)
        self.installed: list[InstalledRule] = []  # the named rules, in the order they ask
        self.refusals: Counter[str] = Counter()  # refusals per rule (kept across restarts)
        # Told each refusal with its rule (the statistics count them per organisation).
        self.refusal_listeners: list[Callable[[Decision, str], None]] = []

    def add_rule(self, rule: Rule, named: InstalledRule | None = None) -> None:
        """Ask ``rule`` after the rules installed before; ``named`` describes it for the
        policy document."""
        self._rules.append(rule)
        if named is not None:
            self.installed.append(named)

    def check(self, decision: Decision) -> None:
        """Go on, or :class:`Forbidden` with the first rule's reason to refuse."""
        if decision.action not in ACTIONS:
            raise ValueError(f"unknown policy action {decision.action!r}")
        for rule in self._rules:
            found = rule(decision)
            if found is None:
                continue
            refusal = found if isinstance(found, Refusal) else Refusal(UNNAMED_RULE, found)
            self.refusals[refusal.rule] += 1
            for listener in self.refusal_listeners:
                listener(decision, refusal.rule)
            logger.info("refused %s by %s (target %s, room %s, origin %s): %s: %s",
                        decision.action, decision.actor, decision.target or "-",
                        decision.room_id or "-", decision.origin or "-", refusal.rule,
                        refusal.message)
            if refusal.rule == UNNAMED_RULE:
                raise Forbidden(refusal.message)
            raise Forbidden(refusal.message, errcode=refusal.errcode,
                            **{REASON_FIELD: refusal.rule})

    @property
    def refused(self) -> int:
        """Decisions refused, every rule together."""
        return sum(self.refusals.values())

    # One method per action, so callers read as what they ask.
    def may_create_room(self, user_id: str, room: RoomFacts | None = None,
                        lineage: tuple[str, ...] = ()) -> None:
        self.check(Decision("create_room", user_id, room=room, lineage=lineage))

    def may_invite(self, inviter: str, invitee: str, room_id: str, *, origin: str = "",
                   room: RoomFacts | None = None) -> None:
        self.check(Decision("invite", inviter, invitee, room_id, origin=origin, room=room))

    def may_join(self, user_id: str, room_id: str, *, origin: str = "",
                 room: RoomFacts | None = None) -> None:
        self.check(Decision("join", user_id, room_id, room_id, origin=origin, room=room))

    def may_knock(self, user_id: str, room_id: str, *, origin: str = "",
                  room: RoomFacts | None = None, reached: Sequence[str] = ()) -> None:
        """A knock on the room.  ``reached``: the members a knock on a direct chat asks to
        be let in by (each is the target of one decision); otherwise the target is the
        room."""
        for target in reached or (room_id,):
            self.check(Decision("knock", user_id, target, room_id, origin=origin, room=room))

    def may_add_member(self, user_id: str, room_id: str, room: RoomFacts) -> None:
        """A membership that adds ``user_id`` to the room's members (a join or an invite of
        someone not in it), asked where the room writer serialises the room's changes, so
        that concurrent joins see each other's count."""
        self.check(Decision("add_member", user_id, user_id, room_id, room=room))

    def may_read_profile(self, viewer: str, owner: str, *, origin: str = "") -> None:
        self.check(Decision("read_profile", viewer, owner, origin=origin))

    def may_search_directory(self, user_id: str) -> None:
        self.check(Decision("search_directory", user_id))

    def may_send(self, user_id: str, room_id: str, event_type: str) -> None:
        self.check(Decision("send", user_id, room_id, room_id, event_type))

    def may_create_alias(self, user_id: str, room_id: str) -> None:
        self.check(Decision("create_alias", user_id, room_id, room_id))
