"""The users file of ``broker users import``: CSV in UTF-8, its first line exactly the header

    localpart,name,organisation,designation,employee_id,email,phone,class

then one account a line (``name`` is the display name; ``class`` is ``verified``, ``public``
or empty, which is public; a verified account is verified on the basis ``import``).  Values
are stripped of surrounding spaces, an empty value is an absent field, blank lines are
skipped.  Each error names the file, the line (the header is line 1) and the column::

    users.csv:17: email: 'a.sharma@' is not an email address with a lower-case domain
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.admin.account_fields import DETAILS
from broker.admin.account_import import RowError

HEADER = ("localpart", "name", "organisation", "designation", "employee_id", "email", "phone",
          "class")
COLUMNS = {"displayname": "name"}  # the column of each account field named otherwise


class UsersFileError(Exception):
    """The file cannot be read as a users file: every problem found, each a line naming the
    file and its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0])
        self.problems = problems


@dataclass(frozen=True)
class UsersFile:
    path: Path
    bodies: list[dict[str, Any]]  # the ``POST /users`` body of each account
    lines: list[int]  # the line of each

    def describe(self, error: RowError) -> str:
        """An import's error about one account, as ``file:line: column: message``."""
        column = COLUMNS.get(error.field, error.field)
        found = f"{self.path.name}:{self.lines[error.index]}: "
        found += f"{column}: {error.message}" if column else error.message
        if error.first is not None:
            found += f" (first on line {self.lines[error.first]})"
        return found


def body_of(values: dict[str, str]) -> dict[str, Any]:
    """The ``POST /users`` body of one line's values (an empty value: no such field)."""
    body: dict[str, Any] = {"localpart": values["localpart"]}
    if values["name"]:
        body["displayname"] = values["name"]
    for name in ("organisation", *DETAILS, "class"):
        if values[name]:
            body[name] = values[name]
    if values["class"] == "verified":
        body["basis"] = "import"
    return body


def _text(path: Path) -> str:
    if not path.is_file():
        raise UsersFileError([f"{path}: the users file does not exist"])
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - raw.rfind(b"\n", 0, e.start)
        raise UsersFileError([f"{path.name}:{line}: is not UTF-8 text (the byte"
                              f" {raw[e.start]:#04x} at position {column} of the line)"]) from e


def read_users_file(path: Path) -> UsersFile:
    """Read the file: :class:`UsersFileError` listing every line that is not a well-formed
    account line (the values themselves are checked by the import)."""
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True)
    name = path.name
    bodies: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[str] = []
    start = 1  # the line the next record begins on
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if line == 1:
                if tuple(record) != HEADER:
                    raise UsersFileError([f"{name}:1: the first line must be the header"
                                          f" {','.join(HEADER)} (found {','.join(record)!r})"])
            elif not record:
                continue  # a blank line
            elif len(record) != len(HEADER):
                problems.append(f"{name}:{line}: expected {len(HEADER)} values"
                                f" ({','.join(HEADER)}), found {len(record)}")
            else:
                bodies.append(body_of(dict(zip(HEADER, (v.strip() for v in record),
                                               strict=True))))
                lines.append(line)
    except csv.Error as e:
        problems.append(f"{name}:{reader.line_num}: is not valid CSV: {e}")
    if start == 1:
        raise UsersFileError([f"{name}:1: the file is empty: its first line must be the"
                              f" header {','.join(HEADER)}"])
    if problems:
        raise UsersFileError(problems)
    return UsersFile(path, bodies, lines)
