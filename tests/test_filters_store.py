"""FilterStore on both engines, resolve_filter over it (stored id or inline JSON), and the
parsed filters /sync keeps."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from broker.errors import DomainError
from broker.filtering import CachedFilters, Filter, resolve_filter
from broker.http.errors import from_domain
from storage.database import Database
from storage.filters import FilterStore
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"


def resolve(database: Database, user_id: str, param: str | None) -> Filter:
    return result_of(defer.ensureDeferred(resolve_filter(FilterStore(database), user_id, param)))


def test_filter_ids_count_up_per_user(database: Database) -> None:
    store = FilterStore(database)
    assert result_of(store.add_filter(ALICE, {"a": 1})) == 0
    assert result_of(store.add_filter(ALICE, {"a": 2})) == 1
    assert result_of(store.add_filter(BOB, {"b": 1})) == 0


def test_get_filter_returns_what_was_stored(database: Database) -> None:
    store = FilterStore(database)
    body = {"room": {"timeline": {"limit": 10, "types": ["m.room.*"]}}}
    filter_id = result_of(store.add_filter(ALICE, body))
    assert result_of(store.get_filter(ALICE, filter_id)) == body


def test_filters_are_private_to_their_user(database: Database) -> None:
    store = FilterStore(database)
    filter_id = result_of(store.add_filter(ALICE, {}))
    assert result_of(store.get_filter(BOB, filter_id)) is None


def test_unknown_filter_is_none(database: Database) -> None:
    assert result_of(FilterStore(database).get_filter(ALICE, 42)) is None


def test_resolve_filter_by_stored_id(database: Database) -> None:
    filter_id = result_of(FilterStore(database).add_filter(
        ALICE, {"room": {"timeline": {"limit": 3}}}))
    assert resolve(database, ALICE, str(filter_id)).timeline_limit(20) == 3


def test_resolve_filter_inline_json(database: Database) -> None:
    f = resolve(database, ALICE, '{"room": {"timeline": {"limit": 4}}}')
    assert f.timeline_limit(20) == 4


def test_resolve_filter_without_param_is_the_default(database: Database) -> None:
    assert resolve(database, ALICE, None).timeline_limit(20) == 20


@pytest.mark.parametrize("param", ["7", "abc", "{not json", "-1", "١"])
def test_resolve_filter_rejects_unknown_or_malformed_params(database: Database,
                                                            param: str) -> None:
    with pytest.raises(DomainError) as info:
        resolve(database, ALICE, param)
    assert (from_domain(info.value).status, info.value.errcode) == (400, "M_INVALID_PARAM")


def test_resolve_filter_does_not_use_another_users_filter(database: Database) -> None:
    filter_id = result_of(FilterStore(database).add_filter(BOB, {}))
    with pytest.raises(DomainError):
        resolve(database, ALICE, str(filter_id))


def test_resolve_filter_inline_with_bad_schema_is_bad_json(database: Database) -> None:
    with pytest.raises(DomainError) as info:
        resolve(database, ALICE, '{"room": {"timeline": {"limit": "x"}}}')
    assert info.value.errcode == "M_BAD_JSON"


# -- CachedFilters: what /sync resolves through -----------------------------------------------
class CountingStore(FilterStore):
    reads = 0

    def get_filter(self, user_id: str, filter_id: int) -> defer.Deferred[dict | None]:  # type: ignore[type-arg]
        self.reads += 1
        return super().get_filter(user_id, filter_id)


def cached(filters: CachedFilters, user_id: str, param: str | None) -> Filter:
    return result_of(defer.ensureDeferred(filters(user_id, param)))


def test_a_stored_filter_is_read_from_the_database_once(database: Database) -> None:
    store = CountingStore(database)
    filter_id = str(result_of(store.add_filter(ALICE, {"room": {"timeline": {"limit": 3}}})))
    filters = CachedFilters(store)
    first = cached(filters, ALICE, filter_id)
    assert cached(filters, ALICE, filter_id) is first
    assert store.reads == 1 and first.timeline_limit(10) == 3


def test_a_kept_stored_filter_is_never_given_to_another_user(database: Database) -> None:
    store = CountingStore(database)
    filter_id = str(result_of(store.add_filter(ALICE, {})))
    filters = CachedFilters(store)
    cached(filters, ALICE, filter_id)
    with pytest.raises(DomainError):
        cached(filters, BOB, filter_id)


def test_the_same_inline_filter_is_parsed_once(database: Database) -> None:
    filters = CachedFilters(FilterStore(database))
    param = '{"room": {"timeline": {"limit": 2}}}'
    assert cached(filters, ALICE, param) is cached(filters, BOB, param)


def test_a_filter_that_fails_is_refused_every_time(database: Database) -> None:
    filters = CachedFilters(FilterStore(database))
    for _ in range(2):
        with pytest.raises(DomainError):
            cached(filters, ALICE, '{"room": {"timeline": {"limit": 0}}}')
        with pytest.raises(DomainError):
            cached(filters, ALICE, "7")
