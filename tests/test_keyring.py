"""Keyring: memory, database, direct fetch, notaries, pinned keys, validity and verification.

The federation client is a fake answering from a dict; the store is a real SQLite database run
synchronously, so every lookup that does not wait on the fake completes at once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import defer

from federation.keyring import MIN_REFETCH_INTERVAL_MS, QUERY_PATH, SERVER_KEYS_PATH, Keyring
from protocol.errors import HttpResponseError, KeyFetchError, SignatureVerifyError
from protocol.hashing import add_content_hash
from protocol.request_auth import parse_authorization_header, sign_request
from protocol.room_versions import KNOWN_ROOM_VERSIONS
from protocol.server_keys import add_notary_signature, build_server_keys_response
from protocol.signing import (
    encode_verify_key,
    generate_signing_key,
    get_verify_key,
    sign_event,
    verify_key_id,
)
from storage.database import Database
from storage.server_keys import ServerKeyStore
from tests.storage_helpers import make_database, result_of

NOW = 1_700_000_000_000
DAY = 24 * 3600 * 1000
ME = "me.example"
REMOTE = "remote.example"
NOTARY = "notary.example"
REMOTE_KEY = generate_signing_key("r1")
REMOTE_KEY_ID = verify_key_id(REMOTE_KEY)
NOTARY_KEY = generate_signing_key("n1")
MY_KEY = generate_signing_key("m1")
ROOM_VERSION = KNOWN_ROOM_VERSIONS["12"]


class FakeClock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def time_ms(self) -> int:
        return self.now


class FakeClient:
    """Answers (method, destination, path) from ``answers``: a body, an exception or a Deferred."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str, str], Any] = {}
        self.calls: list[tuple[str, str, str, Any]] = []

    async def get_json(self, destination: str, path: str, args: Any = None, *,
                       signed: bool = True, timeout: float = 0) -> Any:
        return await self._answer("GET", destination, path, None)

    async def post_json(self, destination: str, path: str, content: Any, args: Any = None, *,
                        signed: bool = True, timeout: float = 0) -> Any:
        return await self._answer("POST", destination, path, content)

    async def _answer(self, method: str, destination: str, path: str, content: Any) -> Any:
        self.calls.append((method, destination, path, content))
        answer = self.answers.get((method, destination, path))
        if answer is None:
            raise HttpResponseError(404, "M_NOT_FOUND", {})
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, defer.Deferred):
            return await answer
        return copy.deepcopy(answer)

    def count(self, destination: str) -> int:
        return sum(1 for call in self.calls if call[1] == destination)


def keys_response(server: str = REMOTE, key: Any = REMOTE_KEY, valid_until: int = NOW + DAY,
                  old: list[tuple[Any, str, int]] | None = None) -> dict[str, Any]:
    return build_server_keys_response(server, [key], old or [], valid_until)


@pytest.fixture
def db(tmp_path: Any) -> Iterator[Database]:
    database, cleanup = make_database("sqlite", tmp_path)
    try:
        yield database
    finally:
        cleanup()


def make_keyring(db: Database, client: FakeClient, clock: FakeClock | None = None,
                 **kwargs: Any) -> Keyring:
    return Keyring(ServerKeyStore(db), client, ME,
                   {verify_key_id(MY_KEY): get_verify_key(MY_KEY)}, clock or FakeClock(),
                   **kwargs)


def lookup(keyring: Keyring, server: str = REMOTE, key_id: str = REMOTE_KEY_ID,
           at: int = NOW) -> Any:
    return result_of(defer.ensureDeferred(keyring.get_verify_key(server, key_id, at)))


def same_key(a: Any, b: Any) -> bool:
    return bool(a.encode() == get_verify_key(b).encode())


