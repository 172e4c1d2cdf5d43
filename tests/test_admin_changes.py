"""A running node takes in the admin changes other processes make (``broker`` commands, a
second process on the same database), on both engines: within a second on the node's clock,
without a restart, on every path that reads them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import defer

from broker.admin.changes import POLL_SECONDS
from broker.admin.classes import UserClasses
from broker.admin.commands import AdminSession, command_actor
from broker.cli import main
from storage.accounts import VerificationRow
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

PROFILE = "/_matrix/client/v3/profile"
BOB = "@bob:admin.test"


@pytest.fixture
def running(admin: AdminNode) -> AdminNode:
    """A started node with mha and ``bob``, a verified member of mha with a session."""
    admin.local.run(admin.node.start())
    admin.org("mha")
    admin.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                                "class": "verified"}, status=201)
    token, _ = admin.local.run(admin.node.auth.create_session(BOB, None, None, None))
    admin.tokens["bob"] = token
    return admin


def _broker(admin: AdminNode, *args: str) -> int:
    return main([*args, "--config", str(admin.local.config_path)])


def _profile_class(admin: AdminNode) -> str:
    status, answer = admin.local.call("GET", f"{PROFILE}/{BOB}/in.gov.broker.class", None)
    assert status == 200, answer
    return str(answer["in.gov.broker.class"])


def _classes_seen(admin: AdminNode) -> tuple[str, str, str]:
    """Bob's class on each path: the profile, the admin API, the class cache."""
    return (_profile_class(admin), admin.ok("GET", f"/users/{BOB}")["class"],
            admin.node.admin.classes.class_of(BOB))


def test_a_revocation_by_a_command_makes_the_user_public_within_a_second(
        running: AdminNode) -> None:
    assert _broker(running, "users", "revoke", "bob") == 0
    running.local.advance(POLL_SECONDS)
    assert _classes_seen(running) == ("public", "public", "public")


def test_the_node_holds_the_old_class_only_until_its_next_poll(running: AdminNode) -> None:
    assert _broker(running, "users", "revoke", "bob") == 0
    assert _profile_class(running) == "verified"  # memory, not the database, answers
    running.local.advance(POLL_SECONDS)
    assert _profile_class(running) == "public"


def test_a_verification_by_a_command_makes_the_user_verified(running: AdminNode) -> None:
    running.ok("DELETE", f"/users/{BOB}/verification")
    assert _broker(running, "users", "verify", "bob", "--organisation", "mha",
                   "--basis", "document") == 0
    running.local.advance(POLL_SECONDS)
    assert _classes_seen(running) == ("verified", "verified", "verified")


def test_a_deactivation_by_another_process_ends_the_cached_sessions(
        running: AdminNode) -> None:
    token = running.tokens["bob"]
    assert running.local.call("GET", "/_matrix/client/v3/account/whoami", token)[0] == 200
    session = AdminSession(running.node.config)  # a second process's database connection
    try:
        result_of(defer.ensureDeferred(
            session.services.accounts.deactivate(command_actor(), BOB, {})))
    finally:
        session.close()
    running.local.advance(POLL_SECONDS)
    status, answer = running.local.call("GET", "/_matrix/client/v3/account/whoami", token)
    assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert _classes_seen(running) == ("public", "public", "public")


def test_a_role_granted_by_a_command_reaches_the_cached_session(running: AdminNode) -> None:
    token = running.tokens["bob"]
    assert not running.local.run(running.node.auth.requester_for_token(token)).is_admin
    assert _broker(running, "roles", "grant", "--user", "bob", "--role", "node_admin") == 0
    running.local.advance(POLL_SECONDS)
    assert running.local.run(running.node.auth.requester_for_token(token)).is_admin


def test_a_refused_command_changes_nothing_on_the_node(running: AdminNode) -> None:
    assert _broker(running, "users", "verify", "bob", "--organisation", "nowhere",
                   "--basis", "document") == 1
    running.local.advance(POLL_SECONDS)
    assert _classes_seen(running) == ("verified", "verified", "verified")
    assert running.node.admin.changes.seen == running.entries()[-1]["seq"]


def test_the_node_takes_in_changes_after_changes_of_its_own(running: AdminNode) -> None:
    assert _broker(running, "users", "revoke", "bob") == 0
    running.ok("POST", "/organisations", {"id": "mea", "name": "MEA"}, status=201)
    running.local.advance(POLL_SECONDS)
    assert _profile_class(running) == "public"
    assert _broker(running, "users", "verify", "bob", "--organisation", "mea",
                   "--basis", "in_person") == 0
    running.local.advance(POLL_SECONDS)
    assert running.ok("GET", f"/users/{BOB}")["organisation"] == "mea"
    assert _profile_class(running) == "verified"


def test_a_change_made_before_the_node_started_is_in_what_it_loads(admin: AdminNode) -> None:
    admin.org("mha")
    admin.ok("POST", "/users", {"localpart": "bob", "organisation": "mha",
                                "class": "verified"}, status=201)
    assert _broker(admin, "users", "revoke", "bob") == 0
    admin.local.run(admin.node.start())
    assert admin.node.admin.classes.class_of(BOB) == "public"
    assert admin.node.admin.changes.seen == admin.entries()[-1]["seq"]


def test_a_poll_with_nothing_new_reads_only_the_log(running: AdminNode) -> None:
    running.local.advance(POLL_SECONDS)  # takes in the fixture's own changes
    feed = running.node.admin.changes
    reads: list[list[str]] = []
    current_of = feed.accounts.current_of
    feed.accounts = SimpleNamespace(  # type: ignore[assignment]
        current_of=lambda user_ids: reads.append(user_ids) or current_of(user_ids))
    seen = feed.seen
    running.local.advance(POLL_SECONDS * 5)
    assert running.local.run(feed.poll()) == 0
    assert (reads, feed.seen) == ([], seen)
    running.ok("POST", "/organisations", {"id": "mea", "name": "MEA"}, status=201)
    running.local.advance(POLL_SECONDS)  # an entry on no user: no user read again
    assert (reads, feed.seen) == ([], seen + 1)


class _NoStore:
    async def current_all(self) -> list[Any]:
        return []


def _row(user_id: str) -> VerificationRow:
    return VerificationRow("v-" + user_id, user_id, "mha", "document", "@root:x", 1)


def test_a_refresh_keeps_a_user_the_node_changed_while_it_read() -> None:
    classes = UserClasses(_NoStore(), clock=None)  # type: ignore[arg-type]
    since = classes.generation
    classes.ended(BOB)  # the node's own revocation, after the read began
    assert not classes.refresh([BOB, "@carol:x"], [_row(BOB), _row("@carol:x")], since)
    assert classes._current.keys() == {"@carol:x"}
    assert classes.refresh([BOB], [_row(BOB)], classes.generation)  # read again after it
    assert classes._current.keys() == {"@carol:x", BOB}
