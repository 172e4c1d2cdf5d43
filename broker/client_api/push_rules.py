"""Push rules: ``GET /pushrules/`` (the user's rules merged with the spec's defaults),
``GET/PUT/DELETE /pushrules/global/{kind}/{ruleId}`` and ``GET/PUT .../enabled`` and
``.../actions`` (which also work on server-default rules).

Every change rewrites the user's ``m.push_rules`` global account data under a new stream id, in
the same transaction, so other devices see it in /sync.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import MissingInput
from broker.http.bodies import Body, JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.push_rules import PushRules, check_new_rule_id, check_scope_and_kind

Response = tuple[int, dict[str, Any]]
BASE = f"{CLIENT_PREFIX}/pushrules"
RULE = BASE + "/(?P<scope>[^/]+)/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)"
ATTRIBUTE = RULE + "/(?P<attribute>enabled|actions)"


class RuleAttribute(Body):
    """``PUT .../enabled`` or ``.../actions``: the new value of the attribute the path names
    (the actions are checked by the service)."""

    enabled: bool | None = None
    actions: list[Any] | None = None


class PushRuleEndpoints(Endpoints):
    def __init__(self, push_rules: PushRules) -> None:
        self.push_rules = push_rules

    @endpoint("GET", BASE, access=Access.USER)
    @endpoint("GET", BASE + "/", access=Access.USER)
    async def get_all(self, call: Call) -> Response:
        return 200, {"global": await self.push_rules.ruleset(call.user.user_id)}

    @endpoint("GET", BASE + "/(?P<scope>[^/]+)", access=Access.USER)
    @endpoint("GET", BASE + "/(?P<scope>[^/]+)/", access=Access.USER)
    async def get_scope(self, call: Call, scope: str) -> Response:
        check_scope_and_kind(scope, "override")
        return 200, await self.push_rules.ruleset(call.user.user_id)

    @endpoint("GET", BASE + "/(?P<scope>[^/]+)/(?P<kind>[^/]+)/", access=Access.USER)
    async def get_kind(self, call: Call, scope: str, kind: str) -> tuple[int, Any]:
        """The rules of one kind, as a bare array (the drill-down form)."""
        check_scope_and_kind(scope, kind)
        return 200, (await self.push_rules.ruleset(call.user.user_id))[kind]

    @endpoint("GET", RULE, access=Access.USER)
    async def get_rule(self, call: Call, scope: str, kind: str, rule_id: str) -> Response:
        check_scope_and_kind(scope, kind)
        return 200, await self.push_rules.rule(call.user.user_id, kind, rule_id)

    @endpoint("PUT", RULE, access=Access.USER, body=JsonObject)
    async def put_rule(self, call: Call, scope: str, kind: str, rule_id: str,
                       body: dict[str, Any]) -> Response:
        check_scope_and_kind(scope, kind)
        check_new_rule_id(kind, rule_id)
        await self.push_rules.add(call.user.user_id, kind, rule_id, body,
                                  call.arg("before"), call.arg("after"))
        return 200, {}

    @endpoint("DELETE", RULE, access=Access.USER)
    async def delete_rule(self, call: Call, scope: str, kind: str, rule_id: str) -> Response:
        check_scope_and_kind(scope, kind)
        await self.push_rules.delete(call.user.user_id, kind, rule_id)
        return 200, {}

    @endpoint("GET", ATTRIBUTE, access=Access.USER)
    async def get_attribute(self, call: Call, scope: str, kind: str, rule_id: str,
                            attribute: str) -> Response:
        check_scope_and_kind(scope, kind)
        rule = await self.push_rules.rule(call.user.user_id, kind, rule_id)
        return 200, {attribute: rule[attribute]}

    @endpoint("PUT", ATTRIBUTE, access=Access.USER, body=RuleAttribute)
    async def put_attribute(self, call: Call, scope: str, kind: str, rule_id: str,
                            attribute: str, body: RuleAttribute) -> Response:
        check_scope_and_kind(scope, kind)
        if not body.given(attribute):
            raise MissingInput(f"Missing '{attribute}'")
        await self.push_rules.set_attribute(call.user.user_id, kind, rule_id,
                                            {attribute: getattr(body, attribute)})
        return 200, {}
