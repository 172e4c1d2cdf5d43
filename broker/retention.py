"""Message retention: how long a room's events are kept, decided from memory.

A room states its policy in ``m.room.retention`` (``max_lifetime`` in milliseconds, as MSC1763
and Synapse read it); a room without one takes the default of its creator's organisation
(:mod:`broker.retention_orgs`), else the node's.  Whatever the source, the
lifetime is clamped into the node's bounds: ``allowed_lifetime_max`` caps every policy (the
default included, and a room with no policy at all), ``allowed_lifetime_min`` raises a shorter
one.  A non-state event is expired once ``origin_server_ts + lifetime < now`` on the node's
clock: read paths leave it out at once (one comparison per event, the policy read from the
live room's current state), and the purge job (:mod:`broker.retention_purge`) removes its
content from storage later.  Other servers get expired events pruned, from the endpoints
and from the outbound queue alike.  State events are never expired: the room needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol.events import Event
from protocol.redaction import prune_event_dict

if TYPE_CHECKING:
    from broker.clock import Clock
    from broker.retention_orgs import OrganisationDefaults
    from broker.rooms.live_room import LiveRoom

RETENTION_EVENT = "m.room.retention"
# The capability clients read the node's bounds from (docs/api/retention.md).
CAPABILITY = "in.gov.broker.retention"
DEFAULT_PURGE_INTERVAL_MS = 3_600_000
# What the outbound federation queue holds for a server longer than this is deleted, not sent.
DEFAULT_FEDERATION_QUEUE_MAX_AGE_MS = 7 * 86_400_000


@dataclass(frozen=True)
class RetentionSettings:
    """The node's retention config, every duration in milliseconds (None: not set)."""

    enabled: bool = False
    default_max_lifetime_ms: int | None = None
    min_lifetime_ms: int | None = None
    max_lifetime_ms: int | None = None
    purge_interval_ms: int = DEFAULT_PURGE_INTERVAL_MS
    # Undelivered data, whether or not room events expire (``enabled``).
    federation_queue_max_age_ms: int = DEFAULT_FEDERATION_QUEUE_MAX_AGE_MS
    # Deleting the personal data of deactivated accounts this long after (None: kept).
    deactivated_account_data_ms: int | None = None


def stated_lifetime(content: Mapping[str, Any]) -> int | None:
    """The ``max_lifetime`` an ``m.room.retention`` content states; None when it states none
    (absent, not a positive integer), as Synapse ignores such a value."""
    value = content.get("max_lifetime")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def room_stated_lifetime(state: Mapping[tuple[str, str], Event]) -> int | None:
    event = state.get((RETENTION_EVENT, ""))
    return stated_lifetime(event.content) if event is not None else None


def room_creator(state: Mapping[tuple[str, str], Event]) -> str | None:
    create = state.get(("m.room.create", ""))
    return create.sender if create is not None else None


def is_expired(event: Event, lifetime_ms: int | None, now_ms: int) -> bool:
    """Whether ``event`` is past a lifetime (state events never are)."""
    return (lifetime_ms is not None and event.state_key is None
            and event.origin_server_ts + lifetime_ms < now_ms)


def _pdu_expired(pdu: Mapping[str, Any], lifetime_ms: int | None, now_ms: int) -> bool:
    """:func:`is_expired` for an event still in its wire form."""
    ts = pdu.get("origin_server_ts")
    return (lifetime_ms is not None and "state_key" not in pdu and isinstance(ts, int)
            and ts + lifetime_ms < now_ms)


