"""A federation peer for tests that runs no server: it signs requests and events itself.

``FakePeer`` has its own server name and Ed25519 key and talks to a real node's TLS federation
port with ``requests``. The node under test pins the peer's key (``pinned_key_config``, for
``federation.pinned_keys``), so it never tries to fetch it, and must allow the peer's server
name. The peer joins public rooms with make_join/send_join and then builds, signs and pushes
its own PDUs, tracking the room's state, forward extremities and depth from the send_join answer
and from the events the node accepted from it.

Server names are ``127.0.0.1:<port>`` with a port nothing listens on: valid for discovery, and
anything the node tries to send back is refused at once instead of waiting on DNS.

Lower-level pieces (``authorization``, ``request`` with an explicit header, ``raw`` bodies) are
public so tests can send malformed requests.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests
from urllib3.exceptions import InsecureRequestWarning

from protocol.auth_rules import auth_types_for_event
from protocol.events import Event, build_pdu, finalize_pdu
from protocol.request_auth import sign_request
from protocol.room_versions import RoomVersion, get_room_version
from protocol.signing import (
    SigningKey,
    encode_verify_key,
    generate_signing_key,
    verify_key_id,
)
from tests.node_harness import NodeProcess

FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
SUPPORTED_VERSIONS = ("10", "11", "12")

StateKey = tuple[str, str]


@dataclass
class RoomView:
    """What the peer knows of a room it joined."""

    room_id: str
    room_version: RoomVersion
    state: dict[StateKey, Event] = field(default_factory=dict)
    extremities: list[str] = field(default_factory=list)
    depth: int = 0

    def track(self, event: Event) -> None:
        """Record an event the node accepted: it extends the room's tip."""
        if event.is_state():
            self.state[(event.type, event.state_key or "")] = event
        referenced = set(event.prev_event_ids)
        self.extremities = [e for e in self.extremities if e not in referenced]
        self.extremities.append(event.event_id)
        self.depth = max(self.depth, event.depth)


