"""The federation profile query follows profile visibility: a query naming no reader is
answered what the public may see; one naming (``in.gov.broker.requester``) a user of the
asking server whom that server attests verified, what verified users of other nodes see; one
naming a user of any other server, this node's own included, is answered as one naming none,
and counted.

A real node (its organisations and their settings from the file its config names, its
accounts from a ``broker users import`` file) and a signed fake peer asking, whose user is
attested by the join the peer signs into a room of the node.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.attestations import ATTESTATION
from broker.cli import main
from broker.remote_classes import READER_NOT_OF_ORIGIN
from broker.services.federation_queries import REQUESTER
from tests.fake_peer import FakePeer
from tests.node_harness import Client, NodeProcess
from tests.peer_env import node_with_organisations
from tests.room_helpers import create_room

QUERY = "/_matrix/federation/v1/query/profile"
POLICY = "/_broker/admin/v1/policy"
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


def query(env: tuple[NodeProcess, FakePeer], localpart: str, field: str | None = None,
          requester: str | None = None) -> tuple[int, Any]:
    node, peer = env
    params = {"user_id": f"@{localpart}:{node.server_name}"}
    if field is not None:
        params["field"] = field
    if requester is not None:
        params[REQUESTER] = requester
    answer = peer.request(node, "GET", QUERY, params=params)
    return answer.status_code, answer.json()


def attested_peer_user(env: tuple[NodeProcess, FakePeer]) -> str:
    """A user of the peer whose join into a public room of the node (the peer signs it)
    attests them verified for mea."""
    node, peer = env
    room_id = create_room(node.register(), preset="public_chat")
    user_id = peer.user_id()
    peer.join(node, room_id, user_id, {ATTESTATION: {"class": "verified",
                                                     "organisation": "mea", "since": 1}})
    return user_id


def readers_passed_over(admin: Client) -> int:
    return int(admin.get(POLICY)["remote_classes"]["ignored"][READER_NOT_OF_ORIGIN])


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


# -- the reader the query names ------------------------------------------------------------------
BOB_FOR_VERIFIED = {"displayname": "Bob Rao", "in.gov.broker.class": "verified",
                    "in.gov.broker.designation": "Under Secretary",
                    "in.gov.broker.organisation": "mha", "in.gov.broker.email": "bob@mha.gov.in"}


def test_a_reader_the_asking_server_attests_verified_sees_what_verified_users_of_other_nodes_see(
        env: Any) -> None:
    """mha sets nothing: verified users of other nodes see everything but the phone."""
    assert query(env, "bob", requester=attested_peer_user(env)) == (200, BOB_FOR_VERIFIED)


def test_a_hidden_field_asked_on_its_own_is_given_to_a_verified_reader_who_may_see_it(
        env: Any) -> None:
    reader = attested_peer_user(env)
    assert query(env, "bob", "in.gov.broker.designation", reader) == (
        200, {"in.gov.broker.designation": "Under Secretary"})
    assert query(env, "bob", "in.gov.broker.phone", reader) == (200, {})


def test_a_reader_of_another_server_than_the_asking_one_is_answered_what_the_public_sees(
        env: Any) -> None:
    """The peer names mira, a verified user of the node itself: passed over, and counted."""
    node, _ = env
    admin = node.admin()
    before = readers_passed_over(admin)
    assert query(env, "bob", requester=f"@mira:{node.server_name}") == (
        200, {"displayname": "Bob Rao", "in.gov.broker.class": "verified"})
    assert readers_passed_over(admin) == before + 1
