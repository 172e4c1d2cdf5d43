"""Push rules: the user's own rules (``push_rules``) and their changes to server-default rules
(``push_rules_enable``: enabled flag and/or actions per default rule id).

The server-default rules themselves live in the broker (they depend on the spec, not on data).
Every change also rewrites the user's ``m.push_rules`` global account data, in the same
transaction and under the change's stream id, so /sync carries the new ruleset; the caller
passes ``render`` to build that content from a :class:`PushRulesSnapshot`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from storage.account_data import GLOBAL, upsert_account_data_txn
from storage.database import Cursor, Database, IntegrityError

PUSH_RULES_TYPE = "m.push_rules"


class PushRuleNotFound(Exception):
    """A rule named in the change (the rule itself, or a before/after anchor) does not exist."""

    def __init__(self, rule_id: str) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id


@dataclass(frozen=True)
class UserPushRule:
    """One user-defined rule; ``body`` holds actions and pattern/conditions as given."""

    kind: str
    rule_id: str
    priority: int
    body: dict[str, Any]
    enabled: bool


@dataclass(frozen=True)
class DefaultRuleOverride:
    """A user's changes to one server-default rule (None: unchanged)."""

    enabled: bool | None = None
    actions: list[Any] | None = None


@dataclass
class PushRulesSnapshot:
    """Everything stored about one user's push rules; user rules most important first."""

    user_rules: list[UserPushRule] = field(default_factory=list)
    default_overrides: dict[str, DefaultRuleOverride] = field(default_factory=dict)


Render = Callable[[PushRulesSnapshot], dict[str, Any]]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _snapshot_txn(cur: Cursor, user_id: str) -> PushRulesSnapshot:
    rows = cur.select_all(
        "SELECT kind, rule_id, priority, rule_json, enabled FROM push_rules WHERE user_id = ?"
        " ORDER BY kind, priority DESC", (user_id,))
    rules = [UserPushRule(kind, rule_id, int(priority), json.loads(body), bool(enabled))
             for kind, rule_id, priority, body, enabled in rows]
    overrides = {
        rule_id: DefaultRuleOverride(None if enabled is None else bool(enabled),
                                     None if actions is None else json.loads(actions))
        for rule_id, enabled, actions in cur.select_all(
            "SELECT rule_id, enabled, actions FROM push_rules_enable WHERE user_id = ?",
            (user_id,))
    }
    return PushRulesSnapshot(rules, overrides)


def _kind_order_txn(cur: Cursor, user_id: str, kind: str) -> list[str]:
    """Rule ids of one kind, most important first (locked on PostgreSQL)."""
    lock = " FOR UPDATE" if cur.engine == "postgres" else ""
    return [r[0] for r in cur.select_all(
        "SELECT rule_id FROM push_rules WHERE user_id = ? AND kind = ?"
        " ORDER BY priority DESC" + lock, (user_id, kind))]


def _renumber_txn(cur: Cursor, user_id: str, kind: str, order: list[str]) -> None:
    cur.executemany(
        "UPDATE push_rules SET priority = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
        [(len(order) - i, user_id, kind, rule_id) for i, rule_id in enumerate(order)])


class PushRuleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_push_rules(self, user_id: str) -> defer.Deferred[PushRulesSnapshot]:
        return self.db.run_interaction("get_push_rules", _snapshot_txn, user_id)

    def _write(self, desc: str, user_id: str, change: Callable[[Cursor], Any], stream_id: int,
               render: Render) -> defer.Deferred[Any]:
        """Apply ``change`` and rewrite m.push_rules from the result, in one transaction."""

        def txn(cur: Cursor) -> Any:
            result = change(cur)
            content = render(_snapshot_txn(cur, user_id))
            upsert_account_data_txn(cur, user_id, GLOBAL, PUSH_RULES_TYPE, content, stream_id)
            return result

        async def run() -> Any:
            try:
                return await self.db.run_interaction(desc, txn)
            except IntegrityError:  # two requests created the same new rule at once: re-apply
                return await self.db.run_interaction(desc, txn)

        return defer.ensureDeferred(run())

    def add_push_rule(
        self, user_id: str, kind: str, rule_id: str, body: dict[str, Any], *,
        before: str | None, after: str | None, stream_id: int, render: Render,
    ) -> defer.Deferred[None]:
        """Create or update a user rule.  A new rule without ``before``/``after`` becomes the
        most important of its kind; an updated one keeps its place (and its enabled flag).
        Raises :class:`PushRuleNotFound` for an unknown ``before``/``after`` rule."""

        def change(cur: Cursor) -> None:
            order = _kind_order_txn(cur, user_id, kind)
            exists = rule_id in order
            if exists:
                cur.execute(
                    "UPDATE push_rules SET rule_json = ? WHERE user_id = ? AND kind = ?"
                    " AND rule_id = ?", (_dumps(body), user_id, kind, rule_id))
            else:
                cur.execute(
                    "INSERT INTO push_rules (user_id, kind, rule_id, priority, rule_json, enabled)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (user_id, kind, rule_id, 0, _dumps(body), True))
            anchor = before if before is not None else after
            if anchor is None and exists:
                return
            if anchor is not None and (anchor == rule_id or anchor not in order):
                raise PushRuleNotFound(anchor)
            if exists:
                order.remove(rule_id)
            if anchor is None:
                order.insert(0, rule_id)
            else:
                position = order.index(anchor)
                order.insert(position if before is not None else position + 1, rule_id)
            _renumber_txn(cur, user_id, kind, order)

        return self._write("add_push_rule", user_id, change, stream_id, render)

    def delete_push_rule(
        self, user_id: str, kind: str, rule_id: str, *, stream_id: int, render: Render
    ) -> defer.Deferred[None]:
        """Delete a user rule; :class:`PushRuleNotFound` if it does not exist."""

        def change(cur: Cursor) -> None:
            cur.execute("DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (user_id, kind, rule_id))
            if cur.rowcount == 0:
                raise PushRuleNotFound(rule_id)

        return self._write("delete_push_rule", user_id, change, stream_id, render)

    def set_user_rule_attribute(
        self, user_id: str, kind: str, rule_id: str, *, enabled: bool | None = None,
        actions: list[Any] | None = None, stream_id: int, render: Render,
    ) -> defer.Deferred[None]:
        """Set a user rule's enabled flag and/or actions; :class:`PushRuleNotFound` if absent."""

        def change(cur: Cursor) -> None:
            lock = " FOR UPDATE" if cur.engine == "postgres" else ""
            raw = cur.select_value(
                "SELECT rule_json FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?"
                + lock, (user_id, kind, rule_id))
            if raw is None:
                raise PushRuleNotFound(rule_id)
            if enabled is not None:
                cur.execute(
                    "UPDATE push_rules SET enabled = ? WHERE user_id = ? AND kind = ?"
                    " AND rule_id = ?", (enabled, user_id, kind, rule_id))
            if actions is not None:
                body = json.loads(raw)
                body["actions"] = actions
                cur.execute(
                    "UPDATE push_rules SET rule_json = ? WHERE user_id = ? AND kind = ?"
                    " AND rule_id = ?", (_dumps(body), user_id, kind, rule_id))

        return self._write("set_user_rule_attribute", user_id, change, stream_id, render)

    def set_default_rule_attribute(
        self, user_id: str, rule_id: str, *, enabled: bool | None = None,
        actions: list[Any] | None = None, stream_id: int, render: Render,
    ) -> defer.Deferred[None]:
        """Override a server-default rule's enabled flag and/or actions for one user."""

        def change(cur: Cursor) -> None:
            args = (None if enabled is None else enabled,
                    None if actions is None else _dumps(actions), user_id, rule_id)
            cur.execute(
                "INSERT INTO push_rules_enable (enabled, actions, user_id, rule_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, rule_id) DO UPDATE SET"
                " enabled = COALESCE(excluded.enabled, push_rules_enable.enabled),"
                " actions = COALESCE(excluded.actions, push_rules_enable.actions)", args)

        return self._write("set_default_rule_attribute", user_id, change, stream_id, render)
