"""Self-service verification by official email through the client API, on both engines, with
a real SMTP server on loopback: the test reads the code from the email the node sent."""

from __future__ import annotations

from pathlib import Path

from broker.admin.changes import POLL_SECONDS
from storage.accounts import VerificationRow
from storage.audit import AuditDraft
from storage.organisations import Member
from tests.email_harness import ALICE, EmailScene, make_scene, scene
from tests.smtp_server import SmtpServer, free_port, smtp_server
from tests.storage_helpers import result_of

__all__ = ["scene", "smtp_server"]


def test_asking_emails_a_code_to_the_address(scene: EmailScene) -> None:
    status, answer = scene.ask()
    assert status == 200, answer
    assert answer["expires_at"] == scene.node.clock.time_ms() + 900_000
    message = scene.server.inbox.last_to("alice@mha.gov.in")
    assert message["Subject"] == "Your verification code for MHA"
    assert len(scene.code()) == 6


def test_a_correct_code_verifies_at_once_when_the_organisation_says_auto(
        scene: EmailScene) -> None:
    scene.mode("mha", "auto")
    sid, code = scene.asked()
    status, answer = scene.submit(sid, code)
    assert status == 200, answer
    assert (answer["class"], answer["organisation"], answer["pending"]) == (
        "verified", "mha", [])
    assert (answer["verification"]["basis"], answer["verification"]["verified_by"]) == (
        "official_email", ALICE)
    account = scene.admin.ok("GET", f"/users/{ALICE}")
    assert (account["class"], account["email"]) == ("verified", "alice@mha.gov.in")
    assert scene.node.admin.classes.class_of(ALICE) == "verified"


def test_a_correct_code_queues_the_request_by_default(scene: EmailScene) -> None:
    sid, code = scene.asked()
    status, answer = scene.submit(sid, code)
    assert status == 200, answer
    assert answer["class"] == "public"
    (pending,) = answer["pending"]
    assert (pending["organisation"], pending["email"], pending["state"]) == (
        "mha", "alice@mha.gov.in", "pending")
    assert scene.node.admin.classes.class_of(ALICE) == "public"
    assert scene.client("GET", "", "alice")[1]["pending"] == [pending]


def test_a_reused_code_is_refused_and_recorded(scene: EmailScene) -> None:
    scene.mode("mha", "auto")
    sid, code = scene.asked()
    assert scene.submit(sid, code)[0] == 200
    status, answer = scene.submit(sid, code)
    assert (status, answer["errcode"], answer["reason"]) == (403, "M_FORBIDDEN", "used")
    entry = scene.admin.last_entry()
    assert (entry["action"], entry["outcome"], entry["detail"]["sid"]) == (
        "verification.email.submit", "refused", sid)


def test_an_expired_code_is_refused(scene: EmailScene) -> None:
    sid, code = scene.asked()
    scene.admin.local.advance(901)
    status, answer = scene.submit(sid, code)
    assert (status, answer["reason"]) == (403, "expired")
    assert scene.client("GET", "", "alice")[1]["pending"] == []


def test_a_wrong_code_is_refused_and_recorded(scene: EmailScene) -> None:
    sid, code = scene.asked()
    forged = f"{(int(code) + 1) % 1_000_000:06d}"
    status, answer = scene.submit(sid, forged)
    assert (status, answer["reason"], answer["error"]) == (
        403, "wrong", "The code is wrong (4 tries left)")
    entry = scene.admin.last_entry()
    assert (entry["action"], entry["outcome"], entry["detail"]["reason"]) == (
        "verification.email.submit", "refused", "wrong")


def test_after_the_last_wrong_try_even_the_right_code_is_refused(scene: EmailScene) -> None:
    sid, code = scene.asked()
    forged = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert scene.submit(sid, forged)[1]["reason"] == "wrong"
    status, answer = scene.submit(sid, code)
    assert (status, answer["reason"]) == (403, "attempts_exhausted")
    assert scene.client("GET", "", "alice")[1]["pending"] == []


def test_another_users_code_is_unknown_to_them(scene: EmailScene) -> None:
    sid, code = scene.asked()
    status, answer = scene.submit(sid, code, user="bob")
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")