class FakePeer:
    def __init__(self, server_name: str, key_version: str = "fake1") -> None:
        self.server_name = server_name
        self.signing_key: SigningKey = generate_signing_key(key_version)
        self.session = requests.Session()
        self._txn_counter = 0

    # Identity -----------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        return verify_key_id(self.signing_key)

    def pinned_key_config(self) -> dict[str, dict[str, str]]:
        """This peer's entry for ``federation.pinned_keys``."""
        return {self.server_name: {self.key_id: encode_verify_key(self.signing_key)}}

    def user_id(self, localpart: str | None = None) -> str:
        return f"@{localpart or 'u' + uuid.uuid4().hex[:10]}:{self.server_name}"

    # Requests -----------------------------------------------------------------------------
    def authorization(self, destination: str, method: str, uri: str,
                      content: Any | None, *, key: SigningKey | None = None) -> str:
        """The X-Matrix header value this peer would send for a request."""
        return sign_request(self.server_name, destination, method, uri, content,
                            key or self.signing_key)

    def request(self, node: NodeProcess, method: str, path: str, body: Any | None = None, *,
                params: dict[str, Any] | None = None, authorization: str | None = None,
                sign_body: Any | None = None, raw: bytes | None = None,
                timeout: float = 30) -> requests.Response:
        """Send a signed request to ``node``'s federation port.

        ``path`` must already be percent-encoded. The signature covers ``sign_body`` when
        given (to sign one body and send another), else ``body``; ``authorization`` replaces
        the header altogether (``""`` sends none); ``raw`` replaces the body's bytes.
        """
        assert node.federation_port is not None, "the node has no federation listener"
        uri = path + ("?" + urlencode(params, doseq=True) if params else "")
        if authorization is None:
            signed = sign_body if sign_body is not None else body
            authorization = self.authorization(node.server_name, method, uri, signed)
        headers = {"Content-Type": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        data = raw if raw is not None else (
            json.dumps(body).encode("utf-8") if body is not None else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)
            return self.session.request(
                method, f"https://127.0.0.1:{node.federation_port}{uri}", data=data,
                headers=headers, verify=False, timeout=timeout)

    def transaction(self, pdus: list[Any],
                    edus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A transaction body from this peer (``pdus``: events, or raw JSON values)."""
        return {
            "origin": self.server_name,
            "origin_server_ts": now_ms(),
            "pdus": [p.pdu if isinstance(p, Event) else p for p in pdus],
            "edus": list(edus or []),
        }

    def next_txn_id(self) -> str:
        self._txn_counter += 1
        return f"fake-{uuid.uuid4().hex[:8]}-{self._txn_counter}"

    def send_transaction(self, node: NodeProcess, body: dict[str, Any] | None,
                         txn_id: str | None = None, **kwargs: Any) -> requests.Response:
        path = f"{FED_V1}/send/{quote(txn_id or self.next_txn_id(), safe='')}"
        return self.request(node, "PUT", path, body, **kwargs)

    def send_pdus(self, node: NodeProcess, room: RoomView, *events: Event) -> dict[str, Any]:
        """Push ``events`` in one transaction; events the node accepted extend ``room``.

        Returns the per-PDU results (``{event_id: {} or {"error": ...}}``)."""
        response = self.send_transaction(node, self.transaction(list(events)))
        assert response.status_code == 200, response.text
        results: dict[str, Any] = response.json()["pdus"]
        for event in events:
            if results.get(event.event_id) == {}:
                room.track(event)
        return results

    # Rooms --------------------------------------------------------------------------------
    def make_join(self, node: NodeProcess, room_id: str, user_id: str) -> requests.Response:
        path = f"{FED_V1}/make_join/{quote(room_id, safe='')}/{quote(user_id, safe='')}"
        return self.request(node, "GET", path, params={"ver": list(SUPPORTED_VERSIONS)})

    def send_join(self, node: NodeProcess, room_id: str, event_id: str,
                  pdu: dict[str, Any]) -> requests.Response:
        path = f"{FED_V2}/send_join/{quote(room_id, safe='')}/{quote(event_id, safe='')}"
        return self.request(node, "PUT", path, pdu)

    def make_knock(self, node: NodeProcess, room_id: str, user_id: str) -> requests.Response:
        path = f"{FED_V1}/make_knock/{quote(room_id, safe='')}/{quote(user_id, safe='')}"
        return self.request(node, "GET", path, params={"ver": list(SUPPORTED_VERSIONS)})

    def send_knock(self, node: NodeProcess, room_id: str, event_id: str,
                   pdu: dict[str, Any]) -> requests.Response:
        path = f"{FED_V1}/send_knock/{quote(room_id, safe='')}/{quote(event_id, safe='')}"
        return self.request(node, "PUT", path, pdu)

    def signed_join(self, node: NodeProcess, room_id: str, user_id: str,
                    content: dict[str, Any] | None = None) -> Event:
        """The join event of ``user_id`` built from the node's make_join template, with
        ``content``'s keys added to the template's, signed."""
        response = self.make_join(node, room_id, user_id)
        assert response.status_code == 200, response.text
        body = response.json()
        version = get_room_version(body["room_version"])
        template = dict(body["event"])
        template["content"] = {**template["content"], **(content or {})}
        template["origin_server_ts"] = now_ms()
        return finalize_pdu(template, self.server_name, self.signing_key, version)

    def join(self, node: NodeProcess, room_id: str, user_id: str,
             content: dict[str, Any] | None = None) -> RoomView:
        """Join ``user_id`` to a room of ``node`` (``content``'s keys added to the join's);
        the room's state as the node answered."""
        join = self.signed_join(node, room_id, user_id, content)
        response = self.send_join(node, room_id, join.event_id, join.pdu)
        assert response.status_code == 200, response.text
        version = join.room_version
        room = RoomView(room_id, version)
        for pdu in response.json()["state"]:
            event = Event(pdu, version)
            room.state[(event.type, event.state_key or "")] = event
            room.depth = max(room.depth, event.depth)
        room.extremities = list(join.prev_event_ids)
        room.track(join)
        return room

    def leave(self, node: NodeProcess, room: RoomView, user_id: str) -> requests.Response:
        """Leave through make_leave/send_leave; the room view follows the leave."""
        path = f"{FED_V1}/make_leave/{quote(room.room_id, safe='')}/{quote(user_id, safe='')}"
        response = self.request(node, "GET", path)
        assert response.status_code == 200, response.text
        template = dict(response.json()["event"], origin_server_ts=now_ms())
        leave = finalize_pdu(template, self.server_name, self.signing_key, room.room_version)
        response = self.request(
            node, "PUT", f"{FED_V2}/send_leave/{quote(room.room_id, safe='')}/"
            f"{quote(leave.event_id, safe='')}", leave.pdu)
        if response.status_code == 200:
            room.track(leave)
        return response

    # History ------------------------------------------------------------------------------
    def get_event(self, node: NodeProcess, event_id: str) -> requests.Response:
        return self.request(node, "GET", f"{FED_V1}/event/{quote(event_id, safe='')}")

    def backfill(self, node: NodeProcess, room_id: str, start: list[str],
                 limit: int = 50) -> requests.Response:
        return self.request(node, "GET", f"{FED_V1}/backfill/{quote(room_id, safe='')}",
                            params={"v": start, "limit": str(limit)})

    def get_missing_events(self, node: NodeProcess, room_id: str, latest: list[str],
                           earliest: list[str] | None = None,
                           limit: int = 20) -> requests.Response:
        return self.request(
            node, "POST", f"{FED_V1}/get_missing_events/{quote(room_id, safe='')}",
            {"latest_events": latest, "earliest_events": earliest or [], "limit": limit})

    def build_event(self, room: RoomView, sender: str, type: str, content: dict[str, Any], *,
                    state_key: str | None = None, prev_event_ids: list[str] | None = None,
                    auth_event_ids: list[str] | None = None,
                    key: SigningKey | None = None) -> Event:
        """A signed event at the room's tip, with the auth events the selection rules pick from
        the state the peer knows (overridable, to build invalid events)."""
        if auth_event_ids is None:
            keys = auth_types_for_event(room.room_version, type, sender, state_key, content)
            auth_event_ids = [room.state[k].event_id for k in keys if k in room.state]
        pdu = build_pdu(room.room_version, room_id=room.room_id, sender=sender, type=type,
                        content=content, state_key=state_key,
                        prev_event_ids=room.extremities if prev_event_ids is None
                        else prev_event_ids,
                        auth_event_ids=auth_event_ids, depth=room.depth + 1,
                        origin_server_ts=now_ms())
        return finalize_pdu(pdu, self.server_name, key or self.signing_key, room.room_version)

    def message(self, room: RoomView, sender: str, body: str, **kwargs: Any) -> Event:
        return self.build_event(room, sender, "m.room.message",
                                {"msgtype": "m.text", "body": body}, **kwargs)


def now_ms() -> int:
    return int(time.time() * 1000)