# Lookup order --------------------------------------------------------------------------------
def test_direct_fetch_returns_the_servers_key(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    assert same_key(lookup(make_keyring(db, client)), REMOTE_KEY)


def test_fetched_key_is_stored_with_the_signed_response(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    lookup(make_keyring(db, client))
    row = result_of(ServerKeyStore(db).get_server_key(REMOTE, REMOTE_KEY_ID))
    assert row is not None and row.key_json == keys_response() and row.from_server == REMOTE


def test_second_lookup_is_served_from_memory(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    keyring = make_keyring(db, client)
    lookup(keyring)
    result_of(ServerKeyStore(db).delete_server_keys(REMOTE))
    assert same_key(lookup(keyring), REMOTE_KEY)
    assert client.count(REMOTE) == 1


def test_new_keyring_finds_stored_key_without_fetching(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    lookup(make_keyring(db, client))
    fresh_client = FakeClient()
    assert same_key(lookup(make_keyring(db, fresh_client)), REMOTE_KEY)
    assert fresh_client.calls == []


def test_own_keys_are_never_fetched(db: Database) -> None:
    client = FakeClient()
    key = lookup(make_keyring(db, client), ME, verify_key_id(MY_KEY))
    assert same_key(key, MY_KEY) and client.calls == []


def test_unknown_key_raises_key_fetch_error(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    with pytest.raises(KeyFetchError):
        lookup(make_keyring(db, client), key_id="ed25519:nope")


def test_badly_self_signed_response_is_refused(db: Database) -> None:
    client = FakeClient()
    body = keys_response()
    body["valid_until_ts"] += 1  # the signature no longer matches
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = body
    with pytest.raises(KeyFetchError):
        lookup(make_keyring(db, client))
    assert result_of(ServerKeyStore(db).get_server_keys(REMOTE)) == []


# Notaries ------------------------------------------------------------------------------------
def notary_answer(body: dict[str, Any], key: Any = NOTARY_KEY) -> dict[str, Any]:
    return {"server_keys": [add_notary_signature(body, NOTARY, key)]}


def test_notary_is_asked_when_the_server_is_unreachable(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", NOTARY, SERVER_KEYS_PATH)] = keys_response(NOTARY, NOTARY_KEY)
    client.answers[("POST", NOTARY, QUERY_PATH)] = notary_answer(keys_response())
    keyring = make_keyring(db, client, notaries=(NOTARY,))
    assert same_key(lookup(keyring), REMOTE_KEY)
    query = [c[3] for c in client.calls if c[0] == "POST"][0]
    assert query == {"server_keys": {REMOTE: {REMOTE_KEY_ID: {"minimum_valid_until_ts": NOW}}}}


def test_notary_answer_is_stored_as_from_the_notary(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", NOTARY, SERVER_KEYS_PATH)] = keys_response(NOTARY, NOTARY_KEY)
    client.answers[("POST", NOTARY, QUERY_PATH)] = notary_answer(keys_response())
    lookup(make_keyring(db, client, notaries=(NOTARY,)))
    row = result_of(ServerKeyStore(db).get_server_key(REMOTE, REMOTE_KEY_ID))
    assert row is not None and row.from_server == NOTARY


def test_notary_answer_signed_by_another_key_is_refused(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", NOTARY, SERVER_KEYS_PATH)] = keys_response(NOTARY, NOTARY_KEY)
    forged = generate_signing_key("n1")  # same key ID, different key
    client.answers[("POST", NOTARY, QUERY_PATH)] = notary_answer(keys_response(), forged)
    with pytest.raises(KeyFetchError):
        lookup(make_keyring(db, client, notaries=(NOTARY,)))


def test_pinned_notary_key_is_trusted_without_fetching_the_notary(db: Database) -> None:
    client = FakeClient()
    client.answers[("POST", NOTARY, QUERY_PATH)] = notary_answer(keys_response())
    pinned = {NOTARY: {verify_key_id(NOTARY_KEY): encode_verify_key(NOTARY_KEY)}}
    keyring = make_keyring(db, client, notaries=(NOTARY,), pinned_keys=pinned)
    assert same_key(lookup(keyring), REMOTE_KEY)
    assert ("GET", NOTARY, SERVER_KEYS_PATH, None) not in client.calls


def test_notary_is_not_asked_when_the_server_answers(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    lookup(make_keyring(db, client, notaries=(NOTARY,)))
    assert client.count(NOTARY) == 0


# Pinned keys ---------------------------------------------------------------------------------
def test_pinned_key_is_returned_without_fetching(db: Database) -> None:
    client = FakeClient()
    pinned = {REMOTE: {REMOTE_KEY_ID: encode_verify_key(REMOTE_KEY)}}
    assert same_key(lookup(make_keyring(db, client, pinned_keys=pinned)), REMOTE_KEY)
    assert client.calls == []


def test_fetched_keys_of_a_pinned_server_are_ignored(db: Database) -> None:
    client = FakeClient()
    other = generate_signing_key("r2")
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(key=other)
    pinned = {REMOTE: {REMOTE_KEY_ID: encode_verify_key(REMOTE_KEY)}}
    with pytest.raises(KeyFetchError):
        lookup(make_keyring(db, client, pinned_keys=pinned), key_id=verify_key_id(other))
    assert client.calls == []


def test_stored_keys_of_a_pinned_server_are_ignored(db: Database) -> None:
    other = generate_signing_key("r2")
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(key=other)
    lookup(make_keyring(db, client), key_id=verify_key_id(other))  # now in the database
    pinned = {REMOTE: {REMOTE_KEY_ID: encode_verify_key(REMOTE_KEY)}}
    with pytest.raises(KeyFetchError):
        lookup(make_keyring(db, FakeClient(), pinned_keys=pinned), key_id=verify_key_id(other))


# Validity ------------------------------------------------------------------------------------
def test_key_is_refetched_when_cached_copy_is_not_valid_long_enough(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(valid_until=NOW + 1000)
    clock = FakeClock()
    keyring = make_keyring(db, client, clock)
    lookup(keyring)
    clock.now = NOW + 2 * DAY
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(valid_until=NOW + 3 * DAY)
    assert same_key(lookup(keyring, at=NOW + 2 * DAY), REMOTE_KEY)
    assert client.count(REMOTE) == 2


def test_key_not_valid_at_the_timestamp_is_refused(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(valid_until=NOW + 1000)
    with pytest.raises(KeyFetchError):
        lookup(make_keyring(db, client), at=NOW + 2000)


def test_old_key_verifies_only_until_its_expired_ts(db: Database) -> None:
    old = generate_signing_key("r0")
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(
        old=[(get_verify_key(old), verify_key_id(old), NOW - 1000)])
    keyring = make_keyring(db, client)
    assert same_key(lookup(keyring, key_id=verify_key_id(old), at=NOW - 1000), old)
    with pytest.raises(KeyFetchError):
        lookup(keyring, key_id=verify_key_id(old), at=NOW - 999)


def test_failed_fetch_is_not_repeated_within_the_refetch_interval(db: Database) -> None:
    client = FakeClient()
    clock = FakeClock()
    keyring = make_keyring(db, client, clock)
    with pytest.raises(KeyFetchError):
        lookup(keyring)
    clock.now += MIN_REFETCH_INTERVAL_MS - 1
    with pytest.raises(KeyFetchError):
        lookup(keyring)
    assert client.count(REMOTE) == 1
    clock.now += 1
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(valid_until=NOW + DAY)
    assert same_key(lookup(keyring), REMOTE_KEY)


def test_concurrent_lookups_share_one_fetch(db: Database) -> None:
    client = FakeClient()
    pending: defer.Deferred[Any] = defer.Deferred()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = pending
    keyring = make_keyring(db, client)
    first = defer.ensureDeferred(keyring.get_verify_key(REMOTE, REMOTE_KEY_ID, NOW))
    second = defer.ensureDeferred(keyring.get_verify_key(REMOTE, REMOTE_KEY_ID, NOW))
    assert not first.called and not second.called
    pending.callback(keys_response())
    assert same_key(result_of(first), REMOTE_KEY) and same_key(result_of(second), REMOTE_KEY)
    assert client.count(REMOTE) == 1


# Verification --------------------------------------------------------------------------------
def signed_pdu(key: Any = REMOTE_KEY, ts: int = NOW, server: str = REMOTE) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "room_id": "!room:remote.example", "sender": f"@bob:{server}", "type": "m.room.message",
        "content": {"body": "hello"}, "origin_server_ts": ts, "depth": 3,
        "prev_events": ["$prev"], "auth_events": ["$auth"],
    }
    add_content_hash(pdu)
    sign_event(pdu, server, key, ROOM_VERSION)
    return pdu


def verify_pdu(keyring: Keyring, pdu: dict[str, Any]) -> Any:
    return result_of(defer.ensureDeferred(keyring.verify_event_signatures(pdu, ROOM_VERSION)))


def keyring_knowing_remote(db: Database, valid_until: int = NOW + DAY) -> Keyring:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(valid_until=valid_until)
    return make_keyring(db, client)


def test_correctly_signed_event_verifies(db: Database) -> None:
    verify_pdu(keyring_knowing_remote(db), signed_pdu())


def test_event_with_a_tampered_signed_field_fails(db: Database) -> None:
    pdu = signed_pdu()
    pdu["origin_server_ts"] += 1
    with pytest.raises(SignatureVerifyError):
        verify_pdu(keyring_knowing_remote(db), pdu)


def test_event_signed_by_an_unknown_key_fails(db: Database) -> None:
    with pytest.raises(SignatureVerifyError):
        verify_pdu(keyring_knowing_remote(db), signed_pdu(generate_signing_key("zz")))


def test_event_without_the_senders_signature_fails(db: Database) -> None:
    pdu = signed_pdu()
    pdu["signatures"] = {"elsewhere.example": pdu["signatures"][REMOTE]}
    with pytest.raises(SignatureVerifyError):
        verify_pdu(keyring_knowing_remote(db), pdu)


def test_event_sent_after_its_keys_validity_fails(db: Database) -> None:
    with pytest.raises(SignatureVerifyError):
        verify_pdu(keyring_knowing_remote(db, valid_until=NOW + 10), signed_pdu(ts=NOW + 11))


def test_signed_request_verifies(db: Database) -> None:
    header = sign_request(REMOTE, ME, "PUT", "/_matrix/federation/v1/send/1", {"pdus": []},
                          REMOTE_KEY)
    keyring = keyring_knowing_remote(db)
    result_of(defer.ensureDeferred(keyring.verify_request(
        parse_authorization_header(header), "PUT", "/_matrix/federation/v1/send/1",
        {"pdus": []})))


def test_request_signed_for_another_destination_fails(db: Database) -> None:
    header = sign_request(REMOTE, "other.example", "GET", "/_matrix/federation/v1/version",
                          None, REMOTE_KEY)
    keyring = keyring_knowing_remote(db)
    with pytest.raises(SignatureVerifyError):
        result_of(defer.ensureDeferred(keyring.verify_request(
            parse_authorization_header(header), "GET", "/_matrix/federation/v1/version", None)))


# Notary service ------------------------------------------------------------------------------
def responses(keyring: Keyring, key_ids: list[str], minimum: int) -> Any:
    return result_of(defer.ensureDeferred(
        keyring.get_server_key_responses(REMOTE, key_ids, minimum)))


def test_notary_service_fetches_missing_keys(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    assert responses(make_keyring(db, client), [REMOTE_KEY_ID], NOW) == [keys_response()]


def test_notary_service_serves_fresh_cached_keys_without_fetching(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response()
    keyring = make_keyring(db, client)
    responses(keyring, [], NOW)
    assert responses(keyring, [], NOW + 1000) == [keys_response()]
    assert client.count(REMOTE) == 1


def test_notary_service_serves_stale_keys_when_the_server_is_down(db: Database) -> None:
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = keys_response(valid_until=NOW + 10)
    keyring = make_keyring(db, client)
    responses(keyring, [], NOW)
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = HttpResponseError(502, None, "")
    assert responses(keyring, [], NOW + DAY) == [keys_response(valid_until=NOW + 10)]
    assert client.count(REMOTE) == 2
