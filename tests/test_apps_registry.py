"""Registering eGov applications through the admin API and the ``broker apps`` commands, on
both engines: an app_manager of an organisation registers an app and gets its token (shown
once, stored hashed), sender and callback secret; the sender is a verified member of the
organisation with the app's name; the token opens the application API until it is rotated or
the app revoked; every change is audited; bad input is refused and recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.cli import main
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

APPS = "/apps"


def _register(admin: AdminNode, who: str = "mgr", **fields: Any) -> tuple[int, Any]:
    body = {"name": "Passport Seva", "organisation": "mha", **fields}
    return admin.api_as(who, "POST", APPS, body)


def _manager(admin: AdminNode) -> str:
    user_id, _ = admin.ministries("mgr", "app_manager")
    return user_id


def _app_call(admin: AdminNode, token: str | None) -> tuple[int, Any]:
    """An application API call that needs a valid app token."""
    return admin.local.call("GET", "/_broker/apps/v1/app", token)


def test_an_app_manager_registers_an_app_and_gets_its_token_once(admin: AdminNode) -> None:
    _manager(admin)
    status, app = _register(admin, kinds=["otp"])
    assert status == 201, app
    assert app["token"].startswith("brk_app_") and app["callback_secret"]
    assert app["sender"] == f"@_app.{app['app_id']}:admin.test"
    assert (app["organisation"], app["kinds"], app["revoked"]) == ("mha", ["otp"], False)
    shown = admin.api_as("mgr", "GET", f"{APPS}/{app['app_id']}")[1]
    assert "token" not in shown and "callback_secret" not in shown
    assert [a["app_id"] for a in admin.api_as("mgr", "GET", APPS)[1]["apps"]] == [app["app_id"]]


def test_the_token_is_stored_as_its_hash_only(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    stored = result_of(admin.stores.db.run_interaction(
        "read", lambda cur: cur.select_all("SELECT token_hash FROM apps")))
    assert stored and all(app["token"] not in str(row) for row in stored)


def test_the_callback_secret_is_sealed_with_encryption_at_rest(tmp_path: Path) -> None:
    from tests.at_rest_helpers import at_rest_config, key_file

    node = AdminNode(tmp_path, "sqlite", config={
        **at_rest_config(key_file(tmp_path)), "apps": {"allow_private_callbacks": True}})
    try:
        _manager(node)
        app = _register(node, callback_url="http://127.0.0.1:9/hook")[1]
        [(stored,)] = result_of(node.stores.db.run_interaction(
            "read", lambda cur: cur.select_all("SELECT callback_secret FROM apps")))
        assert stored.startswith("ar1:") and app["callback_secret"] not in stored
        registry = node.node.apps.registry
        registry._hold([])  # read back, opened
        node.local.run(registry.load())
        target = registry.callback_of(app["app_id"])
        assert target is not None and target.secret == app["callback_secret"]
    finally:
        node.close()


def test_the_sender_is_a_verified_member_with_the_apps_name(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    sender = app["sender"]
    assert admin.node.admin.classes.class_of(sender) == "verified"
    profile = admin.client("mgr", "GET", f"/profile/{quote(sender)}")[1]
    assert profile["displayname"] == "Passport Seva"
    assert profile["in.gov.broker.class"] == "verified"
    fields = admin.local.run(admin.node.admin.accounts.profile_fields(sender))  # all of them:
    assert fields["in.gov.broker.organisation"] == "mha"  # each audience sees its share
    assert fields["in.gov.broker.designation"] == "Application"


def test_an_app_manager_lists_only_the_apps_of_their_organisations(admin: AdminNode) -> None:
    _manager(admin)
    mine = _register(admin)[1]
    theirs = admin.ok("POST", APPS, {"name": "Visa", "organisation": "mea"}, status=201)
    assert [a["app_id"] for a in admin.api_as("mgr", "GET", APPS)[1]["apps"]] == [
        mine["app_id"]]
    assert len(admin.ok("GET", APPS)["apps"]) == 2  # the node admin sees both
    admin.refused(admin.api_as("mgr", "GET", f"{APPS}/{theirs['app_id']}"), 403,
                  "M_FORBIDDEN")


def test_a_user_without_the_role_cannot_register(admin: AdminNode) -> None:
    admin.ministries("aud", "auditor")
    admin.refused(_register(admin, "aud"), 403, "M_FORBIDDEN")


def test_an_app_manager_of_another_organisation_cannot_register(admin: AdminNode) -> None:
    _manager(admin)
    admin.refused(_register(admin, organisation="mea"), 403, "M_FORBIDDEN")


@pytest.mark.parametrize("fields, errcode", [
    ({"kinds": ["sms"]}, "M_INVALID_PARAM"),
    ({"kinds": []}, "M_BAD_JSON"),
    ({"colour": "blue"}, "M_BAD_JSON"),
    ({"name": ""}, "M_BAD_JSON"),
    ({"callback_url": "ftp://example.org/x"}, "M_INVALID_PARAM"),
])
def test_bad_registrations_are_refused_and_recorded(admin: AdminNode, fields: dict[str, Any],
                                                    errcode: str) -> None:
    _manager(admin)
    admin.refused(_register(admin, **fields), 400, errcode)
    assert admin.api_as("mgr", "GET", APPS)[1]["apps"] == []


def test_a_callback_url_on_a_private_address_is_refused(admin: AdminNode) -> None:
    _manager(admin)
    status, body = _register(admin, callback_url="http://127.0.0.1:9/hook")
    assert (status, body["in.gov.broker.reason"]) == (400, "callback_url_private")
    assert admin.api_as("mgr", "GET", APPS)[1]["apps"] == []


def test_a_private_callback_url_is_taken_when_the_config_allows_it(tmp_path: Path) -> None:
    node = AdminNode(tmp_path, "sqlite", config={"apps": {"allow_private_callbacks": True}})
    try:
        _manager(node)
        status, app = _register(node, callback_url="http://127.0.0.1:9/hook")
        assert status == 201, app
        target = node.node.apps.registry.callback_of(app["app_id"])
        assert target is not None
        assert (target.url, target.secret) == ("http://127.0.0.1:9/hook", app["callback_secret"])
    finally:
        node.close()


def test_a_wrong_token_is_refused_with_unknown_token(admin: AdminNode) -> None:
    assert _app_call(admin, "brk_app_nothing")[1]["errcode"] == "M_UNKNOWN_TOKEN"
    assert _app_call(admin, None)[1]["errcode"] == "M_MISSING_TOKEN"


def test_an_app_manager_changes_the_kinds_and_callback_url(tmp_path: Path) -> None:
    node = AdminNode(tmp_path, "sqlite", config={"apps": {"allow_private_callbacks": True}})
    try:
        _manager(node)
        app = _register(node)[1]
        path = f"{APPS}/{app['app_id']}"
        status, changed = node.api_as("mgr", "PATCH", path, {
            "kinds": ["alert"], "callback_url": "http://127.0.0.1:9/new"})
        assert status == 200, changed
        assert (changed["kinds"], changed["callback_url"]) == (["alert"],
                                                               "http://127.0.0.1:9/new")
        registry = node.node.apps.registry
        target = registry.callback_of(app["app_id"])
        assert target is not None and target.url == "http://127.0.0.1:9/new"
        assert node.api_as("mgr", "PATCH", path, {"callback_url": None})[0] == 200
        assert registry.callback_of(app["app_id"]) is None
        assert node.last_entry()["action"] == "apps.update"
        registry._hold([])  # as stored
        node.local.run(registry.load())
        assert registry.app(app["app_id"]).kinds == ("alert",)  # type: ignore[union-attr]
    finally:
        node.close()


def test_a_changed_callback_url_on_a_private_address_is_refused(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    status, body = admin.api_as("mgr", "PATCH", f"{APPS}/{app['app_id']}",
                                {"callback_url": "http://10.1.2.3/hook"})
    assert (status, body["in.gov.broker.reason"]) == (400, "callback_url_private")
    assert admin.node.apps.registry.callback_of(app["app_id"]) is None


def test_a_rotated_token_replaces_the_old_one_at_once(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    assert _app_call(admin, app["token"])[0] == 200
    status, rotated = admin.api_as("mgr", "POST", f"{APPS}/{app['app_id']}/token")
    assert status == 200 and rotated["token"] != app["token"]
    assert _app_call(admin, app["token"])[0] == 401
    assert _app_call(admin, rotated["token"])[0] == 200
    assert admin.last_entry()["action"] == "apps.rotate_token"


def test_a_revoked_app_is_refused_with_unknown_token(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    status, revoked = admin.api_as("mgr", "DELETE", f"{APPS}/{app['app_id']}")
    assert status == 200 and revoked["revoked"] is True
    status, body = _app_call(admin, app["token"])
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    admin.refused(admin.api_as("mgr", "POST", f"{APPS}/{app['app_id']}/token"), 404,
                  "M_NOT_FOUND")


def test_every_change_is_audited(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    admin.api_as("mgr", "POST", f"{APPS}/{app['app_id']}/token")
    admin.api_as("mgr", "DELETE", f"{APPS}/{app['app_id']}")
    entries = [(e["action"], e["target"], e["organisation"], e["outcome"])
               for e in admin.entries() if e["action"].startswith("apps.")]
    assert entries == [("apps.register", app["app_id"], "mha", "ok"),
                       ("apps.rotate_token", app["app_id"], "mha", "ok"),
                       ("apps.revoke", app["app_id"], "mha", "ok")]


def test_apps_are_kept_across_a_restart(admin: AdminNode) -> None:
    _manager(admin)
    app = _register(admin)[1]
    registry = admin.node.apps.registry
    registry._hold([])  # memory lost, as after a restart
    admin.local.run(registry.load())
    assert _app_call(admin, app["token"])[0] == 200


def _broker(admin: AdminNode, *args: str) -> int:
    return main([*args, "--config", str(admin.local.config_path)])


def test_the_commands_register_rotate_and_revoke_and_a_running_node_learns_it(
        admin: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    admin.ministries("mgr", "app_manager")
    capsys.readouterr()
    assert _broker(admin, "apps", "register", "--name", "Pension", "--organisation", "mha",
                   "--kinds", "alert,notification") == 0
    app = json.loads(capsys.readouterr().out)
    assert app["kinds"] == ["alert", "notification"]
    admin.local.run(admin.node.admin.changes.poll())  # the node's next poll of the feed
    admin.local.advance(0)
    assert _app_call(admin, app["token"])[0] == 200
    assert admin.node.admin.classes.class_of(app["sender"]) == "verified"
    assert _broker(admin, "apps", "update", app["app_id"], "--kinds", "otp") == 0
    assert json.loads(capsys.readouterr().out)["kinds"] == ["otp"]
    admin.local.run(admin.node.admin.changes.poll())
    admin.local.advance(0)
    assert _app_call(admin, app["token"])[1]["kinds"] == ["otp"]
    assert _broker(admin, "apps", "list") == 0
    assert [a["app_id"] for a in json.loads(capsys.readouterr().out)["apps"]] == [app["app_id"]]
    assert _broker(admin, "apps", "revoke", app["app_id"]) == 0
    admin.local.run(admin.node.admin.changes.poll())
    admin.local.advance(0)
    assert _app_call(admin, app["token"])[0] == 401
    assert admin.last_entry()["actor"].startswith("command:")


def test_a_refused_command_says_why(admin: AdminNode,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _broker(admin, "apps", "register", "--name", "X", "--organisation", "nowhere") == 1
    assert "unknown organisation 'nowhere'" in capsys.readouterr().err
