"""A real node (``broker run``) that also answers a loopback control port for the tests of
notice rooms across nodes: ``POST /room_for {"sender", "recipient", "kind", "name",
"leave_allowed"?}`` calls the node's ``NoticeRooms.room_for`` (``"sender": {"organisation"}``
for that organisation's account) and answers ``{"room_id"}``.  The port is read from the file
``control_port`` beside the config.

    python -m tests.notice_room_node run --config homeserver.yaml --ready-fd N
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from broker.cli import main
from broker.node import Node
from tests.node_harness import NodeProcess


class NoticeNodeProcess(NodeProcess):
    """A :class:`NodeProcess` run by this launcher, with its control port."""

    command = ("-m", "tests.notice_room_node", "run")

    def __init__(self, workdir: Path, **options: Any) -> None:
        super().__init__(workdir, **options)
        from tests.node_harness import free_port

        self.control_port = free_port()
        (workdir / "control_port").write_text(str(self.control_port))

    def room_for(self, sender: Any, recipient: str, kind: str = "broadcast",
                 leave_allowed: bool = False) -> str:
        import requests

        answer = requests.post(f"http://127.0.0.1:{self.control_port}/room_for", json={
            "sender": sender, "recipient": recipient, "kind": kind, "name": "Notices",
            "leave_allowed": leave_allowed}, timeout=30)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["room_id"])


class Control(Resource):
    isLeaf = True  # noqa: N815 (Twisted's name)

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def render_POST(self, request: Any) -> Any:  # noqa: N802 (Twisted's name)
        asked = json.loads(request.content.read())
        d = defer.ensureDeferred(self._room_for(asked))

        def answer(body: Any, status: int = 200) -> None:
            request.setResponseCode(status)
            request.write(json.dumps(body).encode())
            request.finish()

        d.addCallbacks(lambda room_id: answer({"room_id": room_id}),
                       lambda failure: answer({"error": failure.getErrorMessage()}, 500))
        return NOT_DONE_YET

    async def _room_for(self, asked: dict[str, Any]) -> str:
        sender = asked["sender"]
        if isinstance(sender, dict):
            org = sender["organisation"]
            sender = await self.node.org_accounts.ensure(org, org.upper())
        return await self.node.notice_rooms.room_for(
            sender, asked["recipient"], kind=asked["kind"], name=asked["name"],
            leave_allowed=asked.get("leave_allowed", False))


def _listening(config: str) -> None:
    port = int((Path(config).parent / "control_port").read_text())
    listen = Node.listen

    def listen_with_control(node: Node) -> None:
        listen(node)
        node.reactor.listenTCP(port, Site(Control(node)), interface="127.0.0.1")

    Node.listen = listen_with_control  # type: ignore[method-assign]


if __name__ == "__main__":
    _listening(sys.argv[sys.argv.index("--config") + 1])
    sys.exit(main(sys.argv[1:]))