def test_codes_are_limited_per_address(scene: EmailScene) -> None:
    for user in ("alice", "bob", "alice"):
        assert scene.ask(user, "desk@mha.gov.in")[0] == 200
    status, answer = scene.ask("bob", "desk@mha.gov.in")
    assert (status, answer["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert answer["retry_after_ms"] > 0
    assert len(scene.server.inbox.to("desk@mha.gov.in")) == 3
    assert scene.admin.last_entry()["outcome"] == "refused"


def test_codes_are_limited_per_user(scene: EmailScene) -> None:
    for n in range(3):
        assert scene.ask("alice", f"alice{n}@mha.gov.in")[0] == 200
    status, answer = scene.ask("alice", "alice9@mha.gov.in")
    assert (status, answer["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert scene.server.inbox.to("alice9@mha.gov.in") == []
    assert scene.ask("bob", "bob@mha.gov.in")[0] == 200  # others are not held back


def test_a_domain_no_organisation_owns_is_refused(scene: EmailScene) -> None:
    status, answer = scene.ask(email="alice@gmail.com")
    assert (status, answer["errcode"]) == (403, "M_THREEPID_DENIED")
    assert scene.server.inbox.to("alice@gmail.com") == []
    assert scene.admin.last_entry()["detail"]["error"] == answer["error"]


def test_another_organisations_domain_is_refused(scene: EmailScene) -> None:
    status, answer = scene.ask(email="alice@mea.gov.in", organisation="mha")
    assert (status, answer["errcode"]) == (403, "M_THREEPID_DENIED")
    assert "'mea.gov.in' is an email domain of 'mea', not of 'mha'" in answer["error"]


def test_a_parent_organisations_domain_serves_its_units(scene: EmailScene) -> None:
    assert scene.ask(email="alice@mha.gov.in", organisation="mha.dm")[0] == 200
    assert scene.ask(email="alice@cyber.mha.gov.in", organisation="mha")[0] == 200


def test_a_units_own_domain_does_not_serve_its_parent(scene: EmailScene) -> None:
    status, answer = scene.ask(email="alice@dm.mha.gov.in", organisation="mha")
    assert (status, answer["errcode"]) == (403, "M_THREEPID_DENIED")


def test_an_unknown_organisation_is_refused(scene: EmailScene) -> None:
    status, answer = scene.ask(organisation="moe")
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")
    assert scene.codes_stored() == 0


def test_a_member_of_one_organisation_cannot_ask_for_another(scene: EmailScene) -> None:
    scene.admin.ok("PATCH", f"/users/{ALICE}", {"organisation": "mea"})
    status, answer = scene.ask()
    assert (status, answer["errcode"]) == (403, "M_FORBIDDEN")
    assert "belongs to 'mea'" in answer["error"]


def test_a_second_request_while_one_waits_is_refused(scene: EmailScene) -> None:
    sid, code = scene.asked()
    scene.submit(sid, code)
    status, answer = scene.ask()
    assert status == 409 and "waits for a verifier already" in answer["error"]


def test_a_bad_body_is_refused_and_recorded(scene: EmailScene) -> None:
    status, answer = scene.client("POST", "/email/requestToken", "alice",
                                  {"organisation": "mha"})
    assert (status, answer["errcode"]) == (400, "M_MISSING_PARAM")
    entry = scene.admin.last_entry()
    assert (entry["action"], entry["outcome"]) == ("verification.email.request", "refused")


def test_the_request_and_the_decision_are_in_the_audit_log(scene: EmailScene) -> None:
    scene.mode("mha", "auto")
    sid, code = scene.asked()
    scene.submit(sid, code)
    (asked,) = scene.entries("verification.email.request")
    assert (asked["actor"], asked["organisation"], asked["detail"]["email"],
            asked["detail"]["sid"]) == (ALICE, "mha", "alice@mha.gov.in", sid)
    (submitted,) = scene.entries("verification.email.submit")
    assert (submitted["outcome"], submitted["detail"]["decision"],
            submitted["detail"]["basis"]) == ("ok", "verified", "official_email")


def test_only_a_keyed_hash_of_the_code_is_stored(scene: EmailScene) -> None:
    sid, code = scene.asked()
    stored = scene.node.db.run_sync("code", lambda cur: cur.select_one(
        "SELECT code_hash FROM email_codes WHERE sid = ?", (sid,))[0])
    assert code not in stored and len(stored) == 64


def test_with_the_smtp_server_down_the_caller_is_told_and_nothing_is_written(
        tmp_path: Path) -> None:
    down = SmtpServer()
    down.stop()
    down.port = free_port()  # nobody listens there
    made = make_scene(tmp_path, "sqlite", down)
    try:
        status, answer = made.ask()
        assert (status, answer["errcode"]) == (502, "M_UNKNOWN")
        assert answer["error"] == ("The email could not be sent: the mail server cannot be"
                                   " reached; try again later")
        assert made.codes_stored() == 0
        entry = made.admin.last_entry()
        assert (entry["action"], entry["outcome"]) == ("verification.email.request", "refused")
    finally:
        made.admin.close()


def test_without_smtp_settings_the_caller_is_told(tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    made = make_scene(tmp_path, "sqlite", smtp_server, {"email": {}})
    try:
        status, answer = made.ask()
        assert status == 502 and "no SMTP server is configured" in answer["error"]
    finally:
        made.admin.close()


def test_the_email_verification_setting_is_checked(scene: EmailScene) -> None:
    status, answer = scene.admin.api("PATCH", "/organisations/mha", scene.admin.root,
                                     {"settings": {"email_verification": "sometimes"}})
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM")
    assert "settings.email_verification" in answer["error"]


def test_a_verification_by_code_in_another_process_reaches_the_node(
        scene: EmailScene) -> None:
    scene.admin.local.run(scene.node.start())
    now = scene.node.clock.time_ms()
    # What a second node process on the same database writes for an auto verification.
    result_of(scene.node.stores.accounts.verify(
        VerificationRow("v-other", ALICE, "mha", "official_email", ALICE, now),
        Member(ALICE, "mha", email="alice@mha.gov.in"),
        AuditDraft(now, ALICE, "verification.email.submit", ALICE, "mha", "10.0.0.2", "ok")))
    assert scene.node.admin.classes.class_of(ALICE) == "public"
    scene.admin.local.advance(POLL_SECONDS)
    assert scene.node.admin.classes.class_of(ALICE) == "verified"
