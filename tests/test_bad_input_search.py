"""User directory search with terms of any length or number: answered, never a database error."""

from __future__ import annotations

from storage.database import Database
from storage.user_directory import UserDirectoryStore
from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room
from tests.storage_helpers import result_of
from tests.test_user_directory_store import ME, _room, _user


def _search(db: Database, term: str) -> list[str]:
    users, _limited = result_of(UserDirectoryStore(db).search_users(ME, term, 10))
    return [u.user_id for u in users]


def test_a_300000_character_term_finds_nobody(database: Database) -> None:
    _user(database, ME)
    _user(database, "@alice:example.org", "Alice")
    _room(database, "!r:x", {ME: "join", "@alice:example.org": "join"})
    assert _search(database, "a" * 300_000) == []


def test_a_term_longer_than_the_query_uses_still_matches_by_prefix(database: Database) -> None:
    name = "B" * 400 + "ob"
    _user(database, ME)
    _user(database, "@bob:example.org", name)
    _room(database, "!r:x", {ME: "join", "@bob:example.org": "join"})
    assert _search(database, "b" * 300) == ["@bob:example.org"]
    assert _search(database, "b" * 300 + "x") == []


def test_thousands_of_terms_are_all_checked(database: Database) -> None:
    _user(database, ME)
    _user(database, "@alice:example.org", "Alice Smith")
    _room(database, "!r:x", {ME: "join", "@alice:example.org": "join"})
    many = " ".join(["al", "sm"] * 2000)
    assert _search(database, many) == ["@alice:example.org"]
    assert _search(database, many + " " + " ".join(f"w{i}" for i in range(2000))) == []


def test_search_with_a_huge_term_answers_200(any_node: NodeProcess) -> None:
    alice = any_node.register()
    create_room(alice)
    body = alice.post(f"{V3}/user_directory/search", {"search_term": "x" * 300_000})
    assert alice.status == 200 and body == {"results": [], "limited": False}
