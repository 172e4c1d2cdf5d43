"""What the outbound federation queue owes a server for longer than the maximum age
(``retention.federation_queue_max_age``) is deleted and counted, never sent late: the store
leaves such entries out of a batch and deletes them, and the sender neither sends them to a
server that comes back nor keeps them past its hourly expiry; both engines."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from federation.sender.expiry import EXPIRY_INTERVAL_S
from storage.database import Database
from storage.federation_queue import FederationQueueStore, NewEdu, NewPdu
from tests.storage_helpers import result_of
from tests.test_federation_sender import Harness

DAY_MS = 86_400_000
T0 = 1_700_000_000_000


def pdu(n: int) -> NewPdu:
    return NewPdu("a.example", f"$e{n}", {"event_id": f"$e{n}"})


def edu(n: int) -> NewEdu:
    return NewEdu("a.example", "m.direct_to_device", {"n": n})


def queued(database: Database) -> FederationQueueStore:
    """A queue holding $e0 and an EDU queued at T0, and $e1 and another a day later."""
    store = FederationQueueStore(database)
    result_of(store.enqueue([pdu(0)], [edu(0)], T0))
    result_of(store.enqueue([pdu(1)], [edu(1)], T0 + DAY_MS))
    return store


def test_a_batch_leaves_out_what_was_queued_before_the_cut_off(database: Database) -> None:
    batch = result_of(queued(database).get_batch("a.example", queued_since=T0 + 1))
    assert ([p.event_id for p in batch.pdus], [e.content["n"] for e in batch.edus]) == (
        ["$e1"], [1])


def test_expiry_deletes_and_counts_only_what_was_queued_before_the_cut_off(
        database: Database) -> None:
    store = queued(database)
    assert result_of(store.expire_queued(T0 + 1, T0 + DAY_MS)) == (1, 1)
    assert result_of(store.pending_counts("a.example")) == (1, 1)


def test_entries_queued_without_a_time_expire_a_max_age_after_the_first_expiry_run(
        database: Database) -> None:
    store = FederationQueueStore(database)
    result_of(store.enqueue([pdu(0)]))  # as queued before queue times were kept
    assert result_of(store.expire_queued(T0, T0)) == (0, 0)
    assert result_of(store.expire_queued(T0 + 1, T0 + DAY_MS)) == (1, 0)


def unreachable_for(h: Harness, seconds: float) -> None:
    """$e0 queued for a.example, which refuses connections, then ``seconds`` pass."""
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.reactor.advance(seconds)


def test_a_server_coming_back_after_the_max_age_is_not_sent_what_expired(
        database: Database) -> None:
    h = Harness(database, max_queue_age_ms=DAY_MS)
    unreachable_for(h, DAY_MS / 1000 + 1)  # the retry falls due past the max age
    h.enqueue(1, ["a.example"], first=1)
    sent = [c.event_ids for c in h.transport.to("a.example")]
    assert sent == [["$e0"], ["$e1"]]


def test_a_server_coming_back_within_the_max_age_is_sent_everything(
        database: Database) -> None:
    h = Harness(database, max_queue_age_ms=DAY_MS)
    unreachable_for(h, DAY_MS / 1000 - 3600)
    assert h.drain("a.example") == ["$e0"]


def test_the_sender_deletes_and_counts_what_expired_every_hour(database: Database) -> None:
    h = Harness(database, max_queue_age_ms=DAY_MS)
    result_of(defer.ensureDeferred(h.sender.start()))
    unreachable_for(h, DAY_MS / 1000 + EXPIRY_INTERVAL_S)
    assert h.pending("a.example") == (0, 0)
    expiry: Any = h.sender.expiry
    assert (expiry.counts.pdus, expiry.counts.edus) == (1, 0)
    h.sender.stop()


def test_without_a_max_age_nothing_expires(database: Database) -> None:
    h = Harness(database)
    unreachable_for(h, 30 * DAY_MS / 1000)
    assert h.drain("a.example")[-1:] == ["$e0"]


def test_the_pdus_of_a_transaction_pass_the_outgoing_hook(database: Database) -> None:
    h = Harness(database)
    h.sender.set_outgoing_pdus(lambda pdus: [{**p, "content": {}} for p in pdus])
    h.enqueue(1, ["a.example"])
    assert h.transport.last("a.example").body["pdus"][0]["content"] == {}
