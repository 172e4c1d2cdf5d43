"""Each class of bad input gets the spec's error code and status, and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room, room_path, sync


@pytest.fixture(scope="module")
def strict_node(tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A node with a small body limit and tight message rate limits."""
    running = NodeProcess(
        Path(tmp_path_factory.mktemp("strict")),
        overrides={
            "limits.max_request_body_bytes": 2048,
            "rate_limits.enabled": True,
            "rate_limits.messages": {"per_second": 0.1, "burst": 3},
            "rate_limits.registration": {"per_second": 100, "burst": 100},
            "rate_limits.login": {"per_second": 100, "burst": 100},
        },
    ).start()
    try:
        yield running
    finally:
        running.stop()


def test_unknown_endpoint_is_unrecognized(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(f"{V3}/no/such/endpoint")
    assert client.status == 404 and body["errcode"] == "M_UNRECOGNIZED"


def test_wrong_method_is_unrecognized_405(node: NodeProcess) -> None:
    client = node.client()
    body = client.delete(f"{V3}/sync")
    assert client.status == 405 and body["errcode"] == "M_UNRECOGNIZED"


def test_missing_token_is_401_missing_token(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(f"{V3}/joined_rooms")
    assert client.status == 401 and body["errcode"] == "M_MISSING_TOKEN"


def test_unknown_token_is_401_unknown_token(node: NodeProcess) -> None:
    client = node.client()
    client.token = "brk_not-a-real-token"
    body = client.get(f"{V3}/joined_rooms")
    assert client.status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"


def test_malformed_json_is_not_json(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.request("POST", f"{V3}/createRoom", raw=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"


def test_json_that_is_not_an_object_is_not_json(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.request("POST", f"{V3}/createRoom", raw=b"[1, 2]")
    assert alice.status == 400 and body["errcode"] == "M_NOT_JSON"


def test_wrong_field_type_is_bad_json(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(f"{V3}/createRoom", {"name": 42})
    assert alice.status == 400 and body["errcode"] == "M_BAD_JSON"


def test_missing_required_field_is_missing_param(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    body = alice.post(room_path(room_id, "invite"), {})
    assert alice.status == 400 and body["errcode"] == "M_MISSING_PARAM"


def test_forbidden_action_is_403(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice)
    body = bob.put(room_path(room_id, "state/m.room.topic"), {"topic": "x"})
    assert bob.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_oversized_body_is_413_and_writes_nothing(strict_node: NodeProcess) -> None:
    alice = strict_node.register()
    room_id = create_room(alice)
    token = sync(alice)["next_batch"]
    body = alice.put(room_path(room_id, "send/m.room.message/big"),
                     {"msgtype": "m.text", "body": "x" * 5000})
    assert alice.status == 413 and body["errcode"] == "M_TOO_LARGE"
    assert room_id not in sync(alice, token)["rooms"]["join"]


def test_oversized_chunked_body_is_413(strict_node: NodeProcess) -> None:
    alice = strict_node.register()
    chunks = (b"x" * 1000 for _ in range(10))
    body = alice.request("POST", f"{V3}/createRoom", raw=chunks,
                         headers={"Content-Type": "application/json"})
    assert alice.status == 413 and body["errcode"] == "M_TOO_LARGE"


def test_rate_limit_is_429_with_retry_after(strict_node: NodeProcess) -> None:
    alice = strict_node.register()
    room_id = create_room(alice)
    statuses = []
    body: dict[str, Any] = {}
    for i in range(6):
        body = alice.put(room_path(room_id, f"send/m.room.message/rl{i}"),
                         {"msgtype": "m.text", "body": str(i)})
        statuses.append(alice.status)
    assert statuses[:3] == [200, 200, 200]
    assert statuses[-1] == 429
    assert body["errcode"] == "M_LIMIT_EXCEEDED" and body["retry_after_ms"] > 0


def test_cors_preflight_is_answered(node: NodeProcess) -> None:
    client = node.client()
    client.request("OPTIONS", f"{V3}/sync")
    assert client.status == 200
    assert client.last_response.headers["Access-Control-Allow-Origin"] == "*"
