"""MediaStore on both engines: uploads, cached thumbnails and reserved media IDs."""

from __future__ import annotations

import pytest

from storage.database import Database, IntegrityError
from storage.media import CompleteResult, MediaRecord, MediaStore, ThumbnailRecord
from tests.storage_helpers import result_of

ALICE = "@alice:example.test"
BOB = "@bob:example.test"


def record(media_id: str = "mediaAAAA", user_id: str = ALICE, ts: int = 1000) -> MediaRecord:
    return MediaRecord(media_id, user_id, "image/png", "cat.png", 123, "ab" * 32, ts)


def test_stored_media_reads_back_equal(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.store_media(record()))
    assert result_of(store.get_media("mediaAAAA")) == record()


def test_unknown_media_is_none(database: Database) -> None:
    assert result_of(MediaStore(database).get_media("nothere")) is None


def test_media_id_cannot_be_stored_twice(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.store_media(record()))
    with pytest.raises(IntegrityError):
        result_of(store.store_media(record()))


def test_media_for_user_lists_newest_first_and_only_theirs(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.store_media(record("mediaOLD1", ts=1)))
    result_of(store.store_media(record("mediaNEW1", ts=2)))
    result_of(store.store_media(record("mediaBOB1", user_id=BOB, ts=3)))
    assert [m.media_id for m in result_of(store.get_media_for_user(ALICE))] == [
        "mediaNEW1", "mediaOLD1"]


def test_thumbnail_is_recorded_once_per_size_and_method(database: Database) -> None:
    store = MediaStore(database)
    thumb = ThumbnailRecord("mediaAAAA", 32, 32, "crop", "image/png", 99)
    assert result_of(store.store_thumbnail(thumb)) is True
    assert result_of(store.store_thumbnail(thumb)) is False
    result_of(store.store_thumbnail(ThumbnailRecord("mediaAAAA", 32, 32, "scale", "image/png", 5)))
    assert [(t.method, t.size) for t in result_of(store.get_thumbnails("mediaAAAA"))] == [
        ("crop", 99), ("scale", 5)]


def test_pending_reservations_are_limited_per_user(database: Database) -> None:
    store = MediaStore(database)
    assert result_of(store.create_pending("pendA1", ALICE, 100, 1000, 2))
    assert result_of(store.create_pending("pendA2", ALICE, 100, 1000, 2))
    assert not result_of(store.create_pending("pendA3", ALICE, 100, 1000, 2))
    assert result_of(store.create_pending("pendB1", BOB, 100, 1000, 2))


def test_expired_reservations_do_not_count_against_the_limit(database: Database) -> None:
    store = MediaStore(database)
    assert result_of(store.create_pending("pendA1", ALICE, 100, 200, 1))
    assert result_of(store.create_pending("pendA2", ALICE, 300, 1000, 1))
    assert result_of(store.get_pending("pendA1")) is None


def test_completing_a_reservation_moves_it_to_media(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.create_pending("mediaAAAA", ALICE, 100, 1000, 5))
    assert result_of(store.complete_pending(record(), 500)) is CompleteResult.STORED
    assert result_of(store.get_media("mediaAAAA")) == record()
    assert result_of(store.get_pending("mediaAAAA")) is None


def test_completing_twice_reports_already_uploaded(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.create_pending("mediaAAAA", ALICE, 100, 1000, 5))
    result_of(store.complete_pending(record(), 500))
    assert result_of(store.complete_pending(record(), 600)) is CompleteResult.ALREADY_UPLOADED


def test_completing_an_expired_or_foreign_reservation_stores_nothing(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.create_pending("mediaAAAA", ALICE, 100, 1000, 5))
    assert result_of(store.complete_pending(record(), 1000)) is CompleteResult.NOT_PENDING
    assert result_of(store.complete_pending(record(user_id=BOB), 500)) is \
        CompleteResult.NOT_PENDING
    assert result_of(store.get_media("mediaAAAA")) is None


def test_purge_drops_only_expired_reservations(database: Database) -> None:
    store = MediaStore(database)
    result_of(store.create_pending("pendOLD1", ALICE, 100, 200, 5))
    result_of(store.create_pending("pendNEW1", ALICE, 100, 5000, 5))
    assert result_of(store.delete_expired_pending(300)) == 1
    assert result_of(store.get_pending("pendNEW1")) is not None
