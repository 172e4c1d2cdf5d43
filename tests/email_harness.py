"""A node on each engine that sends email to a real SMTP server on loopback, with mha
(``mha.gov.in``, and mha.dm with ``dm.mha.gov.in``) and mea (``mea.gov.in``); ``vera``
verifies for mha; ``alice`` and ``bob`` are public and in no organisation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.admin_harness import AdminNode
from tests.smtp_server import SmtpServer, code_in

CLIENT = "/_broker/client/v1/verification"
ALICE = "@alice:admin.test"


class EmailScene:
    def __init__(self, admin: AdminNode, server: SmtpServer) -> None:
        self.admin = admin
        self.server = server
        self.node = admin.node

    def client(self, method: str, path: str, user: str, body: Any = None) -> tuple[int, Any]:
        return self.admin.local.call(method, f"{CLIENT}{path}", self.admin.tokens[user], body)

    def ask(self, user: str = "alice", email: str = "alice@mha.gov.in",
            organisation: str = "mha") -> tuple[int, Any]:
        return self.client("POST", "/email/requestToken", user,
                           {"organisation": organisation, "email": email})

    def code(self, email: str = "alice@mha.gov.in") -> str:
        return code_in(self.server.inbox.last_to(email))

    def submit(self, sid: str, token: str, user: str = "alice") -> tuple[int, Any]:
        return self.client("POST", "/email/submitToken", user, {"sid": sid, "token": token})

    def asked(self, user: str = "alice", email: str = "alice@mha.gov.in",
              organisation: str = "mha") -> tuple[str, str]:
        """A code asked for and received: its sid and the code."""
        status, answer = self.ask(user, email, organisation)
        assert status == 200, answer
        return answer["sid"], self.code(email)

    def mode(self, org_id: str, mode: str) -> None:
        self.admin.ok("PATCH", f"/organisations/{org_id}",
                      {"settings": {"email_verification": mode}})

    def entries(self, action: str) -> list[dict[str, Any]]:
        return [e for e in self.admin.entries() if e["action"] == action]

    def codes_stored(self) -> int:
        return int(self.node.db.run_sync(
            "count", lambda cur: cur.select_one("SELECT COUNT(*) FROM email_codes")[0]))


def make_scene(tmp_path: Path, engine: str, server: SmtpServer,
               config: dict[str, Any] | None = None) -> EmailScene:
    admin = AdminNode(tmp_path, engine, {"email": server.settings(),
                                         "public_baseurl": "https://admin.test",
                                         **(config or {})})
    admin.org("mha", email_domains=["mha.gov.in"])
    admin.org("mha.dm", "mha", email_domains=["dm.mha.gov.in"])
    admin.org("mea", email_domains=["mea.gov.in"])
    vera, _ = admin.user("vera")
    admin.grant(vera, ("verifier", "mha"))
    admin.user("alice")
    admin.user("bob")
    return EmailScene(admin, server)


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[EmailScene]:
    made = make_scene(tmp_path, request.param, smtp_server)
    try:
        yield made
    finally:
        made.admin.close()
