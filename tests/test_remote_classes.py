"""What other nodes attest of their users, held in memory (broker/remote_classes.py): a node is
believed about its own users only, each statement holds for the configured time, a later one
replaces an earlier, and the user's node is asked when memory holds nothing fresh; the reader
a profile query names is believed only when they are a user of the server that asks.

The clock is a fake reactor's, advanced instead of waited on; the question to the user's node
is a function the test answers (the federation query itself is tested across real nodes in
test_federation_attestation.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.attestations import ATTESTATION, attested_member_content
from broker.clock import Clock
from broker.remote_classes import (
    ANSWER_MALFORMED,
    ASK_SECONDS,
    MALFORMED,
    NOT_HOME_SERVER,
    READER_NOT_OF_ORIGIN,
    READER_WAIT_SECONDS,
    RemoteClasses,
)
from protocol.errors import HttpResponseError
from protocol.events import Event, build_pdu, finalize_pdu
from protocol.room_versions import get_room_version
from protocol.signing import generate_signing_key
from tests.storage_helpers import result_of

V12 = get_room_version("12")
KEY = generate_signing_key("test")
HERE = "b.test"
XENA = "@xena:a.test"
LIFETIME = 300
START = 1_000_000.0
VERIFIED_MHA = {"class": "verified", "organisation": "mha", "since": 5}


def member(user_id: str, membership: str, content: dict[str, Any] | None = None, *,
           sender: str | None = None, at_ms: int | None = None) -> Event:
    sender = sender or user_id
    pdu = build_pdu(V12, room_id="!room:a.test", sender=sender, type="m.room.member",
                    content={"membership": membership, **(content or {})}, state_key=user_id,
                    prev_event_ids=[], auth_event_ids=[], depth=1,
                    origin_server_ts=int(START * 1000) if at_ms is None else at_ms)
    return finalize_pdu(pdu, sender.split(":", 1)[1], KEY, V12)


class Asked:
    """The user's node, as the test answers it: each question waits for :meth:`answer`."""

    def __init__(self) -> None:
        self.questions: list[tuple[str, str, defer.Deferred[Any]]] = []

    def __call__(self, server: str, user_id: str) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.questions.append((server, user_id, d))
        return d

    def answer(self, body: Any) -> None:
        self.questions[-1][2].callback(body)

    def fail(self, error: Exception) -> None:
        self.questions[-1][2].errback(error)


def classes(ask: Asked | None = None) -> tuple[RemoteClasses, FakeReactor]:
    reactor = FakeReactor()
    reactor.advance(START)
    return RemoteClasses(HERE, Clock(reactor), LIFETIME, ask), reactor


def status(user_id: str = XENA) -> dict[str, Any]:
    """The answer of a node that attests its user verified for mha."""
    return {"user_id": user_id, "class": "verified", "organisation": "mha", "since": 5}


# -- learning from membership events ------------------------------------------------------------
def test_a_join_attested_by_the_users_own_server_makes_them_verified_of_its_organisation(
) -> None:
    remote, _ = classes()
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    assert remote.verification_org(XENA) == "mha"


def test_a_join_without_attestation_states_the_user_public() -> None:
    remote, _ = classes()
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}, at_ms=int(START * 1000) - 1))
    remote.learn(member(XENA, "join"))
    assert remote.class_of(XENA) == "public"


def test_an_attestation_in_an_event_of_another_server_is_ignored_and_counted() -> None:
    remote, _ = classes()
    remote.learn(member(XENA, "invite", {ATTESTATION: VERIFIED_MHA}, sender="@mallory:c.test"))
    assert remote.class_of(XENA) == "public"
    assert remote.ignored[NOT_HOME_SERVER] == 1


def test_a_malformed_attestation_is_counted_and_the_user_is_public() -> None:
    remote, _ = classes()
    remote.learn(member(XENA, "join", {ATTESTATION: {"class": "verified"}}))
    assert (remote.class_of(XENA), remote.ignored[MALFORMED]) == ("public", 1)


