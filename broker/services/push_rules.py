"""Push rules of a user: the spec's defaults merged with the user's own rules, and changes to
them.  Every change rewrites the user's ``m.push_rules`` global account data under a new stream
id, in the same transaction, so other devices see it in /sync."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from broker.errors import InvalidInput, MalformedContent, MissingInput, NotFound
from broker.push_rules_defaults import KINDS, build_ruleset, default_rule_kind, push_rules_content
from broker.streams import StreamWriter
from storage.push_rules import PushRuleNotFound, PushRulesSnapshot, PushRuleStore

Ruleset = dict[str, list[dict[str, Any]]]
Write = Callable[[int, Callable[[PushRulesSnapshot], dict[str, Any]]], defer.Deferred[Any]]

KNOWN_ACTIONS = frozenset({"notify", "dont_notify", "coalesce"})  # the last two are no-ops
MAX_RULE_ID_BYTES = 255
ROOM_MEMBER_COUNT = re.compile(r"(==|<=|>=|<|>)?[0-9]+")


def _check_scope_and_kind(scope: str, kind: str) -> None:
    if scope != "global":
        raise InvalidInput(f"Unknown push rule scope {scope!r}: only 'global' is supported.")
    if kind not in KINDS:
        raise InvalidInput(f"Unknown push rule kind {kind!r}.")


def validate_actions(actions: Any) -> list[Any]:
    """A rule's actions: strings from the spec, or ``{"set_tweak": name, ...}`` objects."""
    if not isinstance(actions, list):
        raise MalformedContent("'actions' must be an array.")
    for action in actions:
        if isinstance(action, str):
            if action not in KNOWN_ACTIONS:
                raise InvalidInput(f"Unrecognised action {action!r}.")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise InvalidInput("An object action must have a string 'set_tweak'.")
        else:
            raise MalformedContent("Each action must be a string or an object.")
    return actions


def _need_string(condition: dict[str, Any], key: str) -> None:
    if not isinstance(condition.get(key), str):
        raise InvalidInput(f"A {condition['kind']} condition needs a string '{key}'.")


