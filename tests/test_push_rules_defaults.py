"""The spec's server-default push rules and their merge with a user's own rules (pure)."""

from __future__ import annotations

from broker.push_rules_defaults import build_ruleset, default_rule_kind, default_rules
from storage.push_rules import DefaultRuleOverride, PushRulesSnapshot, UserPushRule

ALICE = "@alice:example.org"


def ids(rules: list[dict]) -> list[str]:
    return [r["rule_id"] for r in rules]


def test_default_rules_are_the_spec_list_in_spec_order() -> None:
    rules = default_rules(ALICE)
    assert ids(rules["override"]) == [
        ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
        ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
        ".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone",
        ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"]
    assert ids(rules["content"]) == [".m.rule.contains_user_name"]
    assert ids(rules["underride"]) == [
        ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
        ".m.rule.message", ".m.rule.encrypted"]
    assert rules["room"] == [] and rules["sender"] == []


def test_default_rules_are_personalised() -> None:
    rules = default_rules(ALICE)
    invite = rules["override"][2]
    assert {"kind": "event_match", "key": "state_key", "pattern": ALICE} in invite["conditions"]
    mention = rules["override"][4]
    assert mention["conditions"][0]["value"] == ALICE
    assert rules["content"][0]["pattern"] == "alice"


def test_master_is_disabled_and_others_enabled_by_default() -> None:
    rules = default_rules(ALICE)
    assert rules["override"][0]["enabled"] is False
    assert all(r["enabled"] and r["default"] for kind in rules.values() for r in kind[1:])


def test_default_rules_are_fresh_copies() -> None:
    default_rules(ALICE)["override"][0]["enabled"] = True
    assert default_rules(ALICE)["override"][0]["enabled"] is False


def test_default_rule_kind() -> None:
    assert default_rule_kind(".m.rule.master") == "override"
    assert default_rule_kind(".m.rule.contains_user_name") == "content"
    assert default_rule_kind(".m.rule.message") == "underride"
    assert default_rule_kind(".m.rule.nope") is None


def test_user_rules_rank_above_defaults_but_below_master() -> None:
    snapshot = PushRulesSnapshot(user_rules=[
        UserPushRule("override", "mine", 2, {"actions": [], "conditions": []}, True),
        UserPushRule("underride", "low", 1, {"actions": ["notify"], "conditions": []}, False),
        UserPushRule("room", "!r:x", 1, {"actions": []}, True),
        UserPushRule("content", "cake", 1, {"actions": [], "pattern": "cake*"}, True),
    ])
    ruleset = build_ruleset(ALICE, snapshot)
    assert ids(ruleset["override"])[:3] == [".m.rule.master", "mine", ".m.rule.suppress_notices"]
    assert ids(ruleset["underride"])[0] == "low" and ruleset["underride"][0]["enabled"] is False
    assert ruleset["room"] == [{"rule_id": "!r:x", "default": False, "enabled": True,
                                "actions": []}]
    assert ruleset["content"][0] == {"rule_id": "cake", "default": False, "enabled": True,
                                     "actions": [], "pattern": "cake*"}


def test_default_overrides_apply() -> None:
    snapshot = PushRulesSnapshot(default_overrides={
        ".m.rule.master": DefaultRuleOverride(enabled=True),
        ".m.rule.message": DefaultRuleOverride(actions=[]),
    })
    ruleset = build_ruleset(ALICE, snapshot)
    assert ruleset["override"][0]["enabled"] is True
    message = [r for r in ruleset["underride"] if r["rule_id"] == ".m.rule.message"][0]
    assert message["actions"] == [] and message["enabled"] is True
