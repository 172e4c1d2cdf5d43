"""A membership restated as the node builds it now (a class change,
broker/rooms/creator.py ``EventSpec.restate``) takes the member's content as the room holds it
when the event is built, so a profile change applied meanwhile is never undone by a
restatement read before it; one that would say what the member's event says is not sent.

An in-process node; the member's verification is set in the class cache directly.
"""

from __future__ import annotations

import pytest

from broker.attestations import ATTESTATION
from broker.rooms.creator import EventSpec, NothingToRestate
from storage.accounts import VerificationRow
from tests.inprocess_node import InProcessNode

OWNER = "@owner:clock.test"


def _restate(local: InProcessNode, room_id: str, stale: dict[str, object]) -> dict[str, object]:
    spec = EventSpec(sender=OWNER, type="m.room.member", content=stale, state_key=OWNER,
                     restate=True)
    return dict(local.settle(local.node.rooms.creator.send(room_id, spec)).content)


def _verify_owner(local: InProcessNode) -> None:
    local.node.admin.classes.verified(VerificationRow("v1", OWNER, "mha", "document", "@root",
                                                      5))


def test_a_restatement_keeps_a_name_set_after_it_was_read(local: InProcessNode) -> None:
    room_id, _, _ = local.room_with_members(0, "talk")
    stale = {"membership": "join", "displayname": "owner"}  # read before the change below
    local.settle(local.node.profiles.set_field(OWNER, OWNER, "displayname", "Olga Rao"))
    _verify_owner(local)
    content = _restate(local, room_id, stale)
    assert content["displayname"] == "Olga Rao"
    assert content[ATTESTATION] == {"class": "verified", "organisation": "mha", "since": 5}


def test_a_restatement_that_would_change_nothing_is_not_sent(local: InProcessNode) -> None:
    room_id, _, _ = local.room_with_members(0, "talk")
    with pytest.raises(NothingToRestate):
        _restate(local, room_id, {"membership": "join"})
