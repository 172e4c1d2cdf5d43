"""FilterStore on both engines, and resolve_filter over it (stored id or inline JSON)."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from broker.errors import DomainError
from broker.filtering import Filter, resolve_filter
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
