"""Reporting content: ``POST /rooms/{roomId}/report/{eventId}`` (an event; the reporter must be
joined), ``POST /rooms/{roomId}/report`` (a room, spec v1.13) and ``POST /users/{userId}/report``
(a user, spec v1.14).

Reports are kept in the ``event_reports`` table for the node's admins (with the reported event's
sender, so the origin of reported misuse can be traced) and logged at INFO.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import bad_param, not_found
from broker.http.parsing import parse_json_body
from broker.http.validation import optional
from protocol.identifiers import is_user_id

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

logger = logging.getLogger(__name__)

ROOM = "(?P<room_id>[^/]+)"
MAX_REASON_CHARS = 4096


def _reason(body: dict[str, Any]) -> str | None:
    reason = optional(body, "reason", str)
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise bad_param(f"'reason' must be at most {MAX_REASON_CHARS} characters")
    return reason


def _score(body: dict[str, Any]) -> int | None:
    score = optional(body, "score", int)
    if score is not None and not -100 <= score <= 0:
        raise bad_param("'score' must be between -100 and 0")
    return score


def register_servlets(node: Node, router: Router) -> None:
    store = node.stores.reports

    async def report_event(request: Request, room_id: str, event_id: str
                           ) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        node.ratelimiter.check("messages", requester.user_id, exempt=requester.is_admin)
        body = parse_json_body(request, allow_empty=True)
        reason, score = _reason(body), _score(body)
        room = await node.rooms.registry.get(room_id)
        event = (await node.stores.events.get_events([event_id])).get(event_id)
        if room is None or room.membership_of(requester.user_id) != "join" or \
                event is None or event.room_id != room_id:
            raise not_found("The event was not found or you are not joined to the room.")
        report_id = await store.add_report(
            reporter=requester.user_id, received_ts=node.clock.time_ms(), room_id=room_id,
            event_id=event_id, reported_user_id=event.sender, reason=reason, score=score)
        logger.info("report %d: %s reported event %s (sender %s) in %s: score=%s reason=%r",
                    report_id, requester.user_id, event_id, event.sender, room_id, score, reason)
        return 200, {}

    async def report_room(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        node.ratelimiter.check("messages", requester.user_id, exempt=requester.is_admin)
        reason = _reason(parse_json_body(request, allow_empty=True))
        if not await node.stores.state.room_exists(room_id):
            raise not_found("The room was not found.")
        report_id = await store.add_report(
            reporter=requester.user_id, received_ts=node.clock.time_ms(), room_id=room_id,
            reason=reason)
        logger.info("report %d: %s reported room %s: reason=%r",
                    report_id, requester.user_id, room_id, reason)
        return 200, {}

    async def report_user(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        node.ratelimiter.check("messages", requester.user_id, exempt=requester.is_admin)
        reason = _reason(parse_json_body(request, allow_empty=True))
        if not is_user_id(user_id):
            raise bad_param(f"{user_id!r} is not a valid user ID")
        if not await node.stores.user_directory.is_known_user(user_id):
            raise not_found("The user was not found.")
        report_id = await store.add_report(
            reporter=requester.user_id, received_ts=node.clock.time_ms(),
            reported_user_id=user_id, reason=reason)
        logger.info("report %d: %s reported user %s: reason=%r",
                    report_id, requester.user_id, user_id, reason)
        return 200, {}

    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/report/(?P<event_id>[^/]+)",
                    report_event)
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/report", report_room)
    router.register("POST", f"{CLIENT_PREFIX}/users/(?P<user_id>[^/]+)/report", report_user)
