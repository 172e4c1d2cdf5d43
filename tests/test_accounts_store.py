"""UserStore (storage/users.py) on both engines: accounts, devices, tokens, profiles, UIA sessions."""

from __future__ import annotations

import pytest

from storage.database import Database, IntegrityError
from storage.users import UserStore
from tests.storage_helpers import result_of

ALICE = "@alice:example.gov"


def make_store(database: Database) -> UserStore:
    store = UserStore(database)
    result_of(store.create_user(ALICE, "hash-1", 1000))
    return store


def add_device(store: UserStore, device_id: str, token_hash: str) -> list[str]:
    return result_of(store.add_device_and_token(ALICE, device_id, None, token_hash, 2000, "1.2.3.4"))


def test_create_user_stores_account_and_default_display_name(database: Database) -> None:
    store = make_store(database)
    user = result_of(store.get_user(ALICE))
    assert user is not None
    assert (user["password_hash"], user["deactivated"], user["created_ts"]) == ("hash-1", False, 1000)
    assert result_of(store.get_profile(ALICE)) == {"displayname": "alice"}


def test_create_user_twice_is_an_integrity_error(database: Database) -> None:
    store = make_store(database)
    with pytest.raises(IntegrityError):
        result_of(store.create_user(ALICE, "hash-2", 1001))


def test_unknown_user_has_no_account_or_profile(database: Database) -> None:
    store = make_store(database)
    assert result_of(store.get_user("@nobody:example.gov")) is None
    assert result_of(store.get_profile("@nobody:example.gov")) is None


