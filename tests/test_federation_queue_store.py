"""The durable outbound federation queue (storage/federation_queue.py), on both engines."""

from __future__ import annotations

from storage.database import Database
from storage.federation_queue import DestinationState, FederationQueueStore, NewEdu, NewPdu
from tests.storage_helpers import result_of


def _pdu(n: int) -> dict:
    return {"type": "m.room.message", "content": {"body": f"message {n} ✓"}, "depth": n}


def _queue_pdus(store: FederationQueueStore, destination: str, count: int) -> None:
    result_of(store.enqueue([NewPdu(destination, f"$e{n}", _pdu(n)) for n in range(count)]))


def test_positions_follow_the_order_of_items_across_transactions(database: Database) -> None:
    store = FederationQueueStore(database)
    first = result_of(store.enqueue([NewPdu("a.example", "$1", _pdu(1)),
                                     NewPdu("b.example", "$1", _pdu(1))]))
    second = result_of(store.enqueue([NewPdu("a.example", "$2", _pdu(2))]))
    assert second == first + 1
    batch = result_of(store.get_batch("a.example"))
    assert [p.position for p in batch.pdus] == [first - 1, second]


def test_enqueueing_nothing_allocates_no_position(database: Database) -> None:
    store = FederationQueueStore(database)
    assert result_of(store.enqueue([], [])) == 0
    assert result_of(store.enqueue([NewPdu("a.example", "$1", _pdu(1))])) == 1


def test_batch_is_the_oldest_items_within_the_limits(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 7)
    result_of(store.enqueue([], [NewEdu("a.example", "m.direct_to_device", {"n": n})
                                 for n in range(5)]))
    batch = result_of(store.get_batch("a.example", pdu_limit=3, edu_limit=2))
    assert [p.event_id for p in batch.pdus] == ["$e0", "$e1", "$e2"]
    assert [e.content["n"] for e in batch.edus] == [0, 1]


def test_pdu_json_round_trips(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 1)
    assert result_of(store.get_batch("a.example")).pdus[0].pdu == _pdu(0)


def test_batch_only_holds_the_destinations_items(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 2)
    _queue_pdus(store, "b.example", 3)
    assert len(result_of(store.get_batch("a.example")).pdus) == 2
    assert not result_of(store.get_batch("c.example"))


def test_ack_deletes_only_the_acknowledged_rows(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 3)
    batch = result_of(store.get_batch("a.example", pdu_limit=2))
    # Something committed while the transaction was in flight must survive the ack.
    _queue_pdus(store, "a.example", 1)
    result_of(store.ack_transaction("a.example", [p.position for p in batch.pdus], []))
    remaining = result_of(store.get_batch("a.example")).pdus
    assert [p.event_id for p in remaining] == ["$e2", "$e0"]


def test_ack_leaves_other_destinations_alone(database: Database) -> None:
    store = FederationQueueStore(database)
    result_of(store.enqueue([NewPdu("a.example", "$x", _pdu(1)),
                             NewPdu("b.example", "$x", _pdu(1))]))
    batch = result_of(store.get_batch("a.example"))
    result_of(store.ack_transaction("a.example", [p.position for p in batch.pdus], []))
    assert len(result_of(store.get_batch("b.example")).pdus) == 1


def test_ack_advances_last_acked_position_and_clears_retry_state(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 2)
    result_of(store.set_retry("a.example", 1000, 5000, 3))
    batch = result_of(store.get_batch("a.example"))
    positions = [p.position for p in batch.pdus]
    result_of(store.ack_transaction("a.example", positions, []))
    assert result_of(store.get_destination("a.example")) == DestinationState(
        "a.example", last_acked_position=max(positions)
    )


def test_last_acked_position_never_goes_back(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 2)
    first, second = result_of(store.get_batch("a.example")).pdus
    result_of(store.ack_transaction("a.example", [second.position], []))
    result_of(store.ack_transaction("a.example", [first.position], []))
    state = result_of(store.get_destination("a.example"))
    assert state is not None and state.last_acked_position == second.position


def test_positions_keep_growing_once_the_queue_is_empty(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 2)
    batch = result_of(store.get_batch("a.example"))
    result_of(store.ack_transaction("a.example", [p.position for p in batch.pdus], []))
    _queue_pdus(store, "a.example", 1)
    new = result_of(store.get_batch("a.example")).pdus[0]
    assert new.position > max(p.position for p in batch.pdus)


