"""Push rules: ``GET /pushrules/`` (the user's rules merged with the spec's defaults),
``GET/PUT/DELETE /pushrules/global/{kind}/{ruleId}`` and ``GET/PUT .../enabled`` and
``.../actions`` (which also work on server-default rules).

Every change rewrites the user's ``m.push_rules`` global account data under a new stream id, in
the same transaction, so other devices see it in /sync.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import MatrixError, bad_param, bad_type, not_found
from broker.http.parsing import parse_json_body, query_arg
from broker.http.validation import require
from broker.push_rules_defaults import KINDS, build_ruleset, default_rule_kind, push_rules_content
from storage.push_rules import PushRuleNotFound, PushRulesSnapshot

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

KNOWN_ACTIONS = frozenset({"notify", "dont_notify", "coalesce"})  # the last two are no-ops
MAX_RULE_ID_BYTES = 255
ROOM_MEMBER_COUNT = re.compile(r"(==|<=|>=|<|>)?[0-9]+")

Response = tuple[int, dict[str, Any]]


def _check_scope_and_kind(scope: str, kind: str) -> None:
    if scope != "global":
        raise bad_param(f"Unknown push rule scope {scope!r}: only 'global' is supported.")
    if kind not in KINDS:
        raise bad_param(f"Unknown push rule kind {kind!r}.")


def validate_actions(actions: Any) -> list[Any]:
    """A rule's actions: strings from the spec, or ``{"set_tweak": name, ...}`` objects."""
    if not isinstance(actions, list):
        raise bad_type("'actions' must be an array.")
    for action in actions:
        if isinstance(action, str):
            if action not in KNOWN_ACTIONS:
                raise bad_param(f"Unrecognised action {action!r}.")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise bad_param("An object action must have a string 'set_tweak'.")
        else:
            raise bad_type("Each action must be a string or an object.")
    return actions


def _need_string(condition: dict[str, Any], key: str) -> None:
    if not isinstance(condition.get(key), str):
        raise bad_param(f"A {condition['kind']} condition needs a string '{key}'.")


