"""Who is in which audience of profile visibility (broker/admin/profile_visibility.py), for
users of other nodes: one whose home node attests them verified is in
``verified_other_nodes``, one without a current attestation is public; an official group's
membership events restate only what every verified audience sees, other nodes' included.

The attestations are taken in from membership events as broker/remote_classes.py does; the
organisations are held as the node's own writes hand them over."""

from __future__ import annotations

from twisted.internet.task import Clock as FakeReactor

from broker.access_policy import OFFICIAL, RoomFacts
from broker.admin.classes import UserClasses
from broker.admin.profile_visibility import ProfileVisibility
from broker.attestations import ATTESTATION
from broker.remote_classes import RemoteClasses
from storage.organisations import Organisation
from tests.test_remote_classes import HERE, LIFETIME, VERIFIED_MHA, XENA, classes, member

BOB = f"@bob:{HERE}"
PROFILE = {"displayname": "Bob Rao", "in.gov.broker.class": "verified",
           "in.gov.broker.designation": "Under Secretary"}


def visibility(setting: dict[str, list[str]]
               ) -> tuple[ProfileVisibility, RemoteClasses, FakeReactor]:
    """Profile visibility with mha's ``setting`` (no store: the organisations are handed
    over) and the attestations of other nodes."""
    remote, reactor = classes()
    made = ProfileVisibility(None, UserClasses(None, None), HERE)  # type: ignore[arg-type]
    made.remote = remote
    made.written([Organisation("mha", "MHA", settings={"profile_visibility": setting})])
    return made, remote, reactor


def test_a_user_of_another_node_attested_verified_sees_what_other_nodes_verified_see(
) -> None:
    made, remote, _ = visibility({"verified_other_nodes": ["displayname", "designation"]})
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    assert made.audience(XENA, "mha") == "verified_other_nodes"
    assert made.shown(XENA, BOB, "mha", PROFILE) == PROFILE


def test_a_user_of_another_node_without_attestation_is_public() -> None:
    made, remote, _ = visibility({"verified_other_nodes": ["displayname", "designation"]})
    remote.learn(member(XENA, "join"))
    assert made.audience(XENA, "mha") == "public"
    assert made.shown(XENA, BOB, "mha", PROFILE) == {"displayname": "Bob Rao",
                                                   "in.gov.broker.class": "verified"}


def test_an_attestation_past_its_time_leaves_the_user_public() -> None:
    made, remote, reactor = visibility({})
    remote.learn(member(XENA, "join", {ATTESTATION: VERIFIED_MHA}))
    reactor.advance(LIFETIME)
    assert made.audience(XENA, "mha") == "public"


def test_an_official_group_restates_only_what_other_nodes_verified_users_see_too() -> None:
    made, remote, _ = visibility({"verified_other_nodes": []})
    assert made.in_room("mha", PROFILE, RoomFacts(OFFICIAL, "mha")) == {}
    assert made.in_room("mha", PROFILE, RoomFacts()) == {}
    shown, _, _ = visibility({"public": []})
    assert shown.in_room("mha", PROFILE, RoomFacts(OFFICIAL, "mha")) == {
        "displayname": "Bob Rao"}