class Retention:
    """The node's retention bounds, and each room's effective policy from its state."""

    def __init__(self, settings: RetentionSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        # The organisations' defaults (set by the node once its admin services exist).
        self.organisations: OrganisationDefaults | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def effective_lifetime(self, stated: int | None, org_default: int | None = None
                           ) -> int | None:
        """The lifetime a room keeps its events for, given what its state says and the
        default of its creator's organisation (None: kept for ever)."""
        s = self.settings
        if not s.enabled:
            return None
        lifetime = stated if stated is not None else (
            org_default if org_default is not None else s.default_max_lifetime_ms)
        if lifetime is None:
            return s.max_lifetime_ms
        if s.max_lifetime_ms is not None:
            lifetime = min(lifetime, s.max_lifetime_ms)
        if s.min_lifetime_ms is not None:
            lifetime = max(lifetime, s.min_lifetime_ms)
        return lifetime

    def organisation_default(self, creator: str | None) -> tuple[str, int] | None:
        """(organisation, max_lifetime) whose default rooms ``creator`` created take."""
        if self.organisations is None or creator is None:
            return None
        return self.organisations.of_user(creator)

    def lifetime_of(self, stated: int | None, creator: str | None) -> int | None:
        """The effective lifetime of a room stating ``stated``, created by ``creator``."""
        if not self.settings.enabled:
            return None
        org = self.organisation_default(creator) if stated is None else None
        return self.effective_lifetime(stated, org[1] if org is not None else None)

    def room_lifetime(self, state: Mapping[tuple[str, str], Event]) -> int | None:
        """The effective lifetime of a room with this current state (dict lookups)."""
        if not self.settings.enabled:
            return None
        return self.lifetime_of(room_stated_lifetime(state), room_creator(state))

    def sent_since(self, state: Mapping[tuple[str, str], Event]) -> int | None:
        """The oldest ``origin_server_ts`` a non-state event of the room may have and still be
        read now (None: none expires), for reads that leave expired events to the database."""
        lifetime = self.room_lifetime(state)
        return None if lifetime is None else self.clock.time_ms() - lifetime

    def visible(self, state: Mapping[tuple[str, str], Event], events: Iterable[Event]
                ) -> list[Event]:
        """``events`` without those expired now under the room's policy."""
        lifetime = self.room_lifetime(state)
        if lifetime is None:
            return list(events)
        now = self.clock.time_ms()
        return [e for e in events if not is_expired(e, lifetime, now)]

    def expired_ids(self, state: Mapping[tuple[str, str], Event], events: Iterable[Event]
                    ) -> set[str]:
        """The IDs of those of ``events`` expired now under the room's policy."""
        lifetime = self.room_lifetime(state)
        if lifetime is None:
            return set()
        now = self.clock.time_ms()
        return {e.event_id for e in events if is_expired(e, lifetime, now)}

    def prune_expired(self, pdus: list[dict[str, Any]],
                      room_of: Callable[[str], LiveRoom | None]) -> list[dict[str, Any]]:
        """PDUs about to be sent to another server, those expired now pruned as a redaction
        prunes them; ``room_of`` gives the live room from memory (None: not held, sent as
        queued: the purge prunes its queued copies)."""
        if not self.settings.enabled:
            return pdus
        now = self.clock.time_ms()
        out = []
        for pdu in pdus:
            room = room_of(str(pdu.get("room_id", "")))
            expired = room is not None and _pdu_expired(pdu, self.room_lifetime(room.state), now)
            out.append(prune_event_dict(room.room_version, pdu)
                       if room is not None and expired else pdu)
        return out

    def expired(self, state: Mapping[tuple[str, str], Event], event: Event) -> bool:
        return is_expired(event, self.room_lifetime(state), self.clock.time_ms())

    def describe(self, state: Mapping[tuple[str, str], Event]) -> dict[str, Any]:
        """What admins see of a room's policy: what its state says, what applies and why."""
        stated = room_stated_lifetime(state)
        org = self.organisation_default(room_creator(state)) if stated is None else None
        default = self.settings.default_max_lifetime_ms
        if not self.settings.enabled:
            source, unclamped = "disabled", None
        elif stated is not None:
            source, unclamped = "room", stated
        elif org is not None:
            source, unclamped = "organisation", org[1]
        else:
            source, unclamped = ("default" if default is not None else "none"), default
        effective = self.effective_lifetime(stated, org[1] if org is not None else None)
        return {
            "stated_max_lifetime": stated,
            "effective_max_lifetime": effective,
            "source": source,
            "organisation": org[0] if org is not None else None,
            "clamped": self.settings.enabled and effective != unclamped,
        }

    def organisations_summary(self) -> dict[str, dict[str, int | None]]:
        """Each organisation stating a default: what it states and what applies once clamped
        (the policy document's view)."""
        stated = self.organisations.stated() if self.organisations is not None else {}
        return {org_id: {"max_lifetime": lifetime,
                         "effective_max_lifetime": self.effective_lifetime(None, lifetime)}
                for org_id, lifetime in stated.items()}

    def capability(self) -> dict[str, Any]:
        """The node's bounds as clients read them in ``GET /capabilities``."""
        s = self.settings
        return {
            "enabled": s.enabled,
            "default_max_lifetime": s.default_max_lifetime_ms if s.enabled else None,
            "min_lifetime": s.min_lifetime_ms if s.enabled else None,
            "max_lifetime": s.max_lifetime_ms if s.enabled else None,
        }
