"""UserDirectoryStore on both engines: who is visible to whom, word-prefix matching, ranking."""

from __future__ import annotations

from storage.database import Cursor, Database
from storage.user_directory import UserDirectoryStore, matches
from tests.storage_helpers import result_of

ME = "@me:example.org"


def _user(db: Database, user_id: str, name: str | None = None, *,
          deactivated: bool = False, avatar: str | None = None) -> None:
    def txn(cur: Cursor) -> None:
        cur.execute("INSERT INTO users (user_id, created_ts, deactivated) VALUES (?, 0, ?)",
                    (user_id, deactivated))
        cur.execute("INSERT INTO profiles (user_id, displayname, avatar_url) VALUES (?, ?, ?)",
                    (user_id, name, avatar))

    db.run_sync("user", txn)


def _room(db: Database, room_id: str, members: dict[str, str], *, public: bool = False) -> None:
    def txn(cur: Cursor) -> None:
        cur.execute("INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
                    " VALUES (?, '12', ?, ?, 0)", (room_id, ME, public))
        for user_id, membership in members.items():
            cur.execute(
                "INSERT INTO current_state_events (room_id, type, state_key, event_id,"
                " membership) VALUES (?, 'm.room.member', ?, ?, ?)",
                (room_id, user_id, f"${room_id}{user_id}", membership))

    db.run_sync("room", txn)


def _search(db: Database, term: str, limit: int = 10) -> tuple[list[str], bool]:
    users, limited = result_of(UserDirectoryStore(db).search_users(ME, term, limit))
    return [u.user_id for u in users], limited


def test_users_sharing_a_room_are_found_by_localpart_prefix(database: Database) -> None:
    _user(database, ME)
    _user(database, "@alice:example.org", "Alice Smith", avatar="mxc://x/a")
    _room(database, "!r:x", {ME: "join", "@alice:example.org": "join"})
    users, limited = result_of(UserDirectoryStore(database).search_users(ME, "ALI", 10))
    assert [u.to_json() for u in users] == [
        {"user_id": "@alice:example.org", "display_name": "Alice Smith",
         "avatar_url": "mxc://x/a"}]
    assert limited is False


def test_display_name_words_match_by_prefix_only(database: Database) -> None:
    _user(database, ME)
    _user(database, "@u1:example.org", "Bob Alison")
    _user(database, "@malin:example.org", "Malin")
    _room(database, "!r:x", {ME: "join", "@u1:example.org": "join", "@malin:example.org": "join"})
    assert _search(database, "ali")[0] == ["@u1:example.org"]
    assert _search(database, "bob ali")[0] == ["@u1:example.org"]
    assert _search(database, "bob malin")[0] == []


def test_strangers_in_private_rooms_are_hidden(database: Database) -> None:
    _user(database, ME)
    _user(database, "@carol:example.org", "Carol")
    _room(database, "!private:x", {"@carol:example.org": "join"})
    assert _search(database, "carol") == ([], False)


def test_members_of_public_rooms_are_visible(database: Database) -> None:
    _user(database, ME)
    _user(database, "@dave:example.org", "Dave")
    _room(database, "!public:x", {"@dave:example.org": "join"}, public=True)
    assert _search(database, "dave")[0] == ["@dave:example.org"]


def test_only_joined_members_count(database: Database) -> None:
    _user(database, ME)
    _user(database, "@erin:example.org", "Erin")
    _user(database, "@frank:example.org", "Frank")
    _room(database, "!r:x", {ME: "join", "@erin:example.org": "invite",
                             "@frank:example.org": "leave"})
    _room(database, "!left:x", {ME: "leave", "@frank:example.org": "join"})
    assert _search(database, "erin")[0] == []
    assert _search(database, "frank")[0] == []


def test_deactivated_users_are_hidden(database: Database) -> None:
    _user(database, ME)
    _user(database, "@gone:example.org", "Gone", deactivated=True)
    _room(database, "!r:x", {ME: "join", "@gone:example.org": "join"})
    assert _search(database, "gone")[0] == []


def test_remote_members_match_on_their_user_id(database: Database) -> None:
    _user(database, ME)
    _room(database, "!r:x", {ME: "join", "@harry:remote.example": "join"})
    assert _search(database, "harry")[0] == ["@harry:remote.example"]


def test_like_wildcards_in_the_term_are_literal(database: Database) -> None:
    _user(database, ME)
    _user(database, "@ivan:example.org", "Ivan")
    _room(database, "!r:x", {ME: "join", "@ivan:example.org": "join"})
    assert _search(database, "%")[0] == []
    assert _search(database, "_")[0] == []


def test_room_sharers_rank_first_and_limit_sets_limited(database: Database) -> None:
    _user(database, ME)
    for name in ("jack", "jane", "jim"):
        _user(database, f"@{name}:example.org", name.title())
    _room(database, "!public:x", {"@jack:example.org": "join", "@jane:example.org": "join"},
          public=True)
    _room(database, "!r:x", {ME: "join", "@jim:example.org": "join"})
    found, limited = _search(database, "j", limit=2)
    assert found == ["@jim:example.org", "@jack:example.org"] and limited is True
    assert _search(database, "j", limit=3) == (
        ["@jim:example.org", "@jack:example.org", "@jane:example.org"], False)


def test_blank_search_finds_nobody(database: Database) -> None:
    _user(database, ME)
    _room(database, "!r:x", {ME: "join"})
    assert _search(database, "   ") == ([], False)


def test_known_users_are_local_accounts_or_room_members(database: Database) -> None:
    _user(database, ME)
    _room(database, "!r:x", {"@remote:elsewhere.example": "leave"})
    store = UserDirectoryStore(database)
    assert result_of(store.is_known_user(ME)) is True
    assert result_of(store.is_known_user("@remote:elsewhere.example")) is True
    assert result_of(store.is_known_user("@nobody:example.org")) is False


def test_matching_accepts_full_user_ids_and_word_parts() -> None:
    assert matches("@anna.lee:gov.example", None, ["lee"])
    assert matches("@anna.lee:gov.example", None, ["@anna.lee:gov"])
    assert not matches("@anna.lee:gov.example", None, ["gov"])
    assert matches("@x:y", "Ångström Ada", ["ång"])


def test_non_ascii_names_match_case_insensitively(database: Database) -> None:
    _user(database, ME)
    _user(database, "@elodie:example.org", "Élodie Ørsted")
    _room(database, "!r:x", {ME: "join", "@elodie:example.org": "join"})
    assert _search(database, "élo")[0] == ["@elodie:example.org"]
    assert _search(database, "ØRS")[0] == ["@elodie:example.org"]
    assert _search(database, "éla")[0] == []