def _is_scalar(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    return isinstance(value, int) and abs(value) <= 2**53 - 1


def validate_conditions(conditions: Any) -> list[Any]:
    """Override/underride conditions; unknown kinds are kept (the spec: they never match)."""
    if not isinstance(conditions, list):
        raise MalformedContent("'conditions' must be an array.")
    for condition in conditions:
        if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
            raise MalformedContent("Each condition must be an object with a string 'kind'.")
        kind = condition["kind"]
        if kind == "event_match":
            _need_string(condition, "key")
            _need_string(condition, "pattern")
        elif kind in ("event_property_is", "event_property_contains"):
            _need_string(condition, "key")
            if "value" not in condition or not _is_scalar(condition["value"]):
                raise InvalidInput(f"A {kind} condition needs a 'value' that is a string,"
                                " an integer, a boolean or null.")
        elif kind == "room_member_count":
            is_value = condition.get("is")
            if not isinstance(is_value, str) or not ROOM_MEMBER_COUNT.fullmatch(is_value):
                raise InvalidInput("A room_member_count condition needs 'is' such as '2' or '<=10'.")
        elif kind == "sender_notification_permission":
            _need_string(condition, "key")
    return conditions


def _check_new_rule_id(kind: str, rule_id: str) -> None:
    if rule_id.startswith("."):
        raise InvalidInput("Rule ids starting with '.' are reserved for server-default rules.")
    if "/" in rule_id or "\\" in rule_id:
        raise InvalidInput("Rule ids may not contain '/' or '\\'.")
    if len(rule_id.encode("utf-8")) > MAX_RULE_ID_BYTES:
        raise InvalidInput(f"Rule ids must be at most {MAX_RULE_ID_BYTES} bytes.")
    if kind == "room" and not rule_id.startswith("!"):
        raise InvalidInput("The rule id of a room rule must be a room ID.")
    if kind == "sender" and not (rule_id.startswith("@") and ":" in rule_id):
        raise InvalidInput("The rule id of a sender rule must be a user ID.")


def validate_rule_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """What to store for a user rule of ``kind``: actions plus pattern or conditions."""
    stored: dict[str, Any] = {"actions": validate_actions(_required(body, "actions", list))}
    if kind == "content":
        pattern = _required(body, "pattern", str)
        if not pattern:
            raise InvalidInput("'pattern' must not be empty.")
        stored["pattern"] = pattern
    elif kind in ("override", "underride"):
        stored["conditions"] = validate_conditions(body.get("conditions", []))
    return stored


def _find(ruleset: dict[str, list[dict[str, Any]]], kind: str, rule_id: str) -> dict[str, Any]:
    for rule in ruleset[kind]:
        if rule["rule_id"] == rule_id:
            return rule
    raise NotFound("The push rule was not found.")


def _required(body: dict[str, Any], key: str, kind: type) -> Any:
    if key not in body:
        raise MissingInput(f"Missing '{key}'")
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MalformedContent(f"'{key}' must be {'an array' if kind is list else 'a string'}")
    return value


check_scope_and_kind = _check_scope_and_kind
check_new_rule_id = _check_new_rule_id


class PushRules:
    def __init__(self, store: PushRuleStore, streams: StreamWriter) -> None:
        self.store = store
        self.streams = streams

    async def ruleset(self, user_id: str) -> Ruleset:
        return build_ruleset(user_id, await self.store.get_push_rules(user_id))

    async def rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        return _find(await self.ruleset(user_id), kind, rule_id)

    async def _change(self, user_id: str, write: Write) -> None:
        def render(snapshot: PushRulesSnapshot) -> dict[str, Any]:
            return push_rules_content(user_id, snapshot)

        await self.streams.write(lambda stream_id: write(stream_id, render), users=[user_id])

    async def add(self, user_id: str, kind: str, rule_id: str, body: dict[str, Any],
                  before: str | None, after: str | None) -> None:
        """Add or replace a user rule (``body`` holds ``actions`` and the kind's fields)."""
        _check_new_rule_id(kind, rule_id)
        stored = validate_rule_body(kind, body)
        for anchor in (before, after):
            if anchor is not None and anchor.startswith("."):
                raise InvalidInput("Rules cannot be placed relative to a server-default rule.")
        try:
            await self._change(user_id, lambda stream_id, render: self.store.add_push_rule(
                user_id, kind, rule_id, stored, before=before, after=after,
                stream_id=stream_id, render=render))
        except PushRuleNotFound as e:
            raise InvalidInput(f"before/after rule not found: {e.rule_id}",
                               errcode="M_UNKNOWN") from e

    async def delete(self, user_id: str, kind: str, rule_id: str) -> None:
        if rule_id.startswith("."):
            raise NotFound("The push rule was not found (server-default rules cannot be"
                           " deleted; disable them instead).")
        try:
            await self._change(user_id, lambda stream_id, render: self.store.delete_push_rule(
                user_id, kind, rule_id, stream_id=stream_id, render=render))
        except PushRuleNotFound as e:
            raise NotFound("The push rule was not found.") from e

    async def set_attribute(self, user_id: str, kind: str, rule_id: str,
                            values: dict[str, Any]) -> None:
        """Set ``enabled`` or ``actions`` of a user rule or of a server-default rule."""
        if "actions" in values:
            values = {"actions": validate_actions(values["actions"])}
        store = self.store
        if rule_id.startswith("."):
            if default_rule_kind(rule_id) != kind:
                raise NotFound("The push rule was not found.")
            await self._change(user_id, lambda stream_id, render:
                               store.set_default_rule_attribute(
                                   user_id, rule_id, stream_id=stream_id, render=render,
                                   **values))
            return
        try:
            await self._change(user_id, lambda stream_id, render: store.set_user_rule_attribute(
                user_id, kind, rule_id, stream_id=stream_id, render=render, **values))
        except PushRuleNotFound as e:
            raise NotFound("The push rule was not found.") from e
