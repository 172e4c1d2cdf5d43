"""The answer to a knock on a room this node does not hold: the resident server refusing it
sends the knocker's leave (or ban) to us, a room we hold nothing of, so the transaction
receiver hands such an event here; signed by the server the knock went through, it ends the
knock (the user no longer sees it in /sync).  Being let in needs nothing here: it comes as an
invite (:mod:`broker.services.federation_invites`)."""

from __future__ import annotations

import logging
from typing import Any

from broker.streams import StreamWriter
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.room_versions import get_room_version
from storage.remote_knocks import RemoteKnockStore

logger = logging.getLogger(__name__)

ENDING = ("leave", "ban")


class KnockAnswers:
    def __init__(self, server_name: str, keyring: Any, knocks: RemoteKnockStore,
                 streams: StreamWriter) -> None:
        self.server_name = server_name
        self.keyring = keyring
        self.knocks = knocks
        self.streams = streams

    def _ends_a_knock(self, pdu: dict[str, Any]) -> str | None:
        """The local user whose membership the PDU ends, if it is a leave or ban of one."""
        content = pdu.get("content")
        target = pdu.get("state_key")
        if pdu.get("type") != "m.room.member" or not isinstance(content, dict) or \
                content.get("membership") not in ENDING or not isinstance(target, str) or \
                target.partition(":")[2] != self.server_name:
            return None
        return target

    async def on_unknown_room(self, origin: str, pdu: dict[str, Any]) -> bool:
        """Take in a PDU for a room this node does not hold if it refuses a local user's
        knock (True: it did)."""
        user_id = self._ends_a_knock(pdu)
        if user_id is None:
            return False
        room_id = str(pdu.get("room_id"))
        knock = await self.knocks.get_knock(user_id, room_id)
        if knock is None or knock.server != origin:
            return False
        try:
            await check_pdu(self.keyring, pdu, get_room_version(knock.room_version))
        except PduRejected as e:
            logger.info("a refusal of %s's knock on %s from %s is not valid: %s", user_id,
                        room_id, origin, e)
            return False
        await self.streams.write(lambda _sid: self.knocks.delete_knock(user_id, room_id),
                                 users=[user_id])
        logger.info("%s refused %s's knock on %s", origin, user_id, room_id)
        return True
