"""Delivery and read status across two real nodes of ours on loopback, SQLite then PostgreSQL:
an application of node A sends an OTP to a user of node B; when B's user syncs past it, B
reports the delivery to A (EDU in.gov.broker.delivery) and the status becomes delivered; the
user's read receipt reaches A as an m.receipt EDU and the status becomes read; the app's
callback URL (a recording server on loopback, allowed by apps.allow_private_callbacks)
receives both changes, signed with the app's callback secret."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.callback_recorder import WAIT_S, Recorder, recorder
from tests.node_harness import Client, NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.room_helpers import V3
from tests.test_apps_nodes import APPS, notices, until_notice, until_status

__all__ = ["recorder"]


def node_config(workdir: Path) -> dict[str, Any]:
    """Both nodes: the organisation mha, and callbacks to loopback allowed."""
    orgs = workdir / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    return {"organisations.path": str(orgs), "apps.allow_private_callbacks": True}


@pytest.fixture(scope="module", params=ENGINES)
def nodes(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    config = node_config(Path(tmp_path_factory.mktemp("delivery_orgs")))
    with two_nodes(request.param, tmp_path_factory, "delivery", config) as pair:
        yield pair


def register_app(node: NodeProcess, callback_url: str) -> tuple[Client, str]:
    admin = node.admin()
    app = admin.post("/_broker/admin/v1/apps", {"name": "Passport Seva", "organisation": "mha",
                                                "callback_url": callback_url})
    assert admin.status == 201, app
    client = node.client()
    client.token, client.user_id = app["token"], app["sender"]
    return client, str(app["callback_secret"])


def until_callbacks(recorder: Recorder, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S * 3
    while len(recorder.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return [json.loads(body) for _, _, body in recorder.received]


def test_an_otp_to_another_node_is_delivered_then_read_with_signed_callbacks(
        nodes: Any, recorder: Recorder) -> None:
    a, b = nodes
    app, secret = register_app(a, recorder.url("/status"))
    bob = b.register()
    sent = app.post(f"{APPS}/messages", {"to": bob.user_id, "kind": "otp",
                                         "body": "OTP 493021", "ttl_s": 600})
    assert app.status == 200, sent
    message_id = sent["message_id"]
    event, token = until_notice(bob)
    assert app.get(f"{APPS}/messages/{message_id}")["status"] == "queued"
    notices(bob, token)  # a later sync: bob's device has it, B tells A
    until_status(app, message_id, "delivered")
    room_id = next(r for r, s in bob.get(f"{V3}/sync", params={"timeout": "0"})["rooms"]
                   ["join"].items() if any(e["event_id"] == event["event_id"]
                                           for e in s["timeline"]["events"]))
    bob.post(f"{V3}/rooms/{quote(room_id)}/receipt/m.read/{quote(event['event_id'])}", {})
    assert bob.status == 200
    until_status(app, message_id, "read")
    status = app.get(f"{APPS}/messages/{message_id}")
    assert status["delivered_ts"] <= status["read_ts"]
    bodies = until_callbacks(recorder, 2)
    assert [(c["message_id"], c["status"]) for c in bodies] == [
        (message_id, "delivered"), (message_id, "read")]
    assert all(recorder.signed_with(secret, i) for i in range(2))
    assert all(c["recipient"] == bob.user_id for c in bodies)
