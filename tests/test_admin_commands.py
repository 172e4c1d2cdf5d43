"""The admin commands on both engines: ``broker orgs import``, ``broker roles grant|revoke``
and ``broker audit verify`` call the same services as the admin API, against the database a
node's config names; bad input is refused with an error naming the line or field, recorded,
and nothing is half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.cli import main
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

GOOD = """\
organisations:
  - id: mha
    name: Ministry of Home Affairs
    names: {hi: गृह मंत्रालय}
    email_domains: [mha.gov.in]
  - id: mha.dm
    name: Disaster Management
    parent: mha
"""


def _broker(admin: AdminNode, *args: str) -> int:
    return main([*args, "--config", str(admin.local.config_path)])


def _import(admin: AdminNode, tmp_path: Path, text: str) -> int:
    path = tmp_path / "orgs.yaml"
    path.write_text(text)
    return _broker(admin, "orgs", "import", str(path))


def test_import_creates_the_organisations_of_a_file(admin: AdminNode, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _import(admin, tmp_path, GOOD) == 0
    assert "imported 2 organisation(s) from orgs.yaml: mha, mha.dm" in capsys.readouterr().out
    assert admin.ok("GET", "/organisations/mha")["children"] == ["mha.dm"]
    entry = admin.last_entry()
    assert entry["actor"].startswith("command:") and entry["action"] == "organisations.create"


def test_import_updates_what_the_file_names_and_keeps_the_rest(admin: AdminNode,
                                                               tmp_path: Path) -> None:
    assert _import(admin, tmp_path, GOOD) == 0
    admin.ok("PATCH", "/organisations/mha", {"settings": {"queue": True}})
    assert _import(admin, tmp_path, GOOD.replace("Ministry of Home Affairs", "Home")) == 0
    mha = admin.ok("GET", "/organisations/mha")
    assert (mha["name"], mha["settings"]) == ("Home", {"queue": True})


@pytest.mark.parametrize("text, message", [
    (GOOD + "  - id: mea\n    name: External\n    colour: blue\n",
     "orgs.yaml:11: organisations[2].colour: unknown field"),
    (GOOD + "  - id: mha\n    name: Again\n",
     "orgs.yaml:9: organisations[2].id: 'mha' is listed twice"),
    (GOOD + "  - id: x\n    name: X\n    parent: nowhere\n",
     "orgs.yaml:11: organisations[2].parent: unknown organisation 'nowhere'"),
    ("organisations:\n  - id: a\n    name: A\n    parent: b\n  - id: b\n    name: B\n"
     "    parent: a\n", "orgs.yaml:4: organisations[0].parent: 'b' lies inside 'a'"),
    (GOOD + "  - id: Bad!\n    name: X\n", "orgs.yaml:9: organisations[2].id: 'Bad!' is not"),
    (GOOD + "  - id: mea\n    name: [1, 2]\n", "orgs.yaml:10: organisations[2].name: must be"),
    (GOOD + "  - id: mea\n    name: External\n    email_domains: [mha.gov.in]\n",
     "orgs.yaml:11: organisations[2].email_domains[0]: 'mha.gov.in' belongs to 'mha'"),
    ("organisations:\n  - id: mha\n    name: 'unclosed\n", "orgs.yaml:4: is not valid YAML"),
    ("organisation: []\n", "orgs.yaml:1: organisation: unknown key"),
])
def test_a_bad_file_is_refused_naming_the_line_and_field_and_nothing_is_written(
        admin: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
        message: str) -> None:
    assert _import(admin, tmp_path, text) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"broker orgs import: {message}"), error
    assert admin.organisation_ids() == []
    entry = admin.last_entry()
    assert (entry["action"], entry["outcome"]) == ("organisations.import", "refused")


def test_roles_grant_and_revoke(admin: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    admin.org("mha")
    bob, _ = admin.user("bob")
    assert _broker(admin, "roles", "grant", "--user", "bob", "--role", "verifier",
                   "--organisation", "mha") == 0
    assert f"{bob} now holds: verifier@mha" in capsys.readouterr().out
    assert result_of(admin.stores.roles.grants_of(bob)) == {("verifier", "mha")}
    assert _broker(admin, "roles", "revoke", "--user", bob, "--role", "verifier",
                   "--organisation", "mha") == 0
    assert result_of(admin.stores.roles.grants_of(bob)) == set()
    assert [e["action"] for e in admin.entries()[-2:]] == ["roles.change", "roles.change"]


@pytest.mark.parametrize("args, message", [
    (["--user", "root", "--role", "node_admin"], "last node admin cannot be removed"),
    (["--user", "ghost", "--role", "auditor"], "no user '@ghost:admin.test'"),
])
def test_roles_revoke_refuses_with_a_clear_error(admin: AdminNode,
                                                 capsys: pytest.CaptureFixture[str],
                                                 args: list[str], message: str) -> None:
    assert _broker(admin, "roles", "revoke", *args) == 1
    assert message in capsys.readouterr().err
    assert admin.last_entry()["outcome"] == "refused"
    assert result_of(admin.stores.roles.grants_of(admin.root_id)) == {("node_admin", "")}


@pytest.mark.parametrize("args, message", [
    (["--role", "emperor"], "unknown role 'emperor'"),
    (["--role", "org_admin"], "org_admin needs an organisation"),
    (["--role", "verifier", "--organisation", "nowhere"], "unknown organisation 'nowhere'"),
])
def test_roles_grant_refuses_a_malformed_grant(admin: AdminNode,
                                               capsys: pytest.CaptureFixture[str],
                                               args: list[str], message: str) -> None:
    admin.user("bob")
    assert _broker(admin, "roles", "grant", "--user", "bob", *args) == 1
    assert message in capsys.readouterr().err
    assert result_of(admin.stores.roles.grants_of(admin.node.user_id("bob"))) == set()


def test_audit_verify_passes_an_intact_log(admin: AdminNode,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    admin.org("mha")
    admin.org("mea")
    assert _broker(admin, "audit", "verify") == 0
    assert "audit log: 2 entries, chain intact" in capsys.readouterr().out


def test_audit_verify_names_an_entry_changed_in_the_database(
        admin: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    for org in ("mha", "mea", "moe"):
        admin.org(org)
    admin.node.db.run_sync("tamper", lambda cur: cur.execute(
        "UPDATE audit_log SET actor = ? WHERE seq = 2", ("@someone:else",)))
    assert _broker(admin, "audit", "verify") == 1
    assert "audit log: entry 2 is bad: entry 2 was changed" in capsys.readouterr().out


def test_audit_verify_checks_heads_signed_before_a_key_rotation(
        admin: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    from broker.key_admin import rotate_signing_key

    admin.org("mha")
    admin.local.run(admin.node.admin.audit.sign_head())
    rotate_signing_key(admin.node.config.signing_key_path, admin.node.clock.time_ms())
    admin.org("mea")
    assert _broker(admin, "audit", "verify") == 0
    assert "2 entries, chain intact; head signed at entry 1" in capsys.readouterr().out