def test_token_resolves_to_its_owner_and_device(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    owner = result_of(store.get_token_owner("tok-1"))
    assert owner is not None
    assert (owner.user_id, owner.device_id, owner.deactivated) == (ALICE, "DEV1", False)


def test_new_token_for_a_device_replaces_its_old_one(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    assert add_device(store, "DEV1", "tok-2") == ["tok-1"]
    assert result_of(store.get_token_owner("tok-1")) is None
    assert result_of(store.get_token_owner("tok-2")) is not None


def test_get_device_returns_none_for_unknown_device(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    device = result_of(store.get_device(ALICE, "DEV1"))
    assert device is not None and device.last_seen_ip == "1.2.3.4"
    assert result_of(store.get_device(ALICE, "NOPE")) is None


def test_device_json_leaves_out_unknown_fields(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    device = result_of(store.get_device(ALICE, "DEV1"))
    assert device is not None
    assert device.to_json() == {"device_id": "DEV1", "last_seen_ts": 2000,
                                "last_seen_ip": "1.2.3.4"}


def test_rename_device_reports_whether_the_device_exists(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    assert result_of(store.rename_device(ALICE, "DEV1", "Laptop")) is True
    assert result_of(store.rename_device(ALICE, "NOPE", "Laptop")) is False
    device = result_of(store.get_device(ALICE, "DEV1"))
    assert device is not None and device.display_name == "Laptop"


def test_delete_devices_returns_their_token_hashes(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    add_device(store, "DEV2", "tok-2")
    assert result_of(store.delete_devices(ALICE, ["DEV1", "NOPE"])) == ["tok-1"]
    assert [d.device_id for d in result_of(store.get_devices(ALICE))] == ["DEV2"]


def test_delete_all_devices_can_spare_one(database: Database) -> None:
    store = make_store(database)
    for n in (1, 2, 3):
        add_device(store, f"DEV{n}", f"tok-{n}")
    revoked = result_of(store.delete_all_devices(ALICE, except_device_id="DEV2"))
    assert sorted(revoked) == ["tok-1", "tok-3"]
    assert [d.device_id for d in result_of(store.get_devices(ALICE))] == ["DEV2"]
    remaining: list[str] = result_of(store.delete_all_devices(ALICE))
    assert remaining == ["tok-2"]


def test_change_password_logs_out_other_devices(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    add_device(store, "DEV2", "tok-2")
    revoked = result_of(store.change_password(ALICE, "hash-2", keep_device_id="DEV1",
                                              logout_other_devices=True))
    assert revoked == ["tok-2"]
    user = result_of(store.get_user(ALICE))
    assert user is not None and user["password_hash"] == "hash-2"
    assert result_of(store.get_token_owner("tok-1")) is not None


def test_change_password_without_logout_keeps_devices(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    add_device(store, "DEV2", "tok-2")
    revoked = result_of(store.change_password(ALICE, "hash-2", keep_device_id="DEV1",
                                              logout_other_devices=False))
    assert revoked == []
    assert len(result_of(store.get_devices(ALICE))) == 2


def test_deactivate_drops_password_devices_and_tokens(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    assert result_of(store.deactivate(ALICE)) == ["tok-1"]
    user = result_of(store.get_user(ALICE))
    assert user is not None and user["deactivated"] and user["password_hash"] is None
    assert result_of(store.get_devices(ALICE)) == []
    assert result_of(store.get_profile(ALICE)) == {"displayname": "alice"}


def test_deactivate_with_erase_clears_the_profile(database: Database) -> None:
    store = make_store(database)
    result_of(store.set_profile_field(ALICE, "avatar_url", "mxc://example.gov/abc"))
    result_of(store.deactivate(ALICE, erase=True))
    assert result_of(store.get_profile(ALICE)) == {}


def test_set_profile_field_sets_and_clears(database: Database) -> None:
    store = make_store(database)
    result_of(store.set_profile_field(ALICE, "displayname", "Alice A."))
    result_of(store.set_profile_field(ALICE, "avatar_url", "mxc://example.gov/abc"))
    assert result_of(store.get_profile(ALICE)) == {"displayname": "Alice A.",
                                                   "avatar_url": "mxc://example.gov/abc"}
    result_of(store.set_profile_field(ALICE, "displayname", None))
    assert result_of(store.get_profile(ALICE)) == {"avatar_url": "mxc://example.gov/abc"}


def test_set_profile_field_refuses_other_columns(database: Database) -> None:
    store = make_store(database)
    with pytest.raises(ValueError):
        store.set_profile_field(ALICE, "password_hash", "x")


def test_ui_auth_session_records_completed_stages(database: Database) -> None:
    store = make_store(database)
    result_of(store.create_ui_auth_session("s1", ALICE, "POST", "/x", 5000))
    result_of(store.complete_ui_auth_stage("s1", "m.login.password", ALICE))
    session = result_of(store.get_ui_auth_session("s1"))
    assert session is not None
    assert (session.user_id, session.method, session.uri, session.created_ts) == (
        ALICE, "POST", "/x", 5000)
    assert session.completed == {"m.login.password": ALICE}


def test_completing_a_stage_again_replaces_its_result(database: Database) -> None:
    store = make_store(database)
    result_of(store.create_ui_auth_session("s1", "", "POST", "/x", 5000))
    result_of(store.complete_ui_auth_stage("s1", "m.login.dummy", "a"))
    result_of(store.complete_ui_auth_stage("s1", "m.login.dummy", "b"))
    session = result_of(store.get_ui_auth_session("s1"))
    assert session is not None and session.completed == {"m.login.dummy": "b"}


def test_deleted_ui_auth_session_is_gone(database: Database) -> None:
    store = make_store(database)
    result_of(store.create_ui_auth_session("s1", "", "POST", "/x", 5000))
    result_of(store.complete_ui_auth_stage("s1", "m.login.dummy", ""))
    result_of(store.delete_ui_auth_session("s1"))
    assert result_of(store.get_ui_auth_session("s1")) is None


def test_purge_ui_auth_sessions_removes_only_old_ones(database: Database) -> None:
    store = make_store(database)
    result_of(store.create_ui_auth_session("old", "", "POST", "/x", 1000))
    result_of(store.create_ui_auth_session("new", "", "POST", "/x", 9000))
    assert result_of(store.purge_ui_auth_sessions(5000)) == 1
    assert result_of(store.get_ui_auth_session("old")) is None
    assert result_of(store.get_ui_auth_session("new")) is not None


def test_last_seen_is_updated_in_batches(database: Database) -> None:
    store = make_store(database)
    add_device(store, "DEV1", "tok-1")
    add_device(store, "DEV2", "tok-2")
    result_of(store.update_last_seen([(ALICE, "DEV1", 5000, "10.0.0.1"),
                                      (ALICE, "DEV2", 6000, None)]))
    first = result_of(store.get_device(ALICE, "DEV1"))
    second = result_of(store.get_device(ALICE, "DEV2"))
    assert first is not None and (first.last_seen_ts, first.last_seen_ip) == (5000, "10.0.0.1")
    assert second is not None and second.last_seen_ts == 6000
