"""The image pack and organisation account stores on both engines: a pack room's entry is
merged into a user's account data (other rooms, other fields and a pack's own settings kept,
a room given None removed); a job restarted meanwhile refuses an older generation's
progress; an organisation's account is made once."""

from __future__ import annotations

import pytest

from storage.account_data import AccountDataStore
from storage.database import Database, IntegrityError
from storage.image_packs import ImagePackStore, merged_rooms
from storage.organisation_accounts import OrganisationAccountStore
from tests.storage_helpers import result_of

USER = "@bob:hs"
TYPE = "m.image_pack.rooms"


def test_an_entry_is_merged_keeping_the_user_s_rooms_fields_and_pack_settings(
        database: Database) -> None:
    data = AccountDataStore(database)
    result_of(data.set_account_data(USER, "", TYPE, {
        "rooms": {"!mine:x": {"cats": {}}, "!pack:hs": {"official": {"hidden": True}}},
        "note": "kept"}, 1))
    result_of(ImagePackStore(database).merge_entries(
        USER, TYPE, {"!pack:hs": ["official", "stickers"]}, 2))
    assert result_of(data.get_account_data(USER, "", TYPE)) == {
        "rooms": {"!mine:x": {"cats": {}},
                  "!pack:hs": {"official": {"hidden": True}, "stickers": {}}},
        "note": "kept"}


def test_a_room_given_none_is_removed_and_nothing_else(database: Database) -> None:
    data = AccountDataStore(database)
    result_of(data.set_account_data(USER, "", TYPE, {
        "rooms": {"!mine:x": {"cats": {}}, "!pack:hs": {"official": {}}}}, 1))
    result_of(ImagePackStore(database).merge_entries(USER, TYPE, {"!pack:hs": None}, 2))
    assert result_of(data.get_account_data(USER, "", TYPE)) == {
        "rooms": {"!mine:x": {"cats": {}}}}


def test_an_entry_is_written_for_a_user_who_had_none(database: Database) -> None:
    result_of(ImagePackStore(database).merge_entries(USER, TYPE, {"!pack:hs": ["p"]}, 1))
    assert result_of(AccountDataStore(database).get_account_data(USER, "", TYPE)) == {
        "rooms": {"!pack:hs": {"p": {}}}}


def test_rooms_that_are_not_an_object_are_replaced() -> None:
    assert merged_rooms({"rooms": ["junk"]}, {"!pack:hs": ["p"]}) == {
        "rooms": {"!pack:hs": {"p": {}}}}


def test_progress_of_a_job_restarted_meanwhile_is_refused(database: Database) -> None:
    store = ImagePackStore(database)
    result_of(store.restart_job("mha", 10, 1))
    old = result_of(store.job("mha"))
    assert old is not None
    result_of(store.restart_job("mha", 12, 2))
    assert result_of(store.progress(old, "@m9:hs", 5, None)) is False
    job = result_of(store.job("mha"))
    assert job is not None
    assert (job.generation, job.after_user, job.done, job.total) == (2, "", 0, 12)
    assert result_of(store.progress(job, "@m1:hs", 2, 3)) is True
    assert result_of(store.unfinished_jobs()) == []


def test_an_organisation_s_account_is_made_once(database: Database) -> None:
    store = OrganisationAccountStore(database)
    assert result_of(store.create("mha", "@_org.mha:hs", "MHA", 1)) == "@_org.mha:hs"
    assert result_of(store.create("mha", "@_org.other:hs", "MHA", 2)) == "@_org.mha:hs"
    assert result_of(store.all()) == {"mha": "@_org.mha:hs"}


def test_an_organisation_account_s_user_id_taken_by_someone_is_an_integrity_error(
        database: Database) -> None:
    store = OrganisationAccountStore(database)
    result_of(store.create("mha", "@_org.mha:hs", "MHA", 1))
    with pytest.raises(IntegrityError):
        result_of(store.create("mea", "@_org.mha:hs", "MEA", 2))
