"""How far each user's devices have confirmed receiving the stream (broker/sync_progress.py):
a /sync with ``since`` at P says a device received everything up to P.  Memory on the sync path,
written in batches every FLUSH_SECONDS and read back after a restart; both engines."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.sync.tokens import SyncToken
from broker.sync_progress import FLUSH_SECONDS, SyncProgress
from storage.database import Database
from storage.sync_progress import SyncProgressStore
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for
from tests.storage_helpers import result_of

V3 = "/_matrix/client/v3"

engine = engines()


def progress_over(database: Database) -> SyncProgress:
    return SyncProgress(SyncProgressStore(database), lambda room_id: None)


# -- the store -----------------------------------------------------------------------------------
def test_a_kept_position_only_grows(database: Database) -> None:
    store = SyncProgressStore(database)
    result_of(store.write({"@a:x": 10, "@b:x": 3}))
    result_of(store.write({"@a:x": 7, "@b:x": 5}))
    assert result_of(store.load()) == {"@a:x": 10, "@b:x": 5}


# -- memory --------------------------------------------------------------------------------------
def test_a_user_who_never_synced_with_a_token_is_at_zero(database: Database) -> None:
    assert progress_over(database).synced_upto("@a:x") == 0


def test_the_highest_since_is_kept_and_listeners_hear_only_growth(database: Database) -> None:
    progress = progress_over(database)
    heard: list[tuple[str, int]] = []
    progress.add_listener(lambda user_id, position: heard.append((user_id, position)))
    for since in (5, 9, 9, 4):
        progress.synced("@a:x", since)
    assert progress.synced_upto("@a:x") == 9
    assert heard == [("@a:x", 5), ("@a:x", 9)]


def test_a_failing_listener_does_not_stop_the_others(database: Database) -> None:
    progress = progress_over(database)
    heard: list[int] = []

    def broken(user_id: str, position: int) -> None:
        raise RuntimeError("broken listener")

    progress.add_listener(broken)
    progress.add_listener(lambda user_id, position: heard.append(position))
    progress.synced("@a:x", 3)
    assert heard == [3]


def test_positions_are_written_after_the_interval_and_read_back(database: Database) -> None:
    progress = progress_over(database)
    reactor = FakeReactor()
    progress.start(reactor)
    progress.synced("@a:x", 12)
    reactor.advance(FLUSH_SECONDS - 0.01)
    assert result_of(progress.store.load()) == {}
    reactor.advance(0.01)
    assert result_of(progress.store.load()) == {"@a:x": 12}
    again = progress_over(database)
    result_of(defer.ensureDeferred(again.load()))
    assert again.synced_upto("@a:x") == 12


def test_the_last_positions_are_written_at_shutdown(database: Database) -> None:
    progress = progress_over(database)
    progress.synced("@a:x", 4)
    result_of(progress.stop())
    assert result_of(progress.store.load()) == {"@a:x": 4}


# -- through the node's /sync --------------------------------------------------------------------
def sync(local: InProcessNode, token: str, since: str | None = None) -> dict[str, Any]:
    args = {"timeout": "0"} | ({"since": since} if since else {})
    query = "&".join(f"{k}={quote(v)}" for k, v in args.items())
    status, body = local.call("GET", f"{V3}/sync?{query}", token)
    assert status == 200, body
    return dict(body)


def test_an_initial_sync_confirms_nothing_and_the_next_confirms_its_token(
        engine: Engine) -> None:
    local = engine.node()
    bob, token = local.register("bob")
    progress = local.node.delivery.progress
    first = sync(local, token)
    assert progress.synced_upto(bob.user_id) == 0
    sync(local, token, first["next_batch"])
    assert progress.synced_upto(bob.user_id) == SyncToken.parse(first["next_batch"]).stream


def test_a_token_from_the_future_confirms_only_the_current_position(engine: Engine) -> None:
    local = engine.node()
    bob, token = local.register("bob")
    current = local.node.stream.current_token() if local.node.stream else 0
    sync(local, token, f"s{current + 1000}_0")
    assert local.node.delivery.progress.synced_upto(bob.user_id) == current


def test_a_restarted_node_keeps_what_users_confirmed(engine: Engine) -> None:
    local = engine.node()
    bob, token = local.register("bob")
    since = sync(local, token)["next_batch"]
    sync(local, token, since)
    result_of(local.node.delivery.progress.stop())
    again = engine.restart(local)
    again.run(again.node.delivery.progress.load())
    assert again.node.delivery.progress.synced_upto(bob.user_id) == \
        SyncToken.parse(since).stream


def test_an_event_position_is_its_stream_ordering_from_memory(engine: Engine) -> None:
    local = engine.node()
    _, token = local.register("alice")
    status, answer = local.call("POST", f"{V3}/createRoom", token, {})
    room_id = answer["room_id"]
    status, sent = local.call("PUT", f"{V3}/rooms/{quote(room_id)}/send/m.room.message/t1",
                              token, {"msgtype": "m.text", "body": "hi"})
    run_for(local, 0)
    stored = result_of(local.node.stores.events.get_stream_ordering(sent["event_id"]))
    progress = local.node.delivery.progress
    assert progress.position_of(room_id, sent["event_id"]) == stored
    assert progress.position_of(room_id, "$unknown") is None
    assert progress.position_of("!nowhere:x", sent["event_id"]) is None
