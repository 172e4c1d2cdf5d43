"""An application service's queue on a node whose clock only the test moves: failed
transactions retried after 1, 2, 4... seconds up to the cap, the same transaction each time,
a service that comes back receiving its backlog, one that hangs holding back no other, the
memory limit of ephemeral data, and the position kept across a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.appservice.client import AppServiceClient
from broker.appservice.interest import Interest
from broker.appservice.queue import ServiceQueue
from broker.appservice.registration import Registration, parse_registration
from broker.errors import Unavailable
from storage.appservice import AppServiceStore
from tests.appservice_helpers import registration_file
from tests.inprocess_node import InProcessNode
from tests.storage_helpers import result_of


class Service:
    """The transport to a service as the queue sees it: it records each transaction and
    refuses them while ``down``."""

    def __init__(self, clock: Any, *, down: bool = False) -> None:
        self.down = down
        self.attempts: list[tuple[float, str, dict[str, Any]]] = []
        self.clock = clock

    async def push(self, service: Registration, txn_id: str, body: dict[str, Any]) -> None:
        self.attempts.append((self.clock.time(), txn_id, body))
        if self.down:
            raise Unavailable(f"{service.id} answered status 500", errcode="M_BAD_STATUS")

    def bodies(self) -> list[str]:
        return [e["content"]["body"] for _t, _i, body in self.attempts
                for e in body["events"] if e["type"] == "m.room.message"]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[InProcessNode]:
    running = InProcessNode(tmp_path)
    try:
        yield running
    finally:
        running.close()


def registration(node: InProcessNode, folder: Path, service_id: str, prefix: str
                 ) -> Registration:
    path = registration_file(folder, service_id, url="http://127.0.0.1:9", prefix=prefix,
                             server_name=node.node.server_name)
    return parse_registration(yaml.safe_load(path.read_text()), path, node.node.server_name)


def queue_for(node: InProcessNode, service: Registration, transport: Any,
              **options: Any) -> ServiceQueue:
    n = node.node
    assert n.stream is not None
    queue = ServiceQueue(service, transport, AppServiceStore(n.db),
                         Interest(n.rooms.registry.get), n.client_events.serialize, n.clock,
                         n.stream.current_token, **options)
    n.rooms.persisted_listeners.append(lambda items: (queue.events_written(items),
                                                      queue.wake()))
    node.run(queue.start())
    return queue


def room_with_ghost(node: InProcessNode, ghost_localpart: str) -> tuple[str, str]:
    """A room of ``owner`` that the service's user joined; the room and the owner's token."""
    room_id, owner_token, _ = node.room_with_members(0, "bridged")
    join_ghost(node, room_id, ghost_localpart)
    return room_id, owner_token


def join_ghost(node: InProcessNode, room_id: str, localpart: str) -> None:
    ghost = node.node.user_id(localpart)
    result_of(node.node.stores.users.create_user(ghost, None, node.node.clock.time_ms()))
    node.settle(node.node.membership.join(room_id, ghost))


def say(node: InProcessNode, room_id: str, token: str, body: str) -> None:
    status, answer = node.call("PUT", f"/_matrix/client/v3/rooms/{room_id}/send/"
                               f"m.room.message/{body.replace(' ', '-')}", token,
                               {"msgtype": "m.text", "body": body})
    assert status == 200, answer


def test_a_failed_transaction_is_retried_after_doubling_delays_up_to_the_cap(
        node: InProcessNode, tmp_path: Path) -> None:
    transport = Service(node.node.clock, down=True)
    queue = queue_for(node, registration(node, tmp_path, "bridge", "bridge"), transport,
                      max_backoff_s=8)
    room_id, token = room_with_ghost(node, "bridge_ghost")
    say(node, room_id, token, "hello")
    start = transport.attempts[0][0]
    for _ in range(60):
        node.advance(1)
    delays = [round(t - start) for t, _i, _b in transport.attempts]
    assert delays[:7] == [0, 1, 3, 7, 15, 23, 31]  # 1, 2, 4, 8, then 8 (the cap) apart
    assert queue.health.state == "backing_off" and queue.health.failures_in_a_row >= 7


def test_the_retry_is_the_same_transaction_and_a_returning_service_gets_the_backlog(
        node: InProcessNode, tmp_path: Path) -> None:
    transport = Service(node.node.clock)
    queue = queue_for(node, registration(node, tmp_path, "bridge", "bridge"), transport)
    room_id, token = room_with_ghost(node, "bridge_ghost")
    transport.down = True
    before = len(transport.attempts)
    say(node, room_id, token, "first")
    say(node, room_id, token, "second")  # waits in the log behind the failed transaction
    node.advance(1)
    refused = [(i, b) for _t, i, b in transport.attempts[before:]]
    assert len(refused) == 2 and refused[0] == refused[1]  # the same id and body again
    transport.down = False
    node.advance(2)
    ids = [i for _t, i, _b in transport.attempts[before:]]
    # The refused transaction (with "first" alone) until taken, then one with "second".
    assert ids == [refused[0][0]] * (len(ids) - 1) + [str(int(refused[0][0]) + 1)]
    assert transport.bodies()[-2:] == ["first", "second"]
    assert queue.health.state == "up" and queue.health.failures_in_a_row == 0


def test_a_hanging_service_holds_back_no_other(node: InProcessNode, tmp_path: Path) -> None:
    # The real HTTP client on the test's reactor: the connection never completes.
    hanging = queue_for(node, registration(node, tmp_path, "hanging", "hang"),
                        AppServiceClient(node.reactor, timeout_s=30))
    healthy_transport = Service(node.node.clock)
    healthy = queue_for(node, registration(node, tmp_path, "healthy", "ok"), healthy_transport)
    room_id, token = room_with_ghost(node, "hang_ghost")
    join_ghost(node, room_id, "ok_ghost")
    say(node, room_id, token, "to both")
    assert "to both" in healthy_transport.bodies()  # at once, the other still waiting
    assert hanging.health.state == "up" and hanging.health.failures_in_a_row == 0
    node.advance(30)  # its deadline passes
    assert hanging.health.state == "backing_off"
    assert "did not answer within 30s" in (hanging.health.last_error or "")
    say(node, room_id, token, "again")
    assert "again" in healthy_transport.bodies()
    assert healthy.health.state == "up"


def test_ephemeral_data_beyond_the_memory_limit_drops_the_oldest_and_counts_them(
        node: InProcessNode, tmp_path: Path) -> None:
    transport = Service(node.node.clock, down=True)
    queue = queue_for(node, registration(node, tmp_path, "bridge", "bridge"), transport,
                      memory_limit=3)
    for i in range(5):
        queue.add_ephemeral({"type": "m.typing", "room_id": f"!r{i}:x", "content": {}})
    # The first went out at once (and waits to be retried); of the four after it, the
    # oldest was dropped.
    [(_t, _i, in_flight)] = transport.attempts
    assert [e["room_id"] for e in in_flight["ephemeral"]] == ["!r0:x"]
    assert [e["room_id"] for e in queue.ephemeral] == ["!r2:x", "!r3:x", "!r4:x"]
    assert queue.health.dropped == {"ephemeral": 1, "to_device": 0}


def test_the_position_is_kept_across_a_restart(node: InProcessNode, tmp_path: Path) -> None:
    service = registration(node, tmp_path, "bridge", "bridge")
    first = Service(node.node.clock)
    queue = queue_for(node, service, first)
    room_id, token = room_with_ghost(node, "bridge_ghost")
    say(node, room_id, token, "before the restart")
    queue.stop()
    node.node.rooms.persisted_listeners.clear()
    after = Service(node.node.clock)
    again = queue_for(node, service, after)
    assert again.position == queue.position and again.last_txn_id == queue.last_txn_id
    say(node, room_id, token, "after the restart")
    assert after.bodies() == ["after the restart"]
    assert int(after.attempts[0][1]) == queue.last_txn_id + 1


def test_events_beyond_the_memory_limit_are_read_back_from_the_log(
        node: InProcessNode, tmp_path: Path) -> None:
    transport = Service(node.node.clock)
    queue = queue_for(node, registration(node, tmp_path, "bridge", "bridge"), transport,
                      memory_limit=3)
    room_id, token = room_with_ghost(node, "bridge_ghost")
    transport.down = True
    sent = [f"message {i}" for i in range(8)]
    for body in sent:
        say(node, room_id, token, body)
    transport.down = False
    node.advance(60)
    assert [b for b in dict.fromkeys(transport.bodies()) if b in sent] == sent  # all, in order
    assert queue.health.state == "up" and queue.position == node.node.stream.current_token()
