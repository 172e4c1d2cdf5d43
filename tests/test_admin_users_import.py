"""``broker users import FILE.csv`` on both engines: the accounts of a file created by the admin
API's own account code, all or none; every bad line named with its line (the header is line 1)
and column, recorded, and nothing written; progress on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from broker.admin.changes import POLL_SECONDS
from broker.cli import main
from storage.accounts import UserQuery
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

HEADER = "localpart,name,organisation,designation,employee_id,email,phone,class\n"
GOOD = HEADER + (
    "asharma,Anita Sharma,mha.dm,Under Secretary,E-1017,a.sharma@mha.gov.in,+91 11 2309 2011,"
    "verified\n"
    "rkumar,,mha,Section Officer,E-2002,,,public\n"
    "citizen1,A Citizen,,,,,,\n")


@pytest.fixture
def orgs(admin: AdminNode) -> AdminNode:
    """mha with mha.dm."""
    admin.org("mha")
    admin.org("mha.dm", "mha")
    return admin


def _import(admin: AdminNode, tmp_path: Path, text: str | bytes,
            name: str = "users.csv") -> int:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return main(["users", "import", str(path), "--config", str(admin.local.config_path)])


def _user_ids(admin: AdminNode) -> list[str]:
    rows = result_of(admin.stores.accounts.accounts(UserQuery(None, limit=100_000)))
    return [row.user_id for row in rows]


def _account(admin: AdminNode, localpart: str) -> dict[str, Any]:
    return dict(admin.ok("GET", f"/users/{admin.node.user_id(localpart)}"))


def _only_the_refusal_was_written(admin: AdminNode, entries_before: int) -> None:
    assert _user_ids(admin) == [admin.root_id]
    entries = admin.entries()
    assert len(entries) == entries_before + 1
    assert (entries[-1]["action"], entries[-1]["outcome"]) == ("users.import", "refused")


def test_a_good_file_creates_every_account_with_its_fields(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _import(orgs, tmp_path, GOOD) == 0
    assert "imported 3 user(s) from users.csv (1 verified)" in capsys.readouterr().out
    anita = _account(orgs, "asharma")
    assert {k: anita[k] for k in ("displayname", "organisation", "designation", "employee_id",
                                  "email", "phone")} == {
        "displayname": "Anita Sharma", "organisation": "mha.dm",
        "designation": "Under Secretary", "employee_id": "E-1017",
        "email": "a.sharma@mha.gov.in", "phone": "+91 11 2309 2011"}
    rkumar, citizen = _account(orgs, "rkumar"), _account(orgs, "citizen1")
    assert (rkumar["displayname"], rkumar["organisation"], rkumar["email"]) == (
        "rkumar", "mha", None)
    assert (citizen["organisation"], citizen["displayname"]) == (None, "A Citizen")


def test_a_verified_line_is_verified_on_the_basis_import_by_the_command(
        orgs: AdminNode, tmp_path: Path) -> None:
    assert _import(orgs, tmp_path, GOOD) == 0
    [verification] = orgs.ok("GET", "/users/@asharma:admin.test/verification")["history"]
    assert (verification["organisation"], verification["basis"]) == ("mha.dm", "import")
    assert verification["verified_by"].startswith("command:")
    for localpart in ("rkumar", "citizen1"):
        assert _account(orgs, localpart)["verification"] is None


def test_accounts_are_created_without_a_password(orgs: AdminNode, tmp_path: Path) -> None:
    assert _import(orgs, tmp_path, GOOD) == 0
    user = result_of(orgs.stores.users.get_user("@asharma:admin.test"))
    assert user is not None and user["password_hash"] is None


def test_each_account_created_has_its_audit_entry_naming_the_file(
        orgs: AdminNode, tmp_path: Path) -> None:
    before = len(orgs.entries())
    assert _import(orgs, tmp_path, GOOD) == 0
    entries = orgs.entries()[before:]
    assert [(e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("users.create", "@asharma:admin.test", "ok"), ("users.create", "@rkumar:admin.test", "ok"),
        ("users.create", "@citizen1:admin.test", "ok")]
    assert entries[0]["organisation"] == "mha.dm"
    assert entries[0]["detail"]["verified"] is True
    assert entries[0]["detail"]["source"] == str(tmp_path / "users.csv")
    assert entries[0]["actor"].startswith("command:")


def test_the_import_keeps_the_audit_chain_intact(orgs: AdminNode, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _import(orgs, tmp_path, GOOD) == 0
    assert main(["audit", "verify", "--config", str(orgs.local.config_path)]) == 0
    assert "chain intact" in capsys.readouterr().out


def test_progress_is_shown_every_thousand_rows_and_at_the_end(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HEADER + "".join(f"user{n},,mha,,,,,\n" for n in range(2500))
    assert _import(orgs, tmp_path, text) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "users.csv: checked 1,000 of 2,500 rows", "users.csv: checked 2,000 of 2,500 rows",
        "users.csv: checked 2,500 of 2,500 rows", "users.csv: written 1,000 of 2,500 accounts",
        "users.csv: written 2,000 of 2,500 accounts",
        "users.csv: written 2,500 of 2,500 accounts"]
    assert len(_user_ids(orgs)) == 2501


def test_a_running_node_takes_in_an_import_at_its_next_poll(orgs: AdminNode,
                                                            tmp_path: Path) -> None:
    orgs.local.run(orgs.node.start())
    text = HEADER + "".join(f"user{n},,mha,,,,,verified\n" for n in range(1500))
    assert _import(orgs, tmp_path, text) == 0
    orgs.local.advance(POLL_SECONDS)
    classes = orgs.node.admin.classes
    assert {classes.class_of(f"@user{n}:admin.test") for n in range(1500)} == {"verified"}


def test_blank_lines_are_skipped_and_counted_and_values_stripped(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HEADER + "\n ann , Ann ,mha,,,,,\n\n" + "bad!,,,,,,,\n"
    assert _import(orgs, tmp_path, text) == 1
    assert "users.csv:5: localpart: 'bad!' may only contain" in capsys.readouterr().err
    assert _import(orgs, tmp_path, text.replace("bad!", "ben")) == 0
    assert _account(orgs, "ann")["displayname"] == "Ann"


def test_a_quoted_value_may_hold_commas_and_line_breaks(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HEADER + '"ann","Sharma, Ann",mha,"Joint\nSecretary",,,,\nbad!,,,,,,,\n'
    assert _import(orgs, tmp_path, text) == 1
    assert "users.csv:4: localpart:" in capsys.readouterr().err  # ann's line is 2 and 3
    assert _import(orgs, tmp_path, text.replace("bad!", "ben")) == 0
    ann = _account(orgs, "ann")
    assert (ann["displayname"], ann["designation"]) == ("Sharma, Ann", "Joint\nSecretary")


def test_a_file_saved_with_a_byte_order_mark_is_read(orgs: AdminNode, tmp_path: Path) -> None:
    assert _import(orgs, tmp_path, "\ufeff" + GOOD) == 0
    assert len(_user_ids(orgs)) == 4


LINE = "ann,Ann,mha,Officer,E-1,ann@mha.gov.in,+91 11 1111 1111,public"


@pytest.mark.parametrize("line, message", [
    (LINE.replace("ann@mha.gov.in", "ann@"), "email: 'ann@' is not an email address"),
    (LINE.replace("ann@mha.gov.in", "ann@MHA.gov.in"), "email: 'ann@MHA.gov.in' is not an"),
    (LINE.replace("+91 11 1111 1111", "call me"), "phone: 'call me' is not a phone number"),
    (LINE.replace("ann,Ann", "Ann!,Ann"), "localpart: 'Ann!' may only contain"),
    (LINE.replace("ann,Ann", ",Ann"), "localpart: must be a non-empty string"),
    (LINE.replace(",mha,", ",mea,"), "organisation: unknown organisation 'mea'"),
    (LINE.replace(",mha,", ",MHA,"), "organisation: 'MHA' is not an organisation ID"),
    (LINE.replace(",mha,", ",,"), "designation: needs an organisation"),
    ("ann,,,,,,,verified", "class: a verified account needs an organisation"),
    (LINE.replace("public", "vip"), "class: must be one of: verified, public"),
    (LINE.replace("Officer", "x" * 201), "designation: must be a non-empty string of at most"),
    ("root,,,,,,,", "localpart: @root:admin.test exists already"),
])
def test_a_bad_line_is_refused_naming_line_and_column_and_nothing_is_written(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str,
        message: str) -> None:
    before = len(orgs.entries())
    assert _import(orgs, tmp_path, GOOD + line + "\n") == 1
    err = capsys.readouterr().err
    assert f"broker users import: users.csv:5: {message}" in err, err
    _only_the_refusal_was_written(orgs, before)


def test_a_localpart_listed_twice_names_both_lines(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = len(orgs.entries())
    assert _import(orgs, tmp_path, GOOD + "rkumar,Again,mha,,,,,\n") == 1
    assert ("users.csv:5: localpart: 'rkumar' is listed twice (first on line 3)"
            in capsys.readouterr().err)
    _only_the_refusal_was_written(orgs, before)


def test_every_bad_line_is_named_and_the_refusal_records_them(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HEADER + "a,,mha,,,bad@,,\nb,,nowhere,,,,,\nc,,mha,,,,,\na,,,,,,,\n"
    assert _import(orgs, tmp_path, text) == 1
    assert capsys.readouterr().err.splitlines()[-3:] == [
        "broker users import: users.csv:2: email: 'bad@' is not an email address with a"
        " lower-case domain",
        "broker users import: users.csv:3: organisation: unknown organisation 'nowhere'",
        "broker users import: users.csv:5: localpart: 'a' is listed twice (first on line 2)"]
    entry = orgs.last_entry()
    assert entry["detail"]["rows"] == 4
    assert [(e["entry"], e["field"]) for e in entry["detail"]["errors"]] == [
        (0, "email"), (1, "organisation"), (3, "localpart")]


@pytest.mark.parametrize("text, message", [
    ("localpart,name,organisation\nann,Ann,mha\n",
     "users.csv:1: the first line must be the header localpart,name,organisation,designation,"
     "employee_id,email,phone,class (found 'localpart,name,organisation')"),
    (HEADER.replace("name", "displayname"), "users.csv:1: the first line must be the header"),
    ("", "users.csv:1: the file is empty: its first line must be the header"),
    (GOOD + "ann,Ann,mha\n", "users.csv:5: expected 8 values (localpart,name,organisation,"
     "designation,employee_id,email,phone,class), found 3"),
    (GOOD + "ann,Ann,mha,,,,,,,\n", "users.csv:5: expected 8 values"),
    (GOOD + '"ann,Ann,mha,,,,,\n', "users.csv:5: is not valid CSV: unexpected end of data"),
    (GOOD + 'ann,"A "x,mha,,,,,\n', "users.csv:5: is not valid CSV: ',' expected after '\"'"),
])
def test_a_malformed_file_is_refused_naming_the_line_and_nothing_is_written(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
        message: str) -> None:
    before = len(orgs.entries())
    assert _import(orgs, tmp_path, text) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"broker users import: {message}"), err
    _only_the_refusal_was_written(orgs, before)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = len(orgs.entries())
    assert _import(orgs, tmp_path, GOOD.encode() + "zoë,Zoë,mha,,,,,\n".encode("latin-1")) == 1
    assert capsys.readouterr().err.startswith(
        "broker users import: users.csv:5: is not UTF-8 text (the byte 0xeb at position 3 of"
        " the line)")
    _only_the_refusal_was_written(orgs, before)


def test_a_missing_file_is_refused(orgs: AdminNode, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "import", str(tmp_path / "none.csv"), "--config",
                 str(orgs.local.config_path)]) == 1
    assert "none.csv: the users file does not exist" in capsys.readouterr().err
    assert _user_ids(orgs) == [orgs.root_id]


def test_an_account_created_meanwhile_fails_the_whole_write(
        orgs: AdminNode, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A localpart free when the file was checked but taken before the write (another admin
    was quicker): the one transaction fails and none of the file's accounts is written."""
    from storage.accounts import AccountStore

    monkeypatch.setattr(AccountStore, "taken",
                        lambda self, user_ids: defer.succeed(set()))
    before = len(orgs.entries())
    assert _import(orgs, tmp_path, GOOD + "root,,,,,,,\n") == 1
    assert "an account was created meanwhile" in capsys.readouterr().err
    _only_the_refusal_was_written(orgs, before)
