"""What changed of a user's attestation while the node was stopped is restated at its next start
(broker/restatements.py over storage/attested_users.py), on both engines: the node keeps what
it last attested of each user, restates at start only the users whose attestation differs
now (revoked, expired, verified or moved meanwhile, in an official group or not), in batches
that yield to the reactor, and records each restatement.

The rooms are a recorder of the restatements asked (restating itself, and other nodes seeing
it, are tested across real nodes in test_federation_attestation.py); the clock is a fake
reactor's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.admin.classes import UserClasses
from broker.clock import Clock
from broker.restatements import BATCH, AttestedUsers
from storage.accounts import VerificationRow
from storage.attested_users import AttestedUserStore
from storage.database import Database
from tests.storage_helpers import result_of

HERE = "here.test"
VERA = f"@vera:{HERE}"
PAT = f"@pat:{HERE}"
START = 1_000_000.0


class RestatedRooms:
    """The rooms' side: which users' joins were restated, failing for those in ``failing``."""

    def __init__(self) -> None:
        self.restated: list[str] = []
        self.failing: set[str] = set()

    def is_mine(self, user_id: str) -> bool:
        return user_id.endswith(f":{HERE}")

    async def restate_memberships(self, user_id: str) -> list[str]:
        if user_id in self.failing:
            raise ConnectionError("database away")
        self.restated.append(user_id)
        return ["!room:here.test"]


def verification(user_id: str, org_id: str = "mha", *, at: int = 5,
                 expires: int | None = None) -> VerificationRow:
    return VerificationRow(f"v-{user_id}-{org_id}-{at}", user_id, org_id, "document", "@root",
                           at, expires)


def started(database: Database, *verified: VerificationRow
            ) -> tuple[AttestedUsers, RestatedRooms, FakeReactor]:
    """A node's start: its class cache holds ``verified``; what it attested before is in
    ``database``."""
    reactor = FakeReactor()
    reactor.advance(START)
    classes = UserClasses(SimpleNamespace(), Clock(reactor))  # type: ignore[arg-type]
    for row in verified:
        classes.verified(row)
    rooms = RestatedRooms()
    attested = AttestedUsers(rooms, classes, AttestedUserStore(database),  # type: ignore[arg-type]
                             Clock(reactor))
    return attested, rooms, reactor


def check(attested: AttestedUsers) -> list[str]:
    return list(result_of(defer.ensureDeferred(attested.check_at_start())))


def kept(database: Database) -> dict[str, Any]:
    return dict(result_of(AttestedUserStore(database).all()))


def test_a_user_revoked_while_the_node_was_stopped_is_restated_at_start(
        database: Database) -> None:
    check(started(database, verification(VERA))[0])  # the node ran with vera verified
    attested, rooms, _ = started(database)  # revoked meanwhile
    assert check(attested) == [VERA] and rooms.restated == [VERA]
    assert kept(database) == {}


def test_a_verification_that_expired_while_the_node_was_stopped_is_restated(
        database: Database) -> None:
    check(started(database, verification(VERA, expires=int(START * 1000) + 1))[0])
    attested, rooms, _ = started(database, verification(VERA, expires=int(START * 1000)))
    assert check(attested) == [VERA]


def test_a_user_verified_or_moved_while_the_node_was_stopped_is_restated(
        database: Database) -> None:
    check(started(database, verification(VERA))[0])
    attested, rooms, _ = started(database, verification(VERA, "mea", at=9),
                                 verification(PAT))
    assert sorted(check(attested)) == sorted([PAT, VERA])
    assert kept(database) == {VERA: ("mea", 9), PAT: ("mha", 5)}


def test_a_user_whose_attestation_did_not_change_is_not_restated(database: Database) -> None:
    check(started(database, verification(VERA))[0])
    attested, rooms, _ = started(database, verification(VERA))
    assert (check(attested), rooms.restated) == ([], [])


def test_a_user_whose_restating_failed_is_restated_at_the_next_start(
        database: Database) -> None:
    check(started(database, verification(VERA))[0])
    attested, rooms, _ = started(database)
    rooms.failing.add(VERA)
    assert check(attested) == []
    attested, rooms, _ = started(database)
    assert check(attested) == [VERA]


def test_users_are_restated_in_batches_that_yield_to_the_reactor(database: Database) -> None:
    users = [f"@u{n:04d}:{HERE}" for n in range(BATCH + 1)]
    result_of(AttestedUserStore(database).record(dict.fromkeys(users, ("mha", 5))))
    attested, rooms, reactor = started(database)  # all revoked meanwhile
    d = defer.ensureDeferred(attested.check_at_start())
    assert (len(rooms.restated), d.called) == (BATCH, False)
    reactor.advance(0)
    assert (len(rooms.restated), d.called) == (BATCH + 1, True)


def test_a_verification_while_running_is_restated_and_recorded(database: Database) -> None:
    attested, rooms, _ = started(database)
    attested.classes.verified(verification(VERA))
    assert rooms.restated == [VERA] and kept(database) == {VERA: ("mha", 5)}


def test_users_of_other_servers_are_never_restated(database: Database) -> None:
    attested, rooms, _ = started(database, verification("@xena:there.test"))
    assert (check(attested), rooms.restated) == ([], [])