def _is_scalar(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    return isinstance(value, int) and abs(value) <= 2**53 - 1


def validate_conditions(conditions: Any) -> list[Any]:
    """Override/underride conditions; unknown kinds are kept (the spec: they never match)."""
    if not isinstance(conditions, list):
        raise bad_type("'conditions' must be an array.")
    for condition in conditions:
        if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
            raise bad_type("Each condition must be an object with a string 'kind'.")
        kind = condition["kind"]
        if kind == "event_match":
            _need_string(condition, "key")
            _need_string(condition, "pattern")
        elif kind in ("event_property_is", "event_property_contains"):
            _need_string(condition, "key")
            if "value" not in condition or not _is_scalar(condition["value"]):
                raise bad_param(f"A {kind} condition needs a 'value' that is a string,"
                                " an integer, a boolean or null.")
        elif kind == "room_member_count":
            is_value = condition.get("is")
            if not isinstance(is_value, str) or not ROOM_MEMBER_COUNT.fullmatch(is_value):
                raise bad_param("A room_member_count condition needs 'is' such as '2' or '<=10'.")
        elif kind == "sender_notification_permission":
            _need_string(condition, "key")
    return conditions


def _check_new_rule_id(kind: str, rule_id: str) -> None:
    if rule_id.startswith("."):
        raise bad_param("Rule ids starting with '.' are reserved for server-default rules.")
    if "/" in rule_id or "\\" in rule_id:
        raise bad_param("Rule ids may not contain '/' or '\\'.")
    if len(rule_id.encode("utf-8")) > MAX_RULE_ID_BYTES:
        raise bad_param(f"Rule ids must be at most {MAX_RULE_ID_BYTES} bytes.")
    if kind == "room" and not rule_id.startswith("!"):
        raise bad_param("The rule id of a room rule must be a room ID.")
    if kind == "sender" and not (rule_id.startswith("@") and ":" in rule_id):
        raise bad_param("The rule id of a sender rule must be a user ID.")


def validate_rule_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """What to store for a user rule of ``kind``: actions plus pattern or conditions."""
    stored: dict[str, Any] = {"actions": validate_actions(require(body, "actions", list))}
    if kind == "content":
        pattern = require(body, "pattern", str)
        if not pattern:
            raise bad_param("'pattern' must not be empty.")
        stored["pattern"] = pattern
    elif kind in ("override", "underride"):
        stored["conditions"] = validate_conditions(body.get("conditions", []))
    return stored


def _find(ruleset: dict[str, list[dict[str, Any]]], kind: str, rule_id: str) -> dict[str, Any]:
    for rule in ruleset[kind]:
        if rule["rule_id"] == rule_id:
            return rule
    raise not_found("The push rule was not found.")


def register_servlets(node: Node, router: Router) -> None:
    store = node.stores.push_rules

    async def ruleset_of(user_id: str) -> dict[str, list[dict[str, Any]]]:
        return build_ruleset(user_id, await store.get_push_rules(user_id))

    async def change(user_id: str,
                     write: Callable[[int, Callable[[PushRulesSnapshot], dict[str, Any]]],
                                     defer.Deferred[Any]]) -> None:
        def render(snapshot: PushRulesSnapshot) -> dict[str, Any]:
            return push_rules_content(user_id, snapshot)

        await node.write_with_stream_id(lambda stream_id: write(stream_id, render),
                                        users=[user_id])

    async def get_all(request: Request) -> Response:
        requester = await node.auth.get_requester(request)
        return 200, {"global": await ruleset_of(requester.user_id)}

    async def get_scope(request: Request, scope: str) -> Response:
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, "override")
        return 200, await ruleset_of(requester.user_id)

    async def get_kind(request: Request, scope: str, kind: str) -> tuple[int, Any]:
        """The rules of one kind, as a bare array (the drill-down form)."""
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, kind)
        return 200, (await ruleset_of(requester.user_id))[kind]

    async def get_rule(request: Request, scope: str, kind: str, rule_id: str) -> Response:
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, kind)
        return 200, _find(await ruleset_of(requester.user_id), kind, rule_id)

    async def put_rule(request: Request, scope: str, kind: str, rule_id: str) -> Response:
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, kind)
        _check_new_rule_id(kind, rule_id)
        body = validate_rule_body(kind, parse_json_body(request))
        before, after = query_arg(request, "before"), query_arg(request, "after")
        for anchor in (before, after):
            if anchor is not None and anchor.startswith("."):
                raise bad_param("Rules cannot be placed relative to a server-default rule.")
        user_id = requester.user_id
        try:
            await change(user_id, lambda stream_id, render: store.add_push_rule(
                user_id, kind, rule_id, body, before=before, after=after, stream_id=stream_id,
                render=render))
        except PushRuleNotFound as e:
            raise MatrixError(400, "M_UNKNOWN", f"before/after rule not found: {e.rule_id}"
                              ) from e
        return 200, {}

    async def delete_rule(request: Request, scope: str, kind: str, rule_id: str) -> Response:
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, kind)
        user_id = requester.user_id
        if rule_id.startswith("."):
            raise not_found("The push rule was not found (server-default rules cannot be"
                            " deleted; disable them instead).")
        try:
            await change(user_id, lambda stream_id, render: store.delete_push_rule(
                user_id, kind, rule_id, stream_id=stream_id, render=render))
        except PushRuleNotFound as e:
            raise not_found("The push rule was not found.") from e
        return 200, {}

    async def get_attribute(request: Request, scope: str, kind: str, rule_id: str,
                            attribute: str) -> Response:
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, kind)
        rule = _find(await ruleset_of(requester.user_id), kind, rule_id)
        return 200, {attribute: rule[attribute]}

    async def put_attribute(request: Request, scope: str, kind: str, rule_id: str,
                            attribute: str) -> Response:
        requester = await node.auth.get_requester(request)
        _check_scope_and_kind(scope, kind)
        body = parse_json_body(request)
        values: dict[str, Any] = {}
        if attribute == "enabled":
            values["enabled"] = require(body, "enabled", bool)
        else:
            values["actions"] = validate_actions(require(body, "actions", list))
        user_id = requester.user_id
        if rule_id.startswith("."):
            if default_rule_kind(rule_id) != kind:
                raise not_found("The push rule was not found.")
            await change(user_id, lambda stream_id, render: store.set_default_rule_attribute(
                user_id, rule_id, stream_id=stream_id, render=render, **values))
            return 200, {}
        try:
            await change(user_id, lambda stream_id, render: store.set_user_rule_attribute(
                user_id, kind, rule_id, stream_id=stream_id, render=render, **values))
        except PushRuleNotFound as e:
            raise not_found("The push rule was not found.") from e
        return 200, {}

    base = f"{CLIENT_PREFIX}/pushrules"
    rule = base + "/(?P<scope>[^/]+)/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)"
    attribute = rule + "/(?P<attribute>enabled|actions)"
    router.register("GET", base + "/?", get_all)
    router.register("GET", base + "/(?P<scope>[^/]+)/?", get_scope)
    router.register("GET", base + "/(?P<scope>[^/]+)/(?P<kind>[^/]+)/", get_kind)
    router.register("GET", rule, get_rule)
    router.register("PUT", rule, put_rule)
    router.register("DELETE", rule, delete_rule)
    router.register("GET", attribute, get_attribute)
    router.register("PUT", attribute, put_attribute)
