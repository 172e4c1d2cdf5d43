"""Knocking on a room held by other servers: make_knock, sign, send_knock (Server-Server API),
then keep the knock and the room state the resident server answered with, so the user sees it
in /sync (``rooms.knock``) until they are let in, join, or withdraw it (make_leave /
send_leave through the same server)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from broker.access_policy import REASON_FIELD
from broker.errors import Forbidden, InvalidInput, NotFound, Unavailable
from broker.rooms.remote_join import FED_V1, FED_V2, EventSigner, permitted_servers
from protocol.errors import HttpResponseError
from protocol.room_versions import KNOWN_ROOM_VERSIONS, get_room_version
from storage.remote_knocks import RemoteKnock

if TYPE_CHECKING:
    from broker.streams import StreamWriter
    from federation.policy import FederationPolicy
    from federation.transport_client import FederationClient
    from storage.remote_knocks import RemoteKnockStore

logger = logging.getLogger(__name__)


def as_stripped(events: Any) -> list[dict[str, Any]]:
    """Stripped state events from what a resident server sent (full PDUs since Matrix 1.16,
    stripped events before): type, state key, content and sender of each well-formed one."""
    if not isinstance(events, list):
        return []
    return [{"type": e["type"], "state_key": e["state_key"], "content": e["content"],
             "sender": e.get("sender")} for e in events
            if isinstance(e, dict) and isinstance(e.get("type"), str)
            and isinstance(e.get("state_key"), str) and isinstance(e.get("content"), dict)]


def check_template(template: Any, room_id: str, user_id: str) -> dict[str, Any]:
    """The make_knock answer's event, if it is a knock of ``user_id`` on ``room_id``
    (InvalidInput otherwise: the spec has the answer discarded)."""
    event = template.get("event") if isinstance(template, dict) else None
    if not isinstance(event, dict) or event.get("room_id") != room_id or \
            event.get("sender") != user_id or event.get("state_key") != user_id or \
            event.get("type") != "m.room.member" or \
            not isinstance(event.get("content"), dict) or \
            event["content"].get("membership") != "knock":
        raise InvalidInput("The resident server's knock template is malformed")
    return event


class RemoteKnocks:
    def __init__(self, signer: EventSigner, client: FederationClient, policy: FederationPolicy,
                 knocks: RemoteKnockStore, streams: StreamWriter) -> None:
        self.signer = signer
        self.client = client
        self.policy = policy
        self.knocks = knocks
        self.streams = streams

    async def knock(self, room_id: str, user_id: str, servers: list[str],
                    content: dict[str, Any]) -> None:
        """Knock through the first of ``servers`` that answers."""
        errors: list[str] = []
        for server in permitted_servers(servers, self.signer.server_name, self.policy):
            try:
                template = await self.client.get_json(
                    server, f"{FED_V1}/make_knock/{quote(room_id)}/{quote(user_id)}",
                    args={"ver": list(KNOWN_ROOM_VERSIONS)})
            except HttpResponseError as e:
                if e.status == 403:
                    raise _refused(server, e) from e
                errors.append(f"{server}: {e}")
                continue
            except Exception as e:
                errors.append(f"{server}: {e}")
                continue
            await self._send_knock(server, room_id, user_id, template, content)
            return
        raise NotFound(f"No server could help to knock on {room_id}: "
                       f"{'; '.join(errors) or 'none'}")

    async def _send_knock(self, server: str, room_id: str, user_id: str, template: Any,
                          content: dict[str, Any]) -> None:
        event = check_template(template, room_id, user_id)
        version_id = template.get("room_version")
        if version_id not in KNOWN_ROOM_VERSIONS:
            raise InvalidInput(f"Room version {version_id} is not supported by this node",
                               errcode="M_UNSUPPORTED_ROOM_VERSION")
        knock = self.signer.sign_template(event, get_room_version(version_id), content)
        try:
            answer = await self.client.put_json(
                server, f"{FED_V1}/send_knock/{quote(room_id)}/{quote(knock.event_id)}",
                knock.pdu)
        except HttpResponseError as e:
            if e.status == 403:
                raise _refused(server, e) from e
            raise Unavailable(f"{server} did not take the knock: {e}") from e
        except Exception as e:
            raise Unavailable(f"Could not send the knock to {server}: {e}") from e
        state = as_stripped(answer.get("knock_room_state") if isinstance(answer, dict) else None)

        def write(stream_id: int) -> Any:
            return self.knocks.add_knock(RemoteKnock(
                user_id=user_id, room_id=room_id, event_id=knock.event_id,
                room_version=version_id, server=server, event=knock.pdu, knock_state=state,
                stream_id=stream_id))

        await self.streams.write(write, users=[user_id])

    async def withdraw(self, room_id: str, user_id: str) -> bool:
        """Leave a room we only knocked on, through the server the knock went through (False:
        no such knock)."""
        knock = await self.knocks.get_knock(user_id, room_id)
        if knock is None:
            return False
        version = get_room_version(knock.room_version)
        try:
            template = await self.client.get_json(
                knock.server, f"{FED_V1}/make_leave/{quote(room_id)}/{quote(user_id)}")
            leave = self.signer.sign_template(template["event"], version)
            await self.client.put_json(
                knock.server, f"{FED_V2}/send_leave/{quote(room_id)}/{quote(leave.event_id)}",
                leave.pdu)
        except Exception as e:  # the resident server is gone: forget the knock all the same
            logger.info("withdrawing the knock on %s through %s failed (%s); forgetting it",
                        room_id, knock.server, e)
        await self.forget(room_id, user_id)
        return True

    async def forget(self, room_id: str, user_id: str) -> None:
        """The knock is over (the user was let in, joined or withdrew it)."""
        await self.streams.write(lambda _sid: self.knocks.delete_knock(user_id, room_id),
                                 users=[user_id])


def _refused(server: str, e: HttpResponseError) -> Forbidden:
    """The resident server's refusal, with the reason a node of ours gave (to pass on)."""
    body = e.body if isinstance(e.body, dict) else {}
    reason = body.get(REASON_FIELD)
    return Forbidden(f"{server} refused the knock: {body.get('error', e)}",
                     **({REASON_FIELD: reason} if isinstance(reason, str) else {}))
