"""FederationPolicy: allow-list, refreshed signed federation list, persistence and counters."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Request

from federation.federation_list import create_list, generate_authority_key
from federation.policy import FETCH_TIMEOUT_SECONDS, FederationPolicy, treq_fetcher
from protocol.errors import FederationListError
from protocol.signing import encode_verify_key

KEY = generate_authority_key()
PUB = encode_verify_key(KEY)
START_S = 1_800_000_000
REFRESH = 600


def list_doc(version: int, *servers: str, expires_ts: int | None = None,
             key: Any = KEY) -> dict[str, Any]:
    return create_list(servers, version, "fed.gov", key, expires_ts,
                       issued_ts=START_S * 1000 - 1000)


class Setup:
    """A policy over a list file the test rewrites, driven by a fake reactor clock."""

    def __init__(self, tmp_path: Path, allow_list: tuple[str, ...] = ()) -> None:
        self.reactor = Clock()
        self.reactor.advance(START_S)
        self.list_path = tmp_path / "published" / "list.json"
        self.list_path.parent.mkdir(exist_ok=True)
        self.persist_path = tmp_path / "data" / "federation_list.json"
        self.allow_list = allow_list

    def publish(self, doc: dict[str, Any] | bytes) -> None:
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.list_path.write_bytes(data)

    def policy(self, source: bool = True) -> FederationPolicy:
        return FederationPolicy(
            "own.gov", allow_list=self.allow_list,
            list_source=self.list_path if source else None,
            authority_key=PUB, refresh_seconds=REFRESH, reactor=self.reactor,
            persist_path=self.persist_path)

    def started(self, source: bool = True) -> tuple[FederationPolicy, str]:
        policy = self.policy(source)
        outcomes: list[str] = []
        policy.start().addCallback(outcomes.append)
        assert len(outcomes) == 1
        return policy, outcomes[0]

    def tick(self) -> None:
        self.reactor.advance(REFRESH)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


# --- the allow decision -----------------------------------------------------------------------
def test_allow_list_only_allows_listed_servers(tmp_path: Path) -> None:
    policy, outcome = Setup(tmp_path, allow_list=("a.gov",)).started(source=False)
    assert outcome == "no_source"
    assert policy.is_allowed("a.gov")
    assert not policy.is_allowed("b.gov")


def test_federation_list_only_allows_listed_servers(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov", "b.gov"))
    policy, outcome = setup.started()
    assert outcome == "accepted"
    assert policy.is_allowed("a.gov") and policy.is_allowed("b.gov")
    assert not policy.is_allowed("c.gov")


def test_allow_list_and_federation_list_both_allow(tmp_path: Path) -> None:
    setup = Setup(tmp_path, allow_list=("static.gov",))
    setup.publish(list_doc(1, "listed.gov"))
    policy, _ = setup.started()
    assert policy.is_allowed("static.gov")
    assert policy.is_allowed("listed.gov")
    assert not policy.is_allowed("other.gov")


def test_nothing_is_allowed_by_default(setup: Setup) -> None:
    policy, _ = setup.started(source=False)
    assert not policy.is_allowed("a.gov")


def test_own_server_is_never_a_federation_peer(tmp_path: Path) -> None:
    setup = Setup(tmp_path, allow_list=("own.gov",))
    setup.publish(list_doc(1, "own.gov"))
    policy, _ = setup.started()
    assert not policy.is_allowed("own.gov")


def test_allow_list_works_before_start(tmp_path: Path) -> None:
    assert Setup(tmp_path, allow_list=("a.gov",)).policy().is_allowed("a.gov")


# --- refreshing -------------------------------------------------------------------------------
def test_newer_list_replaces_the_current_one_on_refresh(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov", "b.gov"))
    policy, _ = setup.started()
    setup.publish(list_doc(2, "a.gov", "c.gov"))
    assert not policy.is_allowed("c.gov")
    setup.tick()
    assert policy.is_allowed("c.gov")
    assert not policy.is_allowed("b.gov")
    assert policy.stats()["list_version"] == 2


def test_refresh_waits_for_refresh_seconds(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    policy, _ = setup.started()
    setup.publish(list_doc(2, "c.gov"))
    setup.reactor.advance(REFRESH - 1)
    assert not policy.is_allowed("c.gov")
    setup.reactor.advance(1)
    assert policy.is_allowed("c.gov")


def test_older_list_is_refused_and_the_last_good_kept(setup: Setup) -> None:
    setup.publish(list_doc(5, "a.gov"))
    policy, _ = setup.started()
    setup.publish(list_doc(4, "a.gov", "rollback.gov"))
    setup.tick()
    assert policy.is_allowed("a.gov")
    assert not policy.is_allowed("rollback.gov")
    assert policy.stats()["list_refreshes_refused"] == 1
    assert policy.stats()["list_version"] == 5


def test_same_version_with_other_content_is_refused(setup: Setup) -> None:
    setup.publish(list_doc(5, "a.gov"))
    policy, _ = setup.started()
    setup.publish(list_doc(5, "a.gov", "sneaky.gov"))
    setup.tick()
    assert not policy.is_allowed("sneaky.gov")
    assert policy.list_refreshes_refused == 1


def test_rereading_the_same_list_is_not_a_refusal(setup: Setup) -> None:
    setup.publish(list_doc(5, "a.gov"))
    policy, _ = setup.started()
    setup.tick()
    setup.tick()
    assert policy.list_refreshes_refused == 0
    assert policy.is_allowed("a.gov")


def test_tampered_list_is_refused_and_the_last_good_kept(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    policy, _ = setup.started()
    tampered = list_doc(2, "a.gov")
    tampered["servers"].append("intruder.gov")
    setup.publish(tampered)
    setup.tick()
    assert not policy.is_allowed("intruder.gov")
    assert policy.is_allowed("a.gov")
    assert policy.list_refreshes_refused == 1


def test_list_signed_by_another_key_is_refused(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov", key=generate_authority_key()))
    policy, outcome = setup.started()
    assert outcome == "refused"
    assert not policy.is_allowed("a.gov")


def test_unsigned_list_is_refused(setup: Setup) -> None:
    doc = list_doc(1, "a.gov")
    del doc["signatures"]
    setup.publish(doc)
    policy, outcome = setup.started()
    assert outcome == "refused"
    assert not policy.is_allowed("a.gov")


def test_expired_list_is_refused(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov", expires_ts=START_S * 1000))
    policy, outcome = setup.started()
    assert outcome == "refused"
    assert not policy.is_allowed("a.gov")


def test_unreadable_source_is_refused_and_the_last_good_kept(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    policy, _ = setup.started()
    setup.list_path.unlink()
    setup.tick()
    setup.publish(b"{garbage")
    setup.tick()
    assert policy.is_allowed("a.gov")
    assert policy.list_refreshes_refused == 2


def test_held_list_stops_allowing_once_it_expires(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov", expires_ts=(START_S + 100) * 1000))
    policy, _ = setup.started()
    assert policy.is_allowed("a.gov")
    setup.reactor.advance(100)
    assert not policy.is_allowed("a.gov")


def test_refused_refresh_is_logged_at_warning_with_the_reason(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    setup.publish(list_doc(3, "a.gov"))
    setup.started()
    setup.publish(list_doc(2, "a.gov"))
    with caplog.at_level(logging.INFO, logger="federation.policy"):
        setup.tick()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "stale_version" in warnings[0] and "keeping version 3" in warnings[0]


def test_accepted_list_logs_added_and_removed_servers(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    setup.publish(list_doc(1, "a.gov", "b.gov"))
    setup.started()
    setup.publish(list_doc(2, "a.gov", "c.gov"))
    with caplog.at_level(logging.INFO, logger="federation.policy"):
        setup.tick()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("added c.gov" in m and "removed b.gov" in m for m in infos), infos


def test_stop_ends_refreshing(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    policy, _ = setup.started()
    policy.stop()
    setup.publish(list_doc(2, "c.gov"))
    setup.tick()
    assert not policy.is_allowed("c.gov")


# --- persistence ------------------------------------------------------------------------------
def test_last_good_list_survives_a_restart_without_the_source(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    setup.started()
    setup.list_path.unlink()
    policy, outcome = setup.started()
    assert outcome == "refused"
    assert policy.is_allowed("a.gov")
    assert policy.stats()["list_version"] == 1


def test_persisted_version_refuses_an_older_list_after_a_restart(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    setup.started()
    setup.publish(list_doc(2, "b.gov"))
    setup.tick()
    setup.publish(list_doc(1, "a.gov"))
    policy, outcome = setup.started()
    assert outcome == "refused"
    assert policy.is_allowed("b.gov")
    assert not policy.is_allowed("a.gov")


def test_tampered_persisted_list_is_ignored(setup: Setup) -> None:
    setup.publish(list_doc(1, "a.gov"))
    setup.started()
    setup.list_path.unlink()
    stored = json.loads(setup.persist_path.read_bytes())
    stored["servers"].append("intruder.gov")
    setup.persist_path.write_text(json.dumps(stored))
    policy, _ = setup.started()
    assert not policy.is_allowed("intruder.gov")
    assert not policy.is_allowed("a.gov")


# --- counters ---------------------------------------------------------------------------------
def test_record_refusal_counts_each_direction(setup: Setup) -> None:
    policy = setup.policy(source=False)
    policy.record_refusal("inbound", "x.gov")
    policy.record_refusal("inbound", "y.gov")
    policy.record_refusal("outbound", "x.gov")
    assert policy.stats() == {"refused_inbound": 2, "refused_outbound": 1,
                              "list_refreshes_refused": 0, "list_version": 0}


def test_record_refusal_logs_the_server_at_info(
        setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="federation.policy"):
        setup.policy(source=False).record_refusal("outbound", "x.gov")
    assert [(r.levelno, "x.gov" in r.getMessage()) for r in caplog.records] == [
        (logging.INFO, True)]


def test_record_refusal_rejects_an_unknown_direction(setup: Setup) -> None:
    with pytest.raises(ValueError):
        setup.policy(source=False).record_refusal("sideways", "x.gov")


def test_permits_records_a_refusal_only_when_not_allowed(tmp_path: Path) -> None:
    policy = Setup(tmp_path, allow_list=("a.gov",)).policy(source=False)
    assert policy.permits("inbound", "a.gov")
    assert not policy.permits("inbound", "b.gov")
    assert policy.refused_inbound == 1


# --- construction -----------------------------------------------------------------------------
def test_source_without_authority_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="authority"):
        FederationPolicy("own.gov", list_source=tmp_path / "l.json", reactor=Clock())


def test_invalid_authority_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FederationListError):
        FederationPolicy("own.gov", list_source=tmp_path / "l.json", authority_key="AAAA",
                         reactor=Clock())


def test_url_source_without_fetch_function_is_refused() -> None:
    with pytest.raises(ValueError, match="fetch_url"):
        FederationPolicy("own.gov", list_source="https://fed.gov/list.json",
                         authority_key=PUB, reactor=Clock())


# --- URL sources ------------------------------------------------------------------------------
class Fetcher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Deferred[bytes]]] = []

    def __call__(self, url: str) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self.calls.append((url, d))
        return d


def url_policy(reactor: Clock, fetch: Any) -> FederationPolicy:
    return FederationPolicy("own.gov", list_source="https://fed.gov/list.json",
                            authority_key=PUB, refresh_seconds=REFRESH, reactor=reactor,
                            fetch_url=fetch)


def test_url_source_is_fetched_through_the_injected_function() -> None:
    reactor, fetch = Clock(), Fetcher()
    reactor.advance(START_S)
    policy = url_policy(reactor, fetch)
    outcomes: list[str] = []
    policy.start().addCallback(outcomes.append)
    assert [url for url, _ in fetch.calls] == ["https://fed.gov/list.json"]
    assert outcomes == []
    fetch.calls[0][1].callback(json.dumps(list_doc(1, "a.gov")).encode())
    assert outcomes == ["accepted"]
    assert policy.is_allowed("a.gov")


def test_failed_fetch_is_refused() -> None:
    reactor = Clock()
    policy = url_policy(reactor, lambda url: defer.fail(OSError("connection refused")))
    outcomes: list[str] = []
    policy.start().addCallback(outcomes.append)
    assert outcomes == ["refused"]
    assert policy.list_refreshes_refused == 1


def test_fetch_without_answer_times_out_and_is_refused() -> None:
    reactor, fetch = Clock(), Fetcher()
    policy = url_policy(reactor, fetch)
    outcomes: list[str] = []
    policy.start().addCallback(outcomes.append)
    reactor.advance(FETCH_TIMEOUT_SECONDS)
    assert outcomes == ["refused"]


def test_refresh_during_a_fetch_does_not_fetch_twice() -> None:
    reactor, fetch = Clock(), Fetcher()
    policy = url_policy(reactor, fetch)
    policy.start()
    outcomes: list[str] = []
    policy.refresh().addCallback(outcomes.append)
    assert outcomes == ["in_progress"]
    assert len(fetch.calls) == 1


class ListResource(Resource):
    isLeaf = True

    def __init__(self, body: bytes, code: int = 200) -> None:
        super().__init__()
        self.body, self.code = body, code

    def render_GET(self, request: Request) -> bytes:
        request.setResponseCode(self.code)
        return self.body


def fetched(resource: Resource) -> Any:
    results: list[Any] = []
    treq_fetcher(StubTreq(resource))("https://fed.gov/list.json").addBoth(results.append)
    return results[0]


def test_treq_fetcher_returns_the_body() -> None:
    assert fetched(ListResource(b'{"version": 1}')) == b'{"version": 1}'


def test_treq_fetcher_fails_on_an_error_status() -> None:
    result = fetched(ListResource(b"gone", code=404))
    assert "404" in result.getErrorMessage()
