"""Nothing an application had accepted is lost when the node stops before sending it, both
engines: what a queued message will put in its room is kept with its status, and the next
start sends it — once, even when its event was written just before the stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.apps.sending import AppMessages
from broker.apps.tracking import MessageTracker
from tests.admin_harness import AdminNode
from tests.inprocess_node import InProcessNode
from tests.test_apps_messages import Scene

V3 = "/_matrix/client/v3"


class Stopped:
    """A scene whose node stops before its background sends finish; then its successor."""

    def __init__(self, workdir: Path, engine: str) -> None:
        self.workdir, self.engine = workdir, engine
        self.first = AdminNode(workdir, engine)
        self.scene = Scene(self.first)
        self.again: InProcessNode | None = None

    def restart(self, down_s: int = 0) -> InProcessNode:
        """Stop the node and start another on its database ``down_s`` later (both clocks
        start at the same time), loading what ``Node.start`` loads for the apps."""
        self.first.local.close()
        again = InProcessNode(self.workdir, "admin.test", engine=self.engine,
                              dsn=self.first.dsn)
        self.again = again
        again.advance(down_s)
        apps = again.node.apps
        again.run(apps.start())
        again.run(again.node.delivery.tracker.load())
        again.run(apps.resume())
        for _ in range(200):
            if not apps.messages.in_flight:
                break
            again.advance(0)
        return again

    def notices_of_asha(self, node: InProcessNode) -> list[dict[str, Any]]:
        token = node.run(node.node.auth.create_session(self.scene.asha, None, None, None))[0]
        status, body = node.call("GET", f"{V3}/sync", token)
        assert status == 200, body
        return [e for room in body["rooms"]["join"].values()
                for e in room["timeline"]["events"]
                if e["type"] == "m.room.message" and e["sender"] == self.scene.app["sender"]]

    def status(self, node: InProcessNode, message_id: str) -> Any:
        return node.run(node.node.delivery.tracker.status(message_id))

    def close(self) -> None:
        if self.again is not None:
            self.again.close()
        else:
            self.first.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stopped(request: Any, tmp_path: Path) -> Iterator[Stopped]:
    made = Stopped(tmp_path, request.param)
    try:
        yield made
    finally:
        made.close()


def test_a_message_accepted_but_not_sent_before_a_stop_is_sent_at_the_next_start(
        stopped: Stopped, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AppMessages, "_start", lambda *args: None)  # the node stops first
    status, answer = stopped.scene.call("POST", "/messages", {
        "to": stopped.scene.asha, "kind": "alert", "body": "Your passport is ready"})
    assert status == 200, answer
    monkeypatch.undo()
    again = stopped.restart()
    [notice] = stopped.notices_of_asha(again)
    assert notice["content"]["body"] == "Your passport is ready"
    found = stopped.status(again, answer["message_id"])
    assert found["status"] in ("queued", "delivered")
    assert again.run(again.node.delivery.tracker.unsent()) == []  # sent: nothing left


def test_a_message_whose_event_was_written_just_before_the_stop_is_not_sent_twice(
        stopped: Stopped, monkeypatch: pytest.MonkeyPatch) -> None:
    async def stopped_before_recording(*args: Any) -> None:
        return None

    monkeypatch.setattr(MessageTracker, "sent", stopped_before_recording)
    status, answer = stopped.scene.send()
    assert status == 200, answer
    assert len(stopped.scene.notices("asha")) == 1  # the event is written, not yet recorded
    monkeypatch.undo()
    again = stopped.restart()
    assert len(stopped.notices_of_asha(again)) == 1
    assert stopped.status(again, answer["message_id"])["status"] != "failed"


def test_an_otp_whose_time_passed_while_the_node_was_down_is_not_sent(
        stopped: Stopped, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AppMessages, "_start", lambda *args: None)
    status, answer = stopped.scene.call("POST", "/messages", {
        "to": stopped.scene.asha, "kind": "otp", "body": "Your OTP is 493021", "ttl_s": 30})
    assert status == 200, answer
    monkeypatch.undo()
    again = stopped.restart(down_s=31)
    assert stopped.notices_of_asha(again) == []
    again.node.delivery.tracker.expire_due()
    assert stopped.status(again, answer["message_id"])["status"] == "expired"
