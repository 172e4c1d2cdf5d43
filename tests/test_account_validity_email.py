"""Account validity renewal emails on both engines, with a real SMTP server on loopback: an
account expiring within ``account_validity.renew_before`` that has an official email gets one
email with a link; opening the link renews it for a period from now, once, recorded in the
audit log; an account without an email, or not yet near its expiry, gets none; an admin's
renewal makes an emailed link stop working."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.email_harness import ALICE, EmailScene, make_scene
from tests.smtp_server import SmtpServer, smtp_server

__all__ = ["smtp_server"]

DAY_MS = 86_400_000
VALIDITY = {"enabled": True, "period": "30d", "renew_before": "7d"}


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[EmailScene]:
    made = make_scene(tmp_path, request.param, smtp_server, {"account_validity": VALIDITY})
    try:
        made.admin.ok("PATCH", f"/users/{ALICE}",
                      {"organisation": "mha", "email": "alice@mha.gov.in"})
        made.admin.local.run(made.node.validity.give_missing())
        yield made
    finally:
        made.admin.close()


def pass_days(scene: EmailScene, days: float) -> None:
    scene.admin.local.advance(days * DAY_MS / 1000)


def run_job(scene: EmailScene) -> int:
    return scene.admin.local.run(scene.node.validity.send_renewal_emails())


def emailed_link(scene: EmailScene) -> str:
    body = scene.server.inbox.last_to("alice@mha.gov.in").get_payload(decode=True)
    assert isinstance(body, bytes)
    match = re.search(r"https://admin\.test(\S+)", body.decode())
    assert match, body
    return match.group(1)


def open_link(scene: EmailScene, link: str) -> tuple[int, Any]:
    return scene.admin.local.call("GET", link, None)


def test_an_account_near_its_expiry_gets_one_email_with_a_link(scene: EmailScene) -> None:
    pass_days(scene, 24)
    assert run_job(scene) == 1
    message = scene.server.inbox.last_to("alice@mha.gov.in")
    assert message["Subject"] == "Renew your account"
    assert urlsplit(emailed_link(scene)).path == "/_broker/client/v1/account_validity/renew"
    assert run_job(scene) == 0  # once for this expiry
    assert len(scene.server.inbox.to("alice@mha.gov.in")) == 1


def test_the_link_renews_the_account_for_a_period_from_now_once(scene: EmailScene) -> None:
    pass_days(scene, 24)
    run_job(scene)
    link = emailed_link(scene)
    status, answer = open_link(scene, link)
    assert (status, answer) == (200, {"user_id": ALICE,
                                      "expires_at": scene.node.clock.time_ms() + 30 * DAY_MS})
    entry = scene.admin.last_entry()
    assert (entry["action"], entry["actor"], entry["detail"]["by"]) == (
        "users.renew", ALICE, "email")
    status, answer = open_link(scene, link)
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")


def test_an_expired_account_renewed_by_the_link_may_call_again(scene: EmailScene) -> None:
    pass_days(scene, 24)
    run_job(scene)
    pass_days(scene, 7)
    assert scene.admin.client("alice", "GET", "/account/whoami")[0] == 403
    assert open_link(scene, emailed_link(scene))[0] == 200
    assert scene.admin.client("alice", "GET", "/account/whoami")[0] == 200


def test_an_account_not_yet_near_its_expiry_gets_none(scene: EmailScene) -> None:
    pass_days(scene, 22)
    assert run_job(scene) == 0


def test_an_account_without_an_official_email_gets_none(scene: EmailScene) -> None:
    scene.admin.ok("PATCH", f"/users/{ALICE}", {"email": None})
    pass_days(scene, 24)
    assert run_job(scene) == 0


def test_an_admins_renewal_makes_the_emailed_link_stop_working(scene: EmailScene) -> None:
    pass_days(scene, 24)
    run_job(scene)
    link = emailed_link(scene)
    scene.admin.ok("POST", f"/users/{ALICE}/renew", {})
    assert open_link(scene, link)[0] == 403


def test_an_unknown_token_is_refused(scene: EmailScene) -> None:
    status, answer = open_link(scene, "/_broker/client/v1/account_validity/renew?token=x")
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")
