"""A first (or forgotten) password by a code sent to the account's official email, through
the Matrix flow (requestToken, the submit_url, m.login.email.identity on /account/password),
on both engines, with a real SMTP server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.admin_harness import AdminNode
from tests.email_harness import EmailScene, scene
from tests.smtp_server import code_in, smtp_server

__all__ = ["scene", "smtp_server"]

C = "/_matrix/client/v3"
DAVE = "@dave:admin.test"
MAIL = "dave@mha.gov.in"
SECRET = "monkeys_are_GREAT"
SUBMIT = "/_broker/client/v1/password/email/submitToken"


@pytest.fixture
def dave(scene: EmailScene) -> EmailScene:
    """``dave``, created without a password, with an official email on record."""
    scene.admin.ok("POST", "/users", {"localpart": "dave", "organisation": "mha",
                                      "email": MAIL}, status=201)
    return scene


def _call(scene: EmailScene, method: str, path: str, body: Any = None,
          token: str | None = None) -> tuple[int, Any]:
    return scene.admin.local.call(method, path, token, body)


def _request(scene: EmailScene, attempt: int = 1, email: str = MAIL) -> tuple[int, Any]:
    return _call(scene, "POST", f"{C}/account/password/email/requestToken",
                 {"client_secret": SECRET, "email": email, "send_attempt": attempt})


def _validated(scene: EmailScene) -> str:
    """A session whose emailed code was submitted: its sid."""
    status, answer = _request(scene)
    assert status == 200, answer
    sid: str = answer["sid"]
    code = code_in(scene.server.inbox.last_to(MAIL))
    status, answer = _call(scene, "POST", SUBMIT,
                           {"sid": sid, "client_secret": SECRET, "token": code})
    assert (status, answer) == (200, {"success": True})
    return sid


def _set(scene: EmailScene, sid: str, password: str = "a brand new password",
         token: str | None = None) -> tuple[int, Any]:
    return _call(scene, "POST", f"{C}/account/password", {
        "new_password": password,
        "auth": {"type": "m.login.email.identity",
                 "threepid_creds": {"sid": sid, "client_secret": SECRET}}}, token)


def _login(scene: EmailScene, password: str) -> int:
    status, _ = _call(scene, "POST", f"{C}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dave"},
        "password": password})
    return status


def test_a_first_password_is_set_with_a_code_sent_to_the_official_email(dave: EmailScene
                                                                        ) -> None:
    status, answer = _request(dave)
    assert status == 200, answer
    assert answer["submit_url"] == f"https://admin.test{SUBMIT}"
    message = dave.server.inbox.last_to(MAIL)
    assert message["Subject"] == f"Your password code for {DAVE}"
    code = code_in(message)
    assert _call(dave, "POST", SUBMIT, {"sid": answer["sid"], "client_secret": SECRET,
                                        "token": code}) == (200, {"success": True})
    assert _set(dave, answer["sid"]) == (200, {})
    assert _login(dave, "a brand new password") == 200


def test_without_a_token_the_email_stage_is_the_only_flow(dave: EmailScene) -> None:
    status, answer = _call(dave, "POST", f"{C}/account/password",
                           {"new_password": "a brand new password"})
    assert status == 401
    assert answer["flows"] == [{"stages": ["m.login.email.identity"]}]


def test_an_address_no_account_has_is_not_found(dave: EmailScene) -> None:
    status, answer = _request(dave, email="nobody@mha.gov.in")
    assert (status, answer["errcode"]) == (400, "M_THREEPID_NOT_FOUND")
    assert dave.server.inbox.to("nobody@mha.gov.in") == []
    entry = dave.admin.last_entry()
    assert (entry["action"], entry["outcome"]) == ("password.email.request", "refused")


def test_the_password_is_not_set_before_the_code_is_submitted(dave: EmailScene) -> None:
    sid = _request(dave)[1]["sid"]
    status, answer = _set(dave, sid)
    assert (status, answer["errcode"]) == (401, "M_THREEPID_AUTH_FAILED")
    assert "not been submitted" in answer["error"]
    assert _login(dave, "a brand new password") == 403


def test_a_wrong_code_at_the_submit_url_is_refused_and_recorded(dave: EmailScene) -> None:
    sid = _request(dave)[1]["sid"]
    code = code_in(dave.server.inbox.last_to(MAIL))
    forged = f"{(int(code) + 1) % 1_000_000:06d}"
    status, answer = _call(dave, "POST", SUBMIT,
                           {"sid": sid, "client_secret": SECRET, "token": forged})
    assert (status, answer["errcode"]) == (400, "M_TOKEN_INCORRECT")
    entry = dave.admin.last_entry()
    assert (entry["action"], entry["outcome"], entry["detail"]["reason"]) == (
        "password.email.submit", "refused", "wrong")


def test_another_client_secret_is_no_session(dave: EmailScene) -> None:
    sid = _request(dave)[1]["sid"]
    code = code_in(dave.server.inbox.last_to(MAIL))
    status, answer = _call(dave, "POST", SUBMIT,
                           {"sid": sid, "client_secret": "other", "token": code})
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM")


def test_an_expired_code_is_a_session_expired(dave: EmailScene) -> None:
    sid = _request(dave)[1]["sid"]
    code = code_in(dave.server.inbox.last_to(MAIL))
    dave.admin.local.advance(901)
    status, answer = _call(dave, "POST", SUBMIT,
                           {"sid": sid, "client_secret": SECRET, "token": code})
    assert (status, answer["errcode"]) == (400, "M_SESSION_EXPIRED")


def test_a_session_sets_the_password_once(dave: EmailScene) -> None:
    sid = _validated(dave)
    assert _set(dave, sid)[0] == 200
    status, answer = _set(dave, sid, "another new password")
    assert (status, answer["errcode"]) == (401, "M_THREEPID_AUTH_FAILED")
    assert _login(dave, "another new password") == 403


def test_a_retried_request_sends_no_second_email(dave: EmailScene) -> None:
    first = _request(dave, attempt=1)[1]["sid"]
    assert _request(dave, attempt=1)[1]["sid"] == first
    assert len(dave.server.inbox.to(MAIL)) == 1
    assert _request(dave, attempt=2)[1]["sid"] != first
    assert len(dave.server.inbox.to(MAIL)) == 2


def test_a_logged_in_user_may_change_their_password_by_email(dave: EmailScene) -> None:
    _, token = dave.admin.local.register("erin")
    status, answer = _call(dave, "POST", f"{C}/account/password",
                           {"new_password": "a brand new password"}, token)
    assert status == 401
    assert answer["flows"] == [{"stages": ["m.login.password"]},
                               {"stages": ["m.login.email.identity"]}]
    status, answer = _set(dave, _validated(dave), token=token)
    assert (status, answer["errcode"]) == (401, "M_FORBIDDEN")  # dave's session, not erin's


def test_the_steps_are_in_the_audit_log(dave: EmailScene) -> None:
    _set(dave, _validated(dave))
    actions = [(e["action"], e["target"], e["outcome"]) for e in dave.admin.entries()
               if e["action"].startswith("password.email.")]
    assert actions == [("password.email.request", DAVE, "ok"),
                       ("password.email.submit", DAVE, "ok"),
                       ("password.email.set", DAVE, "ok")]


def test_a_node_that_sends_no_email_offers_the_password_stage_only(tmp_path: Path) -> None:
    made = AdminNode(tmp_path, "sqlite")
    try:
        _, token = made.local.register("erin")
        status, answer = made.local.call("POST", f"{C}/account/password", token,
                                         {"new_password": "a brand new password"})
        assert (status, answer["flows"]) == (401, [{"stages": ["m.login.password"]}])
        status, answer = made.local.call("POST", f"{C}/account/password", None,
                                         {"new_password": "a brand new password"})
        assert (status, answer["errcode"]) == (401, "M_MISSING_TOKEN")
        status, answer = made.local.call(
            "POST", f"{C}/account/password/email/requestToken", None,
            {"client_secret": SECRET, "email": MAIL, "send_attempt": 1})
        assert (status, answer["errcode"]) == (403, "M_THREEPID_DENIED")
    finally:
        made.close()
