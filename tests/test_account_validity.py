"""Account validity on both engines, on the node's clock: an account expires a period after it
is registered (or after validity reaches it); an expired account's requests are answered
403 ``ORG_MATRIX_EXPIRED_ACCOUNT`` except logout; node admins are not held to it; an admin
renews an account through ``POST /_broker/admin/v1/users/{user_id}/renew``, recorded in the
audit log, and the renewal holds at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.config import ConfigError, parse_config
from tests.admin_harness import AdminNode
from tests.storage_helpers import result_of

DAY_MS = 86_400_000
PERIOD_DAYS = 30


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: Any, tmp_path: Path) -> Iterator[AdminNode]:
    made = AdminNode(tmp_path, request.param,
                     config={"account_validity": {"enabled": True, "period": f"{PERIOD_DAYS}d"}})
    try:
        yield made
    finally:
        made.close()


def expiry(node: AdminNode, user_id: str) -> int | None:
    exists, expires_ts = result_of(node.stores.account_validity.expiry_of(user_id))
    assert exists
    return expires_ts


def whoami(node: AdminNode, localpart: str) -> tuple[int, Any]:
    return node.client(localpart, "GET", "/account/whoami")


def pass_days(node: AdminNode, days: float) -> None:
    node.local.advance(days * DAY_MS / 1000)


def test_a_registered_account_expires_a_period_after_registration(node: AdminNode) -> None:
    now = node.node.clock.time_ms()
    user_id = node.local.run(node.node.accounts.register(
        node.node.user_id("newcomer"), "a long passphrase", "127.0.0.1"))
    assert expiry(node, user_id) == now + PERIOD_DAYS * DAY_MS


def test_an_account_without_an_expiry_is_given_a_period_from_the_job(node: AdminNode) -> None:
    user_id, _ = node.user("alice")  # made directly in the store: no expiry
    assert expiry(node, user_id) is None
    pass_days(node, 2)
    assert node.local.run(node.node.validity.give_missing()) >= 1
    assert expiry(node, user_id) == node.node.clock.time_ms() + PERIOD_DAYS * DAY_MS


def test_an_expired_accounts_requests_are_refused_with_synapses_errcode(node: AdminNode
                                                                          ) -> None:
    node.user("alice")
    node.local.run(node.node.validity.give_missing())
    assert whoami(node, "alice")[0] == 200
    pass_days(node, PERIOD_DAYS + 1)
    status, body = whoami(node, "alice")
    assert (status, body["errcode"]) == (403, "ORG_MATRIX_EXPIRED_ACCOUNT")


def test_the_expiry_is_read_from_the_session_in_memory(node: AdminNode,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    node.user("alice")
    node.local.run(node.node.validity.give_missing())
    assert whoami(node, "alice")[0] == 200  # the session is now cached with its expiry

    def no_database(token_hash: str) -> Any:
        raise AssertionError("the token was read from the database")

    monkeypatch.setattr(node.stores.users, "get_token_owner", no_database)
    pass_days(node, PERIOD_DAYS + 1)
    assert whoami(node, "alice")[0] == 403


def test_an_expired_account_may_still_log_out(node: AdminNode) -> None:
    node.user("alice")
    node.local.run(node.node.validity.give_missing())
    pass_days(node, PERIOD_DAYS + 1)
    assert node.client("alice", "POST", "/logout")[0] == 200
    assert whoami(node, "alice")[1]["errcode"] == "M_UNKNOWN_TOKEN"


def test_a_node_admin_is_not_held_to_the_expiry(node: AdminNode) -> None:
    node.local.run(node.node.validity.give_missing())
    assert expiry(node, node.root_id) is not None
    pass_days(node, PERIOD_DAYS + 1)
    assert node.api("GET", f"/users/{node.root_id}", node.root)[0] == 200


def test_a_renewal_without_a_time_gives_a_period_from_now_at_once(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    node.local.run(node.node.validity.give_missing())
    pass_days(node, PERIOD_DAYS + 1)
    assert whoami(node, "alice")[0] == 403
    answer = node.ok("POST", f"/users/{user_id}/renew", {})
    assert answer == {"user_id": user_id,
                      "expires_at": node.node.clock.time_ms() + PERIOD_DAYS * DAY_MS}
    assert whoami(node, "alice")[0] == 200


def test_a_renewal_sets_the_time_it_names(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    until = node.node.clock.time_ms() + 400 * DAY_MS
    assert node.ok("POST", f"/users/{user_id}/renew", {"expires_at": until})["expires_at"] == until
    assert expiry(node, user_id) == until


def test_a_renewal_to_a_past_time_is_refused(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    node.refused(node.api("POST", f"/users/{user_id}/renew", node.root,
                          {"expires_at": node.node.clock.time_ms() - 1}),
                 400, "M_INVALID_PARAM")


def test_a_renewal_is_recorded_in_the_audit_log(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    answer = node.ok("POST", f"/users/{user_id}/renew")
    entry = node.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "users.renew", user_id, "ok")
    assert entry["detail"]["expires_at"] == answer["expires_at"]


def test_a_user_without_a_grant_may_not_renew(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    node.user("mallory")
    node.refused(node.api_as("mallory", "POST", f"/users/{user_id}/renew", {}),
                 403, "M_FORBIDDEN")


def test_renewing_a_deactivated_account_is_refused(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    node.ok("POST", f"/users/{user_id}/deactivate", {})
    node.refused(node.api("POST", f"/users/{user_id}/renew", node.root, {}), 409, "M_UNKNOWN")


def test_renewal_is_refused_when_validity_is_off(tmp_path: Path) -> None:
    made = AdminNode(tmp_path, "sqlite")
    try:
        user_id, _ = made.user("alice")
        made.refused(made.api("POST", f"/users/{user_id}/renew", made.root, {}),
                     409, "M_UNKNOWN")
    finally:
        made.close()


def test_enabling_validity_without_a_period_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="account_validity.period"):
        parse_config({"server_name": "a.test", "account_validity": {"enabled": True}},
                     tmp_path)


def test_an_account_an_admin_creates_is_given_its_expiry_at_once(node: AdminNode) -> None:
    answer = node.ok("POST", "/users", {"localpart": "asharma"}, status=201)
    assert expiry(node, answer["user_id"]) == node.node.clock.time_ms() + PERIOD_DAYS * DAY_MS


def test_an_admin_reads_the_accounts_expiry(node: AdminNode) -> None:
    user_id, _ = node.user("alice")
    assert node.ok("GET", f"/users/{user_id}")["expires_at"] is None
    until = node.ok("POST", f"/users/{user_id}/renew")["expires_at"]
    assert node.ok("GET", f"/users/{user_id}")["expires_at"] == until
