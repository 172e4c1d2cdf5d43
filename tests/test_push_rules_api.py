"""Push rule endpoints against a running node: defaults, user rules, ordering, enable/actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import Client, NodeProcess

PR = "/_matrix/client/v3/pushrules"


def rule_ids(rules: list[dict[str, Any]]) -> list[str]:
    return [r["rule_id"] for r in rules]


def ruleset(client: Client) -> dict[str, list[dict[str, Any]]]:
    body = client.get(PR + "/")
    assert client.status == 200, body
    return body["global"]


def put_rule(client: Client, kind: str, rule_id: str, body: dict[str, Any],
             **params: str) -> Any:
    return client.put(f"{PR}/global/{kind}/{quote(rule_id, safe='')}", body, params=params)


def test_new_user_gets_the_spec_default_ruleset(any_node: NodeProcess) -> None:
    alice = any_node.register()
    rules = ruleset(alice)
    assert rule_ids(rules["override"]) == [
        ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
        ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
        ".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone",
        ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"]
    assert rule_ids(rules["underride"]) == [
        ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
        ".m.rule.message", ".m.rule.encrypted"]
    assert rules["content"][0]["pattern"] == alice.user_id[1:].split(":")[0]
    assert rules["room"] == [] and rules["sender"] == []
    assert rules["override"][0] == {"rule_id": ".m.rule.master", "default": True,
                                    "enabled": False, "conditions": [], "actions": []}


def test_drill_down_to_scope_and_kind(node: NodeProcess) -> None:
    alice = node.register()
    assert alice.get(PR + "/global/") == ruleset(alice)
    assert rule_ids(alice.get(PR + "/global/underride/"))[0] == ".m.rule.call"


def test_get_one_default_rule(node: NodeProcess) -> None:
    alice = node.register()
    rule = alice.get(PR + "/global/underride/.m.rule.message")
    assert rule == {"rule_id": ".m.rule.message", "default": True, "enabled": True,
                    "conditions": [{"kind": "event_match", "key": "type",
                                    "pattern": "m.room.message"}],
                    "actions": ["notify"]}


@pytest.mark.parametrize("path", ["/global/override/nope", "/global/override/.m.rule.message",
                                  "/global/room/!nope:x"])
def test_unknown_rule_is_not_found(node: NodeProcess, path: str) -> None:
    alice = node.register()
    body = alice.get(PR + path)
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_unknown_kind_or_scope_is_invalid(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(PR + "/global/sideways/x")
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")
    body = alice.put(PR + "/device/override/x", {"actions": []})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_push_rules_need_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.get(PR + "/")
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_add_content_rule_ranks_above_the_default(any_node: NodeProcess) -> None:
    alice = any_node.register()
    assert put_rule(alice, "content", "cake", {"pattern": "cake*lie", "actions": ["notify"]}) == {}
    assert alice.status == 200
    rule = alice.get(PR + "/global/content/cake")
    assert rule == {"rule_id": "cake", "default": False, "enabled": True,
                    "pattern": "cake*lie", "actions": ["notify"]}
    assert rule_ids(ruleset(alice)["content"]) == ["cake", ".m.rule.contains_user_name"]


def test_user_override_rules_sit_between_master_and_other_defaults(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "override", "beer", {
        "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                       {"kind": "room_member_count", "is": "<=10"}],
        "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}]})
    assert alice.status == 200
    assert rule_ids(ruleset(alice)["override"])[:3] == [
        ".m.rule.master", "beer", ".m.rule.suppress_notices"]


def test_room_and_sender_rules(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "room", "!dj234r78wl45Gh4D:matrix.org", {"actions": []})
    put_rule(alice, "sender", "@spambot:matrix.org", {"actions": []})
    rules = ruleset(alice)
    assert rules["room"] == [{"rule_id": "!dj234r78wl45Gh4D:matrix.org", "default": False,
                              "enabled": True, "actions": []}]
    assert rule_ids(rules["sender"]) == ["@spambot:matrix.org"]


def test_room_rule_id_must_be_a_room_and_sender_rule_id_a_user(node: NodeProcess) -> None:
    alice = node.register()
    body = put_rule(alice, "room", "@u:x", {"actions": []})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")
    body = put_rule(alice, "sender", "!r:x", {"actions": []})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_before_and_after_order_rules(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "underride", "a", {"actions": []})
    put_rule(alice, "underride", "b", {"actions": []})  # b, a
    put_rule(alice, "underride", "c", {"actions": []}, before="a")  # b, c, a
    put_rule(alice, "underride", "d", {"actions": []}, after="a")  # b, c, a, d
    assert alice.status == 200
    assert rule_ids(ruleset(alice)["underride"])[:4] == ["b", "c", "a", "d"]


def test_unknown_before_rule_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = put_rule(alice, "override", "x", {"actions": []}, before="missing")
    assert (alice.status, body["errcode"]) == (400, "M_UNKNOWN")
    assert "missing" in body["error"]
    alice.get(PR + "/global/override/x")
    assert alice.status == 404


def test_placing_relative_to_a_default_rule_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = put_rule(alice, "override", "x", {"actions": []}, after=".m.rule.master")
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


@pytest.mark.parametrize("rule_id", [".m.rule.master", ".mine", "a/b", "a\\b"])
def test_reserved_or_malformed_rule_ids_are_refused(node: NodeProcess, rule_id: str) -> None:
    alice = node.register()
    body = put_rule(alice, "override", rule_id, {"actions": []})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


@pytest.mark.parametrize("kind,body,errcode", [
    ("override", {}, "M_MISSING_PARAM"),
    ("override", {"actions": "notify"}, "M_BAD_JSON"),
    ("override", {"actions": ["explode"]}, "M_INVALID_PARAM"),
    ("override", {"actions": [{"value": "x"}]}, "M_INVALID_PARAM"),
    ("override", {"actions": [3]}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": {"kind": "event_match"}}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": [{"key": "type"}]}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": [{"kind": "event_match", "key": "type"}]},
     "M_INVALID_PARAM"),
    ("underride", {"actions": [], "conditions": [{"kind": "room_member_count", "is": "~2"}]},
     "M_INVALID_PARAM"),
    ("override", {"actions": [], "conditions": [
        {"kind": "event_property_is", "key": "content.x", "value": {"a": 1}}]},
     "M_INVALID_PARAM"),
    ("content", {"actions": []}, "M_MISSING_PARAM"),
    ("content", {"actions": [], "pattern": ""}, "M_INVALID_PARAM"),
])
def test_invalid_rule_bodies_are_refused(node: NodeProcess, kind: str, body: dict[str, Any],
                                         errcode: str) -> None:
    alice = node.register()
    response = put_rule(alice, kind, "bad", body)
    assert (alice.status, response["errcode"]) == (400, errcode)


def test_unknown_condition_kinds_are_accepted(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "override", "future", {
        "actions": ["notify"], "conditions": [{"kind": "org.example.future", "x": 1}]})
    assert alice.status == 200


def test_legacy_no_op_actions_are_accepted(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "room", "!r:x", {"actions": ["dont_notify", "coalesce"]})
    assert alice.status == 200


def test_delete_user_rule(any_node: NodeProcess) -> None:
    alice = any_node.register()
    put_rule(alice, "sender", "@spam:x", {"actions": []})
    assert alice.delete(PR + "/global/sender/@spam:x") == {}
    assert alice.status == 200
    assert ruleset(alice)["sender"] == []
    body = alice.delete(PR + "/global/sender/@spam:x")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_default_rules_cannot_be_deleted(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.delete(PR + "/global/override/.m.rule.master")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert rule_ids(ruleset(alice)["override"])[0] == ".m.rule.master"


def test_enable_and_disable_a_default_rule(any_node: NodeProcess) -> None:
    alice = any_node.register()
    path = PR + "/global/override/.m.rule.master/enabled"
    assert alice.get(path) == {"enabled": False}
    assert alice.put(path, {"enabled": True}) == {}
    assert alice.get(path) == {"enabled": True}
    assert ruleset(alice)["override"][0]["enabled"] is True


def test_set_actions_of_a_default_rule(node: NodeProcess) -> None:
    alice = node.register()
    path = PR + "/global/underride/.m.rule.message/actions"
    assert alice.get(path) == {"actions": ["notify"]}
    alice.put(path, {"actions": ["notify", {"set_tweak": "highlight"}]})
    assert alice.status == 200
    assert alice.get(path) == {"actions": ["notify", {"set_tweak": "highlight"}]}
    assert alice.get(PR + "/global/underride/.m.rule.message/enabled") == {"enabled": True}


def test_enable_and_actions_of_a_user_rule(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "content", "tea", {"pattern": "tea", "actions": ["notify"]})
    alice.put(PR + "/global/content/tea/enabled", {"enabled": False})
    alice.put(PR + "/global/content/tea/actions", {"actions": []})
    assert alice.get(PR + "/global/content/tea") == {
        "rule_id": "tea", "default": False, "enabled": False, "pattern": "tea", "actions": []}
    put_rule(alice, "content", "tea", {"pattern": "tea*", "actions": ["notify"]})
    assert alice.get(PR + "/global/content/tea/enabled") == {"enabled": False}


@pytest.mark.parametrize("path", ["/global/override/nope/enabled",
                                  "/global/content/.m.rule.master/enabled",
                                  "/global/override/.m.rule.nope/actions"])
def test_enabled_and_actions_of_unknown_rules_are_not_found(node: NodeProcess,
                                                            path: str) -> None:
    alice = node.register()
    alice.get(PR + path)
    assert alice.status == 404
    body_key = "enabled" if path.endswith("enabled") else "actions"
    body = alice.put(PR + path, {body_key: True if body_key == "enabled" else []})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("suffix,body,errcode", [
    ("enabled", {"enabled": "yes"}, "M_BAD_JSON"),
    ("enabled", {}, "M_MISSING_PARAM"),
    ("actions", {"actions": ["bogus"]}, "M_INVALID_PARAM"),
    ("actions", {}, "M_MISSING_PARAM"),
])
def test_invalid_enabled_or_actions_bodies(node: NodeProcess, suffix: str,
                                           body: dict[str, Any], errcode: str) -> None:
    alice = node.register()
    response = alice.put(f"{PR}/global/override/.m.rule.master/{suffix}", body)
    assert (alice.status, response["errcode"]) == (400, errcode)


def test_changes_are_published_as_m_push_rules_account_data(node: NodeProcess) -> None:
    alice = node.register()
    put_rule(alice, "room", "!quiet:x", {"actions": []})
    alice.put(PR + "/global/override/.m.rule.master/enabled", {"enabled": True})
    published = alice.get(f"/_matrix/client/v3/user/{alice.user_id}/account_data/m.push_rules")
    assert alice.status == 200
    assert published == {"global": ruleset(alice)}


def test_m_push_rules_account_data_holds_defaults_before_any_change(node: NodeProcess) -> None:
    alice = node.register()
    published = alice.get(f"/_matrix/client/v3/user/{alice.user_id}/account_data/m.push_rules")
    assert alice.status == 200
    assert rule_ids(published["global"]["underride"])[0] == ".m.rule.call"


def test_push_rules_are_per_user(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    put_rule(alice, "room", "!r:x", {"actions": []})
    alice.put(PR + "/global/override/.m.rule.master/enabled", {"enabled": True})
    rules = ruleset(bob)
    assert rules["room"] == [] and rules["override"][0]["enabled"] is False
