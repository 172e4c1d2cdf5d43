"""A room for retention tests: ``alice``'s private room named "Kept", where she sends and
reads through the client API of an in-process node."""

from __future__ import annotations

from itertools import count
from typing import Any
from urllib.parse import quote

from tests.inprocess_node import InProcessNode

V3 = "/_matrix/client/v3"
TXN = count()


class Room:
    def __init__(self, local: InProcessNode) -> None:
        self.local, (_, self.alice) = local, local.register("alice")
        self.room_id = str(self.ok("POST", f"{V3}/createRoom",
                                   {"preset": "private_chat", "name": "Kept"})["room_id"])
        self.path = f"{V3}/rooms/{quote(self.room_id)}"

    def ok(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        status, answer = self.local.call(method, path, self.alice, body)
        assert status == 200, answer
        return dict(answer)

    def send(self, body: str) -> str:
        return str(self.ok("PUT", f"{self.path}/send/m.room.message/t{next(TXN)}",
                           {"msgtype": "m.text", "body": body})["event_id"])

    def set_policy(self, max_lifetime: int) -> None:
        self.ok("PUT", f"{self.path}/state/m.room.retention/", {"max_lifetime": max_lifetime})

    def bodies(self) -> list[str]:
        """The message bodies /messages shows, newest first."""
        chunk = self.ok("GET", f"{self.path}/messages?dir=b&limit=50")["chunk"]
        return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]
