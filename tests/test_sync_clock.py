"""The /sync long-poll, in process on a fake clock: pending until news or its timeout.

These drive a real node's sync handler and notifier with ``MemoryReactorClock``
(``tests/inprocess_node.py``): no request waits for real time, and "still pending" is a plain
check that the Deferred has not fired.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from broker.auth import Requester
from broker.filtering import Filter
from broker.sync.handler import SyncRequest
from broker.sync.tokens import SyncToken
from tests.inprocess_node import InProcessNode

TIMEOUT_MS = 30_000


def _sync(local: InProcessNode, requester: Requester, since: str | None = None,
          timeout_ms: int = 0) -> defer.Deferred[dict[str, Any]]:
    request = SyncRequest(requester, SyncToken.parse(since) if since else None, Filter(),
                          timeout_ms=timeout_ms)
    return local.start(local.node.sync.sync(request))


def _answer(sync: defer.Deferred[dict[str, Any]]) -> dict[str, Any] | None:
    """The sync's body if it has been answered, else None (still pending)."""
    answered: list[dict[str, Any]] = []
    sync.addCallback(lambda body: answered.append(body) or body)
    return answered[0] if answered else None


def _set_account_data(local: InProcessNode, user_id: str, data_type: str) -> None:
    store = local.node.stores.account_data
    local.run(local.node.streams.write(
        lambda stream_id: store.set_account_data(user_id, "", data_type, {"n": 1}, stream_id),
        users=[user_id]))


def test_long_poll_is_pending_until_its_timeout(local: InProcessNode) -> None:
    alice, _ = local.register("alice")
    since = _answer(_sync(local, alice))
    assert since is not None
    waiting = _sync(local, alice, since["next_batch"], TIMEOUT_MS)
    local.advance(TIMEOUT_MS / 1000 - 0.001)
    assert _answer(waiting) is None


def test_long_poll_is_answered_empty_when_its_timeout_passes(local: InProcessNode) -> None:
    alice, _ = local.register("alice")
    since = _answer(_sync(local, alice))
    assert since is not None
    waiting = _sync(local, alice, since["next_batch"], TIMEOUT_MS)
    local.advance(TIMEOUT_MS / 1000)
    body = _answer(waiting)
    assert body is not None
    assert body["next_batch"] == since["next_batch"]
    assert (body["rooms"]["join"], body["account_data"]["events"]) == ({}, [])


def test_long_poll_is_answered_by_news_before_its_timeout(local: InProcessNode) -> None:
    alice, _ = local.register("alice")
    since = _answer(_sync(local, alice))
    assert since is not None
    waiting = _sync(local, alice, since["next_batch"], TIMEOUT_MS)
    local.advance(1)
    assert _answer(waiting) is None
    _set_account_data(local, alice.user_id, "org.example.news")
    local.advance(0)  # waiters are woken from the next reactor turn on
    body = _answer(waiting)
    assert body is not None
    assert [e["type"] for e in body["account_data"]["events"]] == ["org.example.news"]


def test_long_poll_is_not_answered_by_news_of_another_user(local: InProcessNode) -> None:
    (alice, _), (bob, _) = local.register("alice"), local.register("bob")
    since = _answer(_sync(local, alice))
    assert since is not None
    waiting = _sync(local, alice, since["next_batch"], TIMEOUT_MS)
    _set_account_data(local, bob.user_id, "org.example.news")
    assert _answer(waiting) is None


def test_sync_without_timeout_is_answered_at_once(local: InProcessNode) -> None:
    alice, _ = local.register("alice")
    since = _answer(_sync(local, alice))
    assert since is not None
    assert _answer(_sync(local, alice, since["next_batch"], 0)) is not None
