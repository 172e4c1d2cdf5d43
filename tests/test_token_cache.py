"""Resolved access tokens are kept for a budget of tokens: one beyond it is looked up again,
and a revoked token stays refused whether or not it was still in memory (budget of one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.auth import Requester
from broker.errors import Unauthenticated
from tests.inprocess_node import InProcessNode


@pytest.fixture
def one_token(tmp_path: Path) -> Iterator[InProcessNode]:
    harness = InProcessNode(tmp_path, config={"caches": {"tokens": 1}})
    try:
        yield harness
    finally:
        harness.close()


def resolve(local: InProcessNode, token: str) -> Requester:
    return local.run(local.node.auth.requester_for_token(token))


def test_a_token_beyond_the_budget_is_resolved_again(one_token: InProcessNode) -> None:
    alice, alice_token = one_token.register("alice")
    _, bob_token = one_token.register("bob")
    resolve(one_token, alice_token)
    resolve(one_token, bob_token)  # Alice's token leaves memory
    assert one_token.node.auth.tokens_in_memory() == 1
    assert resolve(one_token, alice_token).user_id == alice.user_id


def test_a_revoked_token_pushed_out_of_memory_is_still_refused(
        one_token: InProcessNode) -> None:
    _, alice_token = one_token.register("alice")
    _, bob_token = one_token.register("bob")
    requester = resolve(one_token, alice_token)
    one_token.run(one_token.node.accounts.logout(requester))
    resolve(one_token, bob_token)
    with pytest.raises(Unauthenticated):
        resolve(one_token, alice_token)


def test_a_revoked_token_in_memory_is_refused(one_token: InProcessNode) -> None:
    _, alice_token = one_token.register("alice")
    requester = resolve(one_token, alice_token)
    one_token.run(one_token.node.accounts.logout(requester))
    with pytest.raises(Unauthenticated):
        resolve(one_token, alice_token)
