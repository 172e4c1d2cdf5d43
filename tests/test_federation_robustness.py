"""Federation input that used to fail with a 5xx or lose an event, sent by a signed fake peer to
a real node on both engines: malformed user IDs in join/leave templates, JSON that is not Unicode
text, the same event received several times at once, and remote events arriving while local
users keep the room busy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests

from protocol.events import Event
from tests.fake_peer import FED_V1, FakePeer
from tests.peer_env import (
    ENGINES,
    Env,
    Joined,
    assert_error,
    bodies_seen,
    join_public_room,
    peer_env,
    view,
)
from tests.room_helpers import send_text


@pytest.fixture(scope="module", params=ENGINES)
def env(request: Any, tmp_path_factory: Any) -> Iterator[Env]:
    with peer_env(tmp_path_factory.mktemp("robustness"), request.param) as running:
        yield running


@pytest.fixture
def joined(env: Env) -> Joined:
    return join_public_room(env)


# Join and leave templates ---------------------------------------------------------------------
@pytest.mark.parametrize("membership", ["make_join", "make_leave"])
@pytest.mark.parametrize("user_id", ["@nocolon", "@nobody:", "nosigil:127.0.0.1:1",
                                     "@:127.0.0.1:1"])
def test_template_for_a_malformed_user_id_is_invalid_param(env: Env, joined: Joined,
                                                           membership: str, user_id: str
                                                           ) -> None:
    before = view(joined)
    path = f"{FED_V1}/{membership}/{quote(joined.room_id, safe='')}/{quote(user_id, safe='')}"
    response = env.peer.request(env.node, "GET", path, params={"ver": ["12"]})
    assert_error(response, 400, "M_INVALID_PARAM")
    assert view(joined) == before


# Transactions that are not Unicode text -------------------------------------------------------
def test_transaction_with_a_lone_surrogate_is_refused_whole(env: Env, joined: Joined) -> None:
    before = view(joined)
    good = env.peer.message(joined.room, joined.remote_user, "a good neighbour")
    bad = env.peer.message(joined.room, joined.remote_user, "SURROGATE")
    body = env.peer.transaction([good, bad])
    txn_id = env.peer.next_txn_id()
    header = env.peer.authorization(env.node.server_name, "PUT", f"{FED_V1}/send/{txn_id}",
                                    body)
    raw = json.dumps(body).encode("utf-8").replace(b"SURROGATE", b"\\ud800")
    response = env.peer.send_transaction(env.node, body, txn_id, raw=raw,
                                         authorization=header)
    assert response.status_code == 400, response.text
    assert response.json()["errcode"] in ("M_NOT_JSON", "M_BAD_JSON")
    assert view(joined) == before


# The same event, several times at once --------------------------------------------------------
def send_concurrently(env: Env, event: Event, count: int) -> list[requests.Response]:
    """``event`` in ``count`` transactions of the peer, sent from threads released together."""
    barrier = threading.Barrier(count)

    def send(_: int) -> requests.Response:
        sender = FakePeer(env.peer.server_name)
        sender.signing_key = env.peer.signing_key
        body = sender.transaction([event])
        barrier.wait()
        return sender.send_transaction(env.node, body)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(send, range(count)))


def test_the_same_event_in_concurrent_transactions_is_stored_once(env: Env,
                                                                   joined: Joined) -> None:
    peer, node = env.peer, env.node
    log_start = len(node.log())
    bodies = [f"sent eight times at once {i}" for i in range(5)]
    for body in bodies:
        message = peer.message(joined.room, joined.remote_user, body)
        answers = send_concurrently(env, message, 8)
        assert [(a.status_code, a.json()) for a in answers] == \
            [(200, {"pdus": {message.event_id: {}}})] * 8
        joined.room.track(message)
    seen = bodies_seen(joined)
    assert [seen.count(body) for body in bodies] == [1] * len(bodies)
    assert not [line for line in node.log()[log_start:].splitlines()
                if "UNIQUE" in line or "duplicate key" in line]
    # The room still takes the next event from the peer on top of them.
    after = peer.message(joined.room, joined.remote_user, "and the next one")
    assert peer.send_pdus(node, joined.room, after) == {after.event_id: {}}
    assert bodies_seen(joined)[0] == "and the next one"


# Remote events while the room is busy ---------------------------------------------------------
def test_remote_events_are_accepted_while_local_users_keep_sending(env: Env,
                                                                   joined: Joined) -> None:
    peer, node = env.peer, env.node
    stop = threading.Event()
    sent: list[str] = []

    def keep_sending() -> None:
        while not stop.is_set():
            sent.append(send_text(joined.local, joined.room_id, f"local {len(sent)}"))

    senders = [threading.Thread(target=keep_sending) for _ in range(4)]
    for thread in senders:
        thread.start()
    try:
        results = {}
        # Each remote event follows only the peer's own previous event: it forks from the
        # local messages sent meanwhile and takes the path that resolves the room's state.
        for i in range(10):
            event = peer.message(joined.room, joined.remote_user, f"remote {i}")
            results.update(peer.send_pdus(node, joined.room, event))
    finally:
        stop.set()
        for thread in senders:
            thread.join()
    assert all(result == {} for result in results.values()), results
    seen = bodies_seen(joined, whole_history=True)
    assert {f"remote {i}" for i in range(10)} <= set(seen)
