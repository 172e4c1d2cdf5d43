"""Which media an event uses: every ``mxc://`` URI in its content, at any depth, written in
the event's transaction on both engines; an event naming none writes nothing."""

from __future__ import annotations

from typing import Any

from storage.database import Database
from storage.media_references import mxc_uris, record_references


def test_every_mxc_uri_at_any_depth_is_found() -> None:
    content = {"url": "mxc://a.test/one", "info": {"thumbnail_url": "mxc://a.test/two"},
               "file": {"url": "mxc://b.test/three", "v": "v2"},
               "images": [{"url": "mxc://a.test/four"}], "body": "see mxc://a.test/five"}
    assert sorted(mxc_uris(content)) == ["mxc://a.test/four", "mxc://a.test/one",
                                         "mxc://a.test/two", "mxc://b.test/three"]


def references(database: Database) -> list[tuple[Any, ...]]:
    return database.run_sync("refs", lambda cur: cur.select_all(
        "SELECT mxc, event_id FROM media_references ORDER BY mxc, event_id"))


def test_the_references_of_events_are_written_once_each(database: Database) -> None:
    image = {"url": "mxc://a.test/one", "info": {"thumbnail_url": "mxc://a.test/one"}}
    events = [("$image", '{"content":{"url":"mxc://a.test/one"}}', image),
              ("$text", '{"content":{"body":"hello"}}', {"body": "hello"})]
    database.run_sync("write", lambda cur: record_references(cur, events))
    database.run_sync("again", lambda cur: record_references(cur, events[:1]))
    assert references(database) == [("mxc://a.test/one", "$image")]
