"""The spec's server-default push rules (Client-Server API, "Predefined Rules"), and the merge of
a user's stored rules with them into the ruleset that /pushrules/ and ``m.push_rules`` report.

Order within each kind follows the spec: ``.m.rule.master`` outranks everything (user rules
included); every other default rule ranks below the user's rules of its kind.
"""

from __future__ import annotations

import copy
from typing import Any

from storage.push_rules import PushRulesSnapshot

KINDS = ("override", "content", "room", "sender", "underride")

JsonDict = dict[str, Any]

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> JsonDict:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[JsonDict], actions: list[Any], *,
          enabled: bool = True) -> JsonDict:
    return {"rule_id": rule_id, "default": True, "enabled": enabled, "conditions": conditions,
            "actions": actions}


_ONE_TO_ONE = {"kind": "room_member_count", "is": "2"}
_MASTER = _rule(".m.rule.master", [], [], enabled=False)


def _override_rules(user_id: str) -> list[JsonDict]:
    """The default override rules after ``.m.rule.master``, in spec order."""
    return [
        _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
        _rule(".m.rule.invite_for_me", [
            _match("type", "m.room.member"), _match("content.membership", "invite"),
            _match("state_key", user_id)], ["notify", _SOUND]),
        _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
        _rule(".m.rule.is_user_mention", [{
            "kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
            "value": user_id}], ["notify", _SOUND, _HIGHLIGHT]),
        _rule(".m.rule.contains_display_name", [{"kind": "contains_display_name"}],
              ["notify", _SOUND, _HIGHLIGHT]),
        _rule(".m.rule.is_room_mention", [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"}],
            ["notify", _HIGHLIGHT]),
        _rule(".m.rule.roomnotif", [
            _match("content.body", "@room"),
            {"kind": "sender_notification_permission", "key": "room"}],
            ["notify", _HIGHLIGHT]),
        _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")],
              ["notify", _HIGHLIGHT]),
        _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
        _rule(".m.rule.room.server_acl",
              [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
        _rule(".m.rule.suppress_edits", [{
            "kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
            "value": "m.replace"}], []),
    ]


def _content_rules(user_id: str) -> list[JsonDict]:
    localpart = user_id[1:].split(":", 1)[0]
    return [{"rule_id": ".m.rule.contains_user_name", "default": True, "enabled": True,
             "pattern": localpart, "actions": ["notify", _SOUND, _HIGHLIGHT]}]


_UNDERRIDE = [
    _rule(".m.rule.call", [_match("type", "m.call.invite")],
          ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(".m.rule.encrypted_room_one_to_one", [_ONE_TO_ONE, _match("type", "m.room.encrypted")],
          ["notify", _SOUND]),
    _rule(".m.rule.room_one_to_one", [_ONE_TO_ONE, _match("type", "m.room.message")],
          ["notify", _SOUND]),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]


def default_rules(user_id: str) -> dict[str, list[JsonDict]]:
    """Every server-default rule for ``user_id`` by kind, in spec order (fresh copies)."""
    rules = {
        "override": [_MASTER, *_override_rules(user_id)],
        "content": _content_rules(user_id),
        "room": [],
        "sender": [],
        "underride": _UNDERRIDE,
    }
    return copy.deepcopy(rules)


def default_rule_kind(rule_id: str) -> str | None:
    """The kind of a server-default rule id, or None when no default rule has that id."""
    return _DEFAULT_KINDS.get(rule_id)


_DEFAULT_KINDS = {rule["rule_id"]: kind
                  for kind, rules in default_rules("@user:example.org").items()
                  for rule in rules}


def _user_rule_json(kind: str, rule_id: str, body: JsonDict, enabled: bool) -> JsonDict:
    rule: JsonDict = {"rule_id": rule_id, "default": False, "enabled": enabled,
                      "actions": body.get("actions", [])}
    if kind == "content":
        rule["pattern"] = body.get("pattern", "")
    elif kind in ("override", "underride"):
        rule["conditions"] = body.get("conditions", [])
    # room and sender rules have no conditions on the wire: the rule id is the room or user
    return rule


def build_ruleset(user_id: str, snapshot: PushRulesSnapshot) -> dict[str, list[JsonDict]]:
    """The user's global ruleset: stored rules merged with the (possibly adjusted) defaults."""
    defaults = default_rules(user_id)
    for rules in defaults.values():
        for rule in rules:
            override = snapshot.default_overrides.get(rule["rule_id"])
            if override is not None:
                if override.enabled is not None:
                    rule["enabled"] = override.enabled
                if override.actions is not None:
                    rule["actions"] = override.actions
    user_rules: dict[str, list[JsonDict]] = {kind: [] for kind in KINDS}
    for stored in snapshot.user_rules:  # already most important first within each kind
        user_rules[stored.kind].append(
            _user_rule_json(stored.kind, stored.rule_id, stored.body, stored.enabled))
    ruleset = {kind: user_rules[kind] + defaults[kind] for kind in KINDS}
    master = defaults["override"][0]
    ruleset["override"] = [master, *user_rules["override"], *defaults["override"][1:]]
    return ruleset


def push_rules_content(user_id: str, snapshot: PushRulesSnapshot) -> JsonDict:
    """The content of the ``m.push_rules`` account data event (and of GET /pushrules/)."""
    return {"global": build_ruleset(user_id, snapshot)}
