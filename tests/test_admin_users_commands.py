"""``broker users verify|revoke`` on both engines: the admin API's verification code, acting as
the command's login, with a clear error for bad input, recorded, and nothing written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broker.cli import main
from tests.admin_harness import AdminNode, admin

__all__ = ["admin"]

BOB = "@bob:admin.test"


@pytest.fixture
def bob(admin: AdminNode) -> AdminNode:
    """mha and mea; ``bob``, a public member of mha."""
    admin.org("mha")
    admin.org("mea")
    admin.ok("POST", "/users", {"localpart": "bob", "organisation": "mha"}, status=201)
    return admin


def _broker(admin: AdminNode, *args: str) -> int:
    return main([*args, "--config", str(admin.local.config_path)])


def _history(admin: AdminNode) -> list[dict[str, Any]]:
    return list(admin.ok("GET", f"/users/{BOB}/verification")["history"])


def test_verify_verifies_the_user_as_the_commands_login(
        bob: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(bob, "users", "verify", "bob", "--organisation", "mha",
                   "--basis", "document") == 0
    assert f"{BOB} is now verified (mha, document)" in capsys.readouterr().out
    [verification] = _history(bob)
    assert (verification["basis"], verification["state"]) == ("document", "active")
    assert verification["verified_by"].startswith("command:")
    entry = bob.last_entry()
    assert (entry["action"], entry["target"], entry["outcome"]) == ("users.verify", BOB, "ok")


def test_verify_takes_an_expiry_date_at_midnight_utc(bob: AdminNode) -> None:
    assert _broker(bob, "users", "verify", BOB, "--organisation", "mha", "--basis",
                   "in_person", "--expires", "2027-03-31") == 0
    expected = int(datetime(2027, 3, 31, tzinfo=UTC).timestamp() * 1000)
    assert _history(bob)[0]["expires_at"] == expected


def test_verify_takes_an_expiry_with_its_time_zone(bob: AdminNode) -> None:
    assert _broker(bob, "users", "verify", "bob", "--organisation", "mha", "--basis",
                   "document", "--expires", "2027-03-31T18:00:00+05:30") == 0
    assert _history(bob)[0]["expires_at"] == int(
        datetime(2027, 3, 31, 12, 30, tzinfo=UTC).timestamp() * 1000)


def test_verify_moves_the_user_to_the_organisation_verified_for(bob: AdminNode) -> None:
    assert _broker(bob, "users", "verify", "bob", "--organisation", "mea",
                   "--basis", "document") == 0
    assert bob.ok("GET", f"/users/{BOB}")["organisation"] == "mea"
    assert [(v["organisation"], v["state"]) for v in _history(bob)] == [("mea", "active")]


@pytest.mark.parametrize("args, message", [
    (["--organisation", "nowhere", "--basis", "document"], "unknown organisation 'nowhere'"),
    (["--organisation", "mha", "--basis", "hearsay"], "'basis': must be one of: document,"),
    (["--organisation", "Bad!", "--basis", "document"], "'organisation': 'Bad!' is not"),
    (["--organisation", "mha", "--basis", "document", "--expires", "2020-01-01"],
     "'expires_at': lies in the past"),
])
def test_verify_refuses_bad_input_records_it_and_writes_nothing(
        bob: AdminNode, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    assert _broker(bob, "users", "verify", "bob", *args) == 1
    assert message in capsys.readouterr().err
    assert _history(bob) == []
    entry = bob.last_entry()
    assert (entry["action"], entry["outcome"]) == ("users.verify", "refused")


def test_verify_refuses_an_expiry_that_is_not_a_date(
        bob: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(bob, "users", "verify", "bob", "--organisation", "mha", "--basis",
                   "document", "--expires", "next week") == 1
    assert "--expires: 'next week' is not a date" in capsys.readouterr().err
    assert _history(bob) == []


def test_verify_refuses_an_unknown_user(bob: AdminNode,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(bob, "users", "verify", "ghost", "--organisation", "mha",
                   "--basis", "document") == 1
    assert "no user '@ghost:admin.test'" in capsys.readouterr().err
    assert bob.last_entry()["outcome"] == "refused"


def test_verify_refuses_a_user_of_another_node(bob: AdminNode,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(bob, "users", "verify", "@bob:elsewhere.test", "--organisation", "mha",
                   "--basis", "document") == 1
    assert "does not belong to this node" in capsys.readouterr().err


def test_revoke_makes_the_user_public_and_keeps_the_history(
        bob: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(bob, "users", "verify", "bob", "--organisation", "mha",
                   "--basis", "document") == 0
    assert _broker(bob, "users", "revoke", "bob") == 0
    assert f"{BOB} is now public" in capsys.readouterr().out
    [verification] = _history(bob)
    assert verification["state"] == "revoked"
    assert verification["revoked_by"].startswith("command:")
    assert bob.last_entry()["action"] == "users.revoke"


def test_revoke_refuses_a_user_holding_no_verification(
        bob: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(bob, "users", "revoke", "bob") == 1
    assert f"{BOB} holds no verification to revoke" in capsys.readouterr().err
    entry = bob.last_entry()
    assert (entry["action"], entry["outcome"]) == ("users.revoke", "refused")