def test_a_leave_says_nothing_of_the_class() -> None:
    remote, _ = classes()
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    remote.learn(member(XENA, "leave"))
    assert remote.verification_org(XENA) == "mha"


def test_what_the_node_states_of_its_own_users_is_not_taken_from_events() -> None:
    remote, _ = classes()
    vera = f"@vera:{HERE}"
    remote.learn(member(vera, "join", {ATTESTATION: VERIFIED_MHA}))
    assert remote.statement(vera) is None


def test_a_statement_holds_for_the_configured_time_from_when_it_was_made() -> None:
    remote, reactor = classes()
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    reactor.advance(LIFETIME - 1)
    assert remote.class_of(XENA) == "verified"
    reactor.advance(1)
    assert remote.class_of(XENA) == "public"


def test_an_event_stamped_in_the_future_holds_from_now() -> None:
    remote, reactor = classes()
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA},
                        at_ms=int((START + 10 * LIFETIME) * 1000)))
    reactor.advance(LIFETIME)
    assert remote.class_of(XENA) == "public"


def test_an_older_statement_does_not_replace_a_newer_one() -> None:
    remote, _ = classes()
    remote.learn(member(XENA, "join"))
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}, at_ms=int(START * 1000) - 1))
    assert remote.class_of(XENA) == "public"


def test_memory_keeps_the_users_learned_last() -> None:
    reactor = FakeReactor()
    reactor.advance(START)
    remote = RemoteClasses(HERE, Clock(reactor), LIFETIME, None, capacity=2)
    for name in ("a", "b", "c"):
        remote.learn(member(f"@{name}:a.test", "join", {ATTESTATION: VERIFIED_MHA}))
    assert [remote.class_of(f"@{n}:a.test") for n in "abc"] == ["public", "verified",
                                                               "verified"]


# -- asking the user's node ---------------------------------------------------------------------
def test_memory_without_a_fresh_statement_asks_the_users_own_server() -> None:
    asked = Asked()
    remote, _ = classes(asked)
    d = defer.ensureDeferred(remote.ensure(XENA))
    assert [(s, u) for s, u, _ in asked.questions] == [("a.test", XENA)]
    assert not d.called  # the decision waits for the answer
    asked.answer(status())
    assert d.called and remote.verification_org(XENA) == "mha"


def test_concurrent_decisions_share_one_question() -> None:
    asked = Asked()
    remote, _ = classes(asked)
    first = defer.ensureDeferred(remote.ensure(XENA))
    second = defer.ensureDeferred(remote.ensure(XENA))
    asked.answer(status())
    assert (len(asked.questions), first.called, second.called) == (1, True, True)


def test_an_answer_is_used_until_it_expires_then_asked_again() -> None:
    asked = Asked()
    remote, reactor = classes(asked)
    defer.ensureDeferred(remote.ensure(XENA))
    asked.answer(status())
    defer.ensureDeferred(remote.ensure(XENA))
    assert len(asked.questions) == 1
    reactor.advance(LIFETIME)
    defer.ensureDeferred(remote.ensure(XENA))
    assert len(asked.questions) == 2


def test_a_fresh_attestation_from_an_event_needs_no_question() -> None:
    asked = Asked()
    remote, _ = classes(asked)
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    assert defer.ensureDeferred(remote.ensure(XENA)).called and asked.questions == []


def test_not_found_is_an_answer_the_user_is_public() -> None:
    asked = Asked()
    remote, _ = classes(asked)
    defer.ensureDeferred(remote.ensure(XENA))
    asked.fail(HttpResponseError(404, "M_NOT_FOUND", {}))
    assert remote.statement(XENA) is not None and remote.class_of(XENA) == "public"


def test_a_server_that_cannot_answer_leaves_the_user_public_and_is_asked_next_time() -> None:
    asked = Asked()
    remote, _ = classes(asked)
    d = defer.ensureDeferred(remote.ensure(XENA))
    asked.fail(ConnectionRefusedError())
    assert d.called and remote.class_of(XENA) == "public"
    defer.ensureDeferred(remote.ensure(XENA))
    assert len(asked.questions) == 2


