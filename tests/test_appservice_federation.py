"""An application service of one node hears the receipts of another node's users in the
rooms it is interested in, as it hears local ones (two real nodes on loopback, SQLite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.appservice_helpers import RecordingService, registration_file, running_service
from tests.node_harness import NodeProcess
from tests.test_appservice_transactions import bridged_room, send

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def service() -> Iterator[RecordingService]:
    with running_service() as running:
        yield running


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: Any, service: RecordingService
          ) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    a, b = (NodeProcess(tmp_path_factory.mktemp(f"as_fed_{n}"), federation=True) for n in "ab")
    bridge = registration_file(a.workdir, "bridge", url=service.url, prefix="bridge",
                               server_name=a.server_name, receive_ephemeral=True)
    config = yaml.safe_load(a.config_path.read_text())
    config["app_services"] = [str(bridge)]
    a.config_path.write_text(yaml.safe_dump(config))
    a.allow(b)
    b.allow(a)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_a_receipt_of_another_nodes_user_is_pushed_to_the_service(
        nodes: tuple[NodeProcess, NodeProcess], service: RecordingService) -> None:
    a, b = nodes
    alice, room = bridged_room(a)
    bob = b.register()
    bob.post(f"{V3}/join/{quote(room)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200
    event_id = send(alice, room, "read me across nodes")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until bob's node holds the event
        bob.get(f"{V3}/rooms/{quote(room)}/event/{quote(event_id)}")
        if bob.status == 200:
            break
        time.sleep(0.05)
    bob.post(f"{V3}/rooms/{quote(room)}/receipt/m.read/{quote(event_id)}", {})
    assert bob.status == 200

    def receipts() -> list[dict[str, Any]]:
        return [e for _m, path, _a, body in list(service.requests)
                if path.startswith("/_matrix/app/v1/transactions/")
                for e in body.get("ephemeral", [])
                if e.get("type") == "m.receipt" and e.get("room_id") == room]

    def bobs() -> bool:
        return any(bob.user_id in e["content"].get(event_id, {}).get("m.read", {})
                   for e in receipts())

    with service.arrived:
        service.arrived.wait_for(bobs, 30)
    assert bobs()