def test_keyed_persistent_edu_replaces_the_pending_one(database: Database) -> None:
    store = FederationQueueStore(database)
    result_of(store.enqueue([], [
        NewEdu("a.example", "m.device_list_update", {"v": 1}, key="@u:here"),
        NewEdu("a.example", "m.device_list_update", {"v": 1}, key="@w:here"),
        NewEdu("b.example", "m.device_list_update", {"v": 1}, key="@u:here"),
    ]))
    result_of(store.enqueue([], [
        NewEdu("a.example", "m.device_list_update", {"v": 2}, key="@u:here"),
    ]))
    edus = result_of(store.get_batch("a.example")).edus
    assert [(e.key, e.content["v"]) for e in edus] == [("@w:here", 1), ("@u:here", 2)]
    assert len(result_of(store.get_batch("b.example")).edus) == 1


def test_unkeyed_persistent_edus_accumulate(database: Database) -> None:
    store = FederationQueueStore(database)
    for n in range(3):
        result_of(store.enqueue([], [NewEdu("a.example", "m.direct_to_device", {"n": n})]))
    assert len(result_of(store.get_batch("a.example")).edus) == 3


def test_ack_deletes_acknowledged_edus(database: Database) -> None:
    store = FederationQueueStore(database)
    result_of(store.enqueue([], [NewEdu("a.example", "m.direct_to_device", {"n": n})
                                 for n in range(3)]))
    batch = result_of(store.get_batch("a.example", edu_limit=2))
    result_of(store.ack_transaction("a.example", [], [e.position for e in batch.edus]))
    assert [e.content["n"] for e in result_of(store.get_batch("a.example")).edus] == [2]


def test_retry_state_is_persisted(database: Database) -> None:
    store = FederationQueueStore(database)
    result_of(store.set_retry("a.example", 1_000, 20_000, 3))
    state = result_of(store.get_destination("a.example"))
    assert state == DestinationState("a.example", 0, 1_000, 20_000, 3)
    assert state is not None and state.retry_due_ts() == 21_000


def test_unknown_destination_has_no_state(database: Database) -> None:
    assert result_of(FederationQueueStore(database).get_destination("a.example")) is None


def test_destinations_with_pending_lists_those_with_items(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 1)
    result_of(store.enqueue([], [NewEdu("b.example", "m.direct_to_device", {})]))
    _queue_pdus(store, "c.example", 1)
    batch = result_of(store.get_batch("c.example"))
    result_of(store.ack_transaction("c.example", [p.position for p in batch.pdus], []))
    result_of(store.set_retry("a.example", 5, 10, 1))
    states = result_of(store.destinations_with_pending())
    assert [s.destination for s in states] == ["a.example", "b.example"]
    assert states[0].failure_count == 1


def test_pending_counts(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 3)
    result_of(store.enqueue([], [NewEdu("a.example", "m.direct_to_device", {})]))
    assert result_of(store.pending_counts("a.example")) == (3, 1)
    assert result_of(store.pending_counts("b.example")) == (0, 0)


def test_purge_drops_everything_queued_for_the_destination(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 3)
    _queue_pdus(store, "b.example", 1)
    result_of(store.enqueue([], [NewEdu("a.example", "m.direct_to_device", {})]))
    assert result_of(store.purge_destination("a.example")) == (3, 1)
    assert result_of(store.pending_counts("a.example")) == (0, 0)
    assert result_of(store.pending_counts("b.example")) == (1, 0)


def test_queue_depths_count_each_destinations_pdus_and_edus(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 3)
    _queue_pdus(store, "b.example", 1)
    result_of(store.enqueue([], [NewEdu("b.example", "m.direct_to_device", {"n": 1}),
                                 NewEdu("c.example", "m.direct_to_device", {"n": 2})]))
    assert result_of(store.queue_depths()) == {
        "a.example": (3, 0), "b.example": (1, 1), "c.example": (0, 1)}


def test_queue_depths_leave_out_destinations_with_nothing_queued(database: Database) -> None:
    store = FederationQueueStore(database)
    _queue_pdus(store, "a.example", 1)
    batch = result_of(store.get_batch("a.example"))
    result_of(store.ack_transaction("a.example", [p.position for p in batch.pdus], []))
    assert result_of(store.queue_depths()) == {}
