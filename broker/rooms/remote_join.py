"""Joining a room that lives on other servers: make_join, sign, send_join, then adopt the
room's state.

The resident server's answer (state and auth chain) is verified event by event; the state and
its auth chain are stored as outliers, the room becomes a live room whose current state is that
state plus our join, and the join is written as the first event of our timeline for the room.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from broker.access_policy import REASON_FIELD
from broker.attestations import ATTESTATION
from broker.errors import Forbidden, InvalidInput, NotFound, Unavailable
from federation.event_fetcher import verified_events
from protocol.auth_rules import check_auth
from protocol.errors import AuthError, HttpResponseError
from protocol.events import Event, finalize_pdu
from protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, get_room_version

if TYPE_CHECKING:
    from broker.clock import Clock
    from broker.rooms.service import Rooms
    from federation.keyring import Keyring
    from federation.policy import FederationPolicy
    from federation.transport_client import FederationClient
    from protocol.signing import SigningKey
    from storage.state import StateStore

logger = logging.getLogger(__name__)

FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
# The longest rule name passed on from another server's refusal.
MAX_REASON_LENGTH = 64


class EventSigner:
    """Signs our events from a resident server's templates (make_join, make_leave)."""

    def __init__(self, server_name: str, signing_key: SigningKey, clock: Clock) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.clock = clock

    def sign_template(self, template: dict[str, Any], version: RoomVersion,
                      content: dict[str, Any] | None = None) -> Event:
        """Our signed event from a template, stamped now, with ``content`` merged into the
        template's content.  An attestation in the template is dropped: only this node says
        what it attests of its users (``content`` brings it)."""
        pdu = {k: v for k, v in template.items()
               if k not in ("hashes", "signatures", "unsigned", "event_id")}
        pdu["origin_server_ts"] = self.clock.time_ms()
        asked = pdu.get("content")
        pdu["content"] = {k: v for k, v in (asked if isinstance(asked, dict) else {}).items()
                          if k != ATTESTATION}
        if content:
            pdu["content"] = {**pdu["content"], **content}
        return finalize_pdu(pdu, self.server_name, self.signing_key, version)


class RemoteJoins:
    """Joining rooms held by other servers, through the federation client."""

    def __init__(self, server_name: str, signer: EventSigner, client: FederationClient,
                 policy: FederationPolicy, keyring: Keyring, rooms: Rooms,
                 state: StateStore, clock: Clock) -> None:
        self.server_name = server_name
        self.signer = signer
        self.client = client
        self.policy = policy
        self.keyring = keyring
        self.rooms = rooms
        self.state = state
        self.clock = clock

    async def join(self, room_id: str, user_id: str, servers: list[str],
                   profile: dict[str, Any]) -> str:
        """Join ``room_id`` through the first of ``servers`` that answers; returns the room ID."""
        client = self.client
        errors: list[str] = []
        for server in permitted_servers(servers, self.server_name, self.policy):
            try:
                template = await client.get_json(
                    server, f"{FED_V1}/make_join/{quote(room_id)}/{quote(user_id)}",
                    args={"ver": list(KNOWN_ROOM_VERSIONS)})
            except HttpResponseError as e:
                if e.status == 403:
                    raise Forbidden(f"{server} refused the join: {e.body}",
                                    **refusal_reason(e.body)) from e
                errors.append(f"{server}: {e}")
                continue
            except Exception as e:
                errors.append(f"{server}: {e}")
                continue
            return await self._send_join(server, room_id, template, profile, user_id)
        raise NotFound(f"No server could help to join {room_id}: {'; '.join(errors) or 'none'}")


    async def _send_join(self, server: str, room_id: str, template: dict[str, Any],
                         profile: dict[str, Any], user_id: str) -> str:
        version_id = template.get("room_version", "1")
        if version_id not in KNOWN_ROOM_VERSIONS:
            raise InvalidInput(f"Room version {version_id} is not supported by this node", errcode="M_UNSUPPORTED_ROOM_VERSION")
        version = get_room_version(version_id)
        content = self.rooms.creator.member_content(user_id, {
            "membership": "join",
            **{k: v for k, v in profile.items() if k in ("displayname", "avatar_url")}})
        join = self.signer.sign_template(template["event"], version, content)
        answer = await self.client.put_json(
            server, f"{FED_V2}/send_join/{quote(room_id)}/{quote(join.event_id)}", join.pdu)
        state = await verified_events(self.keyring, answer.get("state"), version, room_id)
        chain = await verified_events(self.keyring, answer.get("auth_chain"), version, room_id)
        state_map = {(e.type, e.state_key or ""): e for e in state if e.is_state()}
        create = state_map.get(("m.room.create", ""))
        if create is None:
            raise Unavailable(f"{server} sent no create event for {room_id}")
        try:
            check_auth(version, join, state_map, create)
        except AuthError as e:
            raise Forbidden(f"The join does not pass the room's rules: {e}") from e
        return await self._adopt_room(room_id, version_id, join, state_map, state + chain)


    async def _adopt_room(self, room_id: str, version_id: str, join: Event,
                          state_map: dict[tuple[str, str], Event], outliers: list[Event]) -> str:
        rooms = self.rooms
        known = await self.state.known_event_ids([e.event_id for e in outliers])
        fresh = list({e.event_id: e for e in outliers if e.event_id not in known}.values())
        exists = await self.state.room_exists(room_id)
        items = rooms.writer.adopt(room_id, get_room_version(version_id), join, state_map, fresh)
        if not exists:
            items[-1].new_room = {
                "room_id": room_id, "room_version": version_id,
                "creator": state_map[("m.room.create", "")].sender, "is_public": False,
                "created_ts": self.clock.time_ms()}
        try:
            await rooms.writer.persist(items)
        except Exception:
            rooms.registry.invalidate(room_id)
            raise
        return room_id


def permitted_servers(servers: list[str], own: str, policy: FederationPolicy) -> list[str]:
    """The servers to try, in order, that federation policy lets us reach (ourselves left
    out); Forbidden when it lets us reach none of them."""
    candidates = [s for s in dict.fromkeys(servers) if s != own]
    allowed = [s for s in candidates if policy.permits("outbound", s)]
    if candidates and not allowed:
        raise Forbidden(f"Federation with {', '.join(candidates)} is not allowed")
    return allowed


def refusal_reason(body: object) -> dict[str, str]:
    """The rule another node of ours named in refusing (``in.gov.broker.reason``), to pass on
    to our user as it was given; nothing if the body names none (or not as a short name)."""
    reason = body.get(REASON_FIELD) if isinstance(body, dict) else None
    if isinstance(reason, str) and 0 < len(reason) <= MAX_REASON_LENGTH and \
            reason.replace("_", "").isalnum() and reason.isascii():
        return {REASON_FIELD: reason}
    return {}


def servers_for_room(room_id: str, hints: list[str]) -> list[str]:
    """Where to try joining: the client's hints, then the room ID's server (rooms before v12)."""
    servers = list(hints)
    if ":" in room_id:
        servers.append(room_id.split(":", 1)[1])
    if not servers:
        raise NotFound(f"Room {room_id} is unknown here; give a server to join it through")
    return servers
