"""The federation profile query follows profile visibility: another server names no user, and
until nodes attest their users it is answered what the public may see.

A real node (its organisations and their settings from the file its config names, its
accounts from a ``broker users import`` file) and a signed fake peer asking.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from tests.fake_peer import FakePeer
from tests.node_harness import NodeProcess
from tests.peer_env import node_with_organisations

QUERY = "/_matrix/federation/v1/query/profile"
ACCOUNTS = """localpart,name,organisation,designation,employee_id,email,phone,class
bob,Bob Rao,mha,Under Secretary,,bob@mha.gov.in,+91 11 2309 2011,verified
mira,Mira Sen,mea,Director,,,,verified
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, FakePeer]]:
    workdir: Path = tmp_path_factory.mktemp("profile_visibility_federation")
    node, peer = node_with_organisations(workdir, [
        {"id": "mha", "name": "MHA"},
        {"id": "mea", "name": "MEA", "settings": {"profile_visibility": {
            "public": ["displayname", "designation"]}}}])
    accounts = workdir / "accounts.csv"
    accounts.write_text(ACCOUNTS)
    try:
        assert main(["users", "import", str(accounts), "--config", str(node.config_path)]) == 0
        for localpart in ("bob", "mira"):
            _until_verified((node, peer), localpart)
        yield node, peer
    finally:
        node.stop()


def query(env: tuple[NodeProcess, FakePeer], localpart: str, field: str | None = None
          ) -> tuple[int, Any]:
    node, peer = env
    params = {"user_id": f"@{localpart}:{node.server_name}"}
    if field is not None:
        params["field"] = field
    answer = peer.request(node, "GET", QUERY, params=params)
    return answer.status_code, answer.json()


def _until_verified(env: tuple[NodeProcess, FakePeer], localpart: str,
                    timeout: float = 10.0) -> None:
    """Wait for the running node to take in the import's verifications (it follows the
    audit log every second)."""
    deadline = time.monotonic() + timeout
    while query(env, localpart)[1].get("in.gov.broker.class") != "verified":
        assert time.monotonic() < deadline, "the import's verification was not taken in"
        time.sleep(0.1)


def test_another_server_sees_what_the_public_sees_by_default(env: Any) -> None:
    status, profile = query(env, "bob")
    assert status == 200
    assert profile == {"displayname": "Bob Rao", "in.gov.broker.class": "verified"}


def test_another_server_sees_what_the_owners_organisation_shows_the_public(
        env: Any) -> None:
    assert query(env, "mira") == (200, {"displayname": "Mira Sen",
                                        "in.gov.broker.class": "verified",
                                        "in.gov.broker.designation": "Director"})


def test_a_hidden_field_asked_on_its_own_is_absent(env: Any) -> None:
    assert query(env, "bob", "in.gov.broker.designation") == (200, {})
    assert query(env, "mira", "in.gov.broker.designation") == (
        200, {"in.gov.broker.designation": "Director"})
    assert query(env, "bob", "displayname") == (200, {"displayname": "Bob Rao"})
