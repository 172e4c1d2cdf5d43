"""Requests over federation pass through the policy decision point too: a rule sees the
asking server as the decision's origin and its refusal is Forbidden, after the input checks."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from broker.access_policy import AccessPolicy, Decision
from broker.errors import Forbidden, InvalidInput
from broker.remote_classes import RemoteClasses
from broker.services.federation_queries import FederationQueries
from tests.storage_helpers import result_of


async def profile_for_server(user_id: str, reader: str) -> dict[str, Any]:
    return {"displayname": "alice"}


def queries(refuse: set[str], seen: list[Decision]) -> FederationQueries:
    def rule(decision: Decision) -> str | None:
        seen.append(decision)
        return "not for you" if decision.action in refuse else None

    return FederationQueries("me.test", None, profile_for_server, None,  # type: ignore[arg-type]
                             AccessPolicy([rule]), None,  # type: ignore[arg-type]
                             RemoteClasses("me.test", None, 300, None))


def run(coro: Any) -> Any:
    return result_of(defer.ensureDeferred(coro))


def test_a_profile_read_over_federation_asks_the_policy_with_its_origin() -> None:
    seen: list[Decision] = []
    assert run(queries(set(), seen).profile("other.test", "@alice:me.test", None)) == {
        "displayname": "alice"}
    assert [(d.action, d.target, d.origin) for d in seen] == [
        ("read_profile", "@alice:me.test", "other.test")]


def test_a_refused_profile_read_over_federation_is_forbidden() -> None:
    with pytest.raises(Forbidden, match="not for you"):
        run(queries({"read_profile"}, []).profile("other.test", "@alice:me.test", None))


def test_input_checks_come_before_the_policy() -> None:
    seen: list[Decision] = []
    with pytest.raises(InvalidInput):
        run(queries({"read_profile"}, seen).profile("other.test", "@bob:else.test", None))
    assert seen == []
