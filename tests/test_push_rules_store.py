"""PushRuleStore on both engines: ordering with before/after, deletes, enabled/actions for user
and default rules, and the m.push_rules account data written with every change."""

from __future__ import annotations

from typing import Any

import pytest

from storage.account_data import AccountDataStore
from storage.database import Database
from storage.push_rules import PushRuleNotFound, PushRulesSnapshot, PushRuleStore
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
ACTIONS: dict[str, Any] = {"actions": ["notify"]}


def render(snapshot: PushRulesSnapshot) -> dict[str, Any]:
    return {"rules": [r.rule_id for r in snapshot.user_rules],
            "overrides": sorted(snapshot.default_overrides)}


def add(store: PushRuleStore, rule_id: str, *, kind: str = "override", before: str | None = None,
        after: str | None = None, stream_id: int = 1, body: dict[str, Any] | None = None) -> None:
    result_of(store.add_push_rule(ALICE, kind, rule_id, body or ACTIONS, before=before,
                                  after=after, stream_id=stream_id, render=render))


def order(store: PushRuleStore, kind: str = "override") -> list[str]:
    snapshot = result_of(store.get_push_rules(ALICE))
    return [r.rule_id for r in snapshot.user_rules if r.kind == kind]


def test_new_rules_go_to_the_top_of_their_kind(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a")
    add(store, "b")
    add(store, "c", kind="underride")
    assert order(store) == ["b", "a"]
    assert order(store, "underride") == ["c"]


def test_before_and_after_place_rules(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a")
    add(store, "b")  # b, a
    add(store, "c", before="a")  # b, c, a
    add(store, "d", after="b")  # b, d, c, a
    add(store, "e", after="a")  # ..., a, e
    assert order(store) == ["b", "d", "c", "a", "e"]


def test_updating_a_rule_keeps_its_place_and_enabled_flag(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a")
    add(store, "b")
    result_of(store.set_user_rule_attribute(ALICE, "override", "a", enabled=False, stream_id=2,
                                            render=render))
    add(store, "a", body={"actions": [], "conditions": []})
    snapshot = result_of(store.get_push_rules(ALICE))
    assert [r.rule_id for r in snapshot.user_rules] == ["b", "a"]
    rule_a = snapshot.user_rules[1]
    assert rule_a.enabled is False and rule_a.body == {"actions": [], "conditions": []}


def test_updating_with_before_moves_the_rule(database: Database) -> None:
    store = PushRuleStore(database)
    for rule_id in ("a", "b", "c"):
        add(store, rule_id)  # c, b, a
    add(store, "a", before="c")
    assert order(store) == ["a", "c", "b"]


def test_unknown_anchor_is_refused_and_nothing_is_written(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a")
    with pytest.raises(PushRuleNotFound):
        add(store, "b", before="missing")
    assert order(store) == ["a"]


def test_anchor_of_another_kind_is_not_found(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a", kind="underride")
    with pytest.raises(PushRuleNotFound):
        add(store, "b", after="a")


def test_delete_rule(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a")
    result_of(store.delete_push_rule(ALICE, "override", "a", stream_id=2, render=render))
    assert order(store) == []
    with pytest.raises(PushRuleNotFound):
        result_of(store.delete_push_rule(ALICE, "override", "a", stream_id=3, render=render))


def test_set_user_rule_actions(database: Database) -> None:
    store = PushRuleStore(database)
    add(store, "a", kind="content", body={"actions": ["notify"], "pattern": "cake"})
    result_of(store.set_user_rule_attribute(ALICE, "content", "a", actions=[], stream_id=2,
                                            render=render))
    rule = result_of(store.get_push_rules(ALICE)).user_rules[0]
    assert rule.body == {"actions": [], "pattern": "cake"} and rule.enabled


def test_set_attribute_of_missing_user_rule_is_not_found(database: Database) -> None:
    with pytest.raises(PushRuleNotFound):
        result_of(PushRuleStore(database).set_user_rule_attribute(
            ALICE, "override", "nope", enabled=True, stream_id=1, render=render))


def test_default_rule_overrides_merge_enabled_and_actions(database: Database) -> None:
    store = PushRuleStore(database)
    result_of(store.set_default_rule_attribute(ALICE, ".m.rule.master", enabled=True,
                                               stream_id=1, render=render))
    result_of(store.set_default_rule_attribute(ALICE, ".m.rule.master", actions=["notify"],
                                               stream_id=2, render=render))
    override = result_of(store.get_push_rules(ALICE)).default_overrides[".m.rule.master"]
    assert override.enabled is True and override.actions == ["notify"]
    result_of(store.set_default_rule_attribute(ALICE, ".m.rule.master", enabled=False,
                                               stream_id=3, render=render))
    override = result_of(store.get_push_rules(ALICE)).default_overrides[".m.rule.master"]
    assert override.enabled is False and override.actions == ["notify"]


def test_every_change_rewrites_m_push_rules_under_its_stream_id(database: Database) -> None:
    store = PushRuleStore(database)
    account_data = AccountDataStore(database)
    add(store, "a", stream_id=4)
    assert result_of(account_data.get_account_data_changes(ALICE, 3, 4))[0] == {
        "m.push_rules": {"rules": ["a"], "overrides": []}}
    result_of(store.set_default_rule_attribute(ALICE, ".m.rule.call", enabled=False,
                                               stream_id=9, render=render))
    assert result_of(account_data.get_account_data_changes(ALICE, 4, 9))[0] == {
        "m.push_rules": {"rules": ["a"], "overrides": [".m.rule.call"]}}


def test_failed_change_leaves_m_push_rules_untouched(database: Database) -> None:
    store = PushRuleStore(database)
    with pytest.raises(PushRuleNotFound):
        add(store, "b", before="missing", stream_id=5)
    assert result_of(AccountDataStore(database).get_global_account_data(ALICE)) == {}