def test_a_node_that_does_not_answer_in_time_leaves_the_user_public_for_this_decision(
        ) -> None:
    asked = Asked()
    remote, reactor = classes(asked)
    d = defer.ensureDeferred(remote.ensure(XENA))
    reactor.advance(ASK_SECONDS - 0.1)
    assert not d.called  # still waiting for the answer
    reactor.advance(0.1)
    assert d.called and remote.class_of(XENA) == "public"
    defer.ensureDeferred(remote.ensure(XENA))
    assert len(asked.questions) == 2  # asked again at the next decision


def test_an_answer_about_another_user_is_ignored_and_counted() -> None:
    asked = Asked()
    remote, _ = classes(asked)
    defer.ensureDeferred(remote.ensure(XENA))
    asked.answer(status(user_id="@other:a.test"))
    assert (remote.class_of(XENA), remote.ignored[ANSWER_MALFORMED]) == ("public", 1)


# -- the reader a profile query names ------------------------------------------------------------
def reader(remote: RemoteClasses, origin: str, named: str) -> defer.Deferred[str]:
    return defer.ensureDeferred(remote.reader(origin, named))


def test_a_reader_of_the_asking_server_with_a_fresh_statement_is_believed_without_a_question(
        ) -> None:
    asked = Asked()
    remote, _ = classes(asked)
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    assert result_of(reader(remote, "a.test", XENA)) == XENA
    assert asked.questions == []


def test_a_reader_of_the_asking_server_is_asked_about_when_memory_holds_nothing_fresh(
        ) -> None:
    asked = Asked()
    remote, _ = classes(asked)
    d = reader(remote, "a.test", XENA)
    assert [(s, u) for s, u, _ in asked.questions] == [("a.test", XENA)]
    asked.answer(status())
    assert result_of(d) == XENA and remote.verification_org(XENA) == "mha"


@pytest.mark.parametrize("named", ["@xena:c.test", f"@bea:{HERE}", "not a user"])
def test_a_reader_not_of_the_asking_server_is_passed_over_counted_and_not_asked_about(
        named: str) -> None:
    asked = Asked()
    remote, _ = classes(asked)
    assert result_of(reader(remote, "a.test", named)) == ""
    assert (remote.ignored[READER_NOT_OF_ORIGIN], asked.questions) == (1, [])


def test_a_query_naming_nobody_has_no_reader_and_counts_nothing() -> None:
    remote, _ = classes(Asked())
    assert result_of(reader(remote, "a.test", "")) == ""
    assert sum(remote.ignored.values()) == 0


def test_a_reader_whose_node_is_slow_is_waited_for_a_bounded_time_and_its_answer_kept(
        ) -> None:
    asked = Asked()
    remote, reactor = classes(asked)
    d = reader(remote, "a.test", XENA)
    reactor.advance(READER_WAIT_SECONDS - 0.1)
    assert not d.called
    reactor.advance(0.1)
    assert result_of(d) == XENA and remote.class_of(XENA) == "public"  # for this query
    asked.answer(status())  # still within the question's own time
    assert remote.verification_org(XENA) == "mha"


# -- what this node puts in its own membership events -------------------------------------------
def test_a_join_carries_the_nodes_attestation_in_place_of_one_asked_for() -> None:
    asked_for = {"membership": "join", ATTESTATION: {"class": "verified", "organisation": "x",
                                                     "since": 1}}
    assert attested_member_content(asked_for, VERIFIED_MHA)[ATTESTATION] == VERIFIED_MHA


def test_a_join_of_a_public_user_carries_none_whatever_was_asked() -> None:
    asked_for = {"membership": "join", ATTESTATION: VERIFIED_MHA}
    assert ATTESTATION not in attested_member_content(asked_for, None)


def test_only_a_join_carries_an_attestation() -> None:
    assert ATTESTATION not in attested_member_content({"membership": "invite"}, VERIFIED_MHA)
