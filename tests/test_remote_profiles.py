"""A client's read of a profile of a user of another server (broker/services/profiles.py): the
user's server is asked (the federation profile query) naming the reader when this node verified
them (nobody otherwise), only string values of the known fields are passed on, a server that
does not know the user is 404, one that cannot answer 502.

The question to the other server is a function the test answers (the query across real nodes
is in test_profile_visibility_nodes.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.access_policy import AccessPolicy
from broker.admin.classes import UserClasses
from broker.clock import Clock
from broker.errors import NotFound, Unavailable
from broker.services.profiles import Profiles
from protocol.errors import DestinationRefused, HttpResponseError
from storage.accounts import VerificationRow
from tests.storage_helpers import result_of

XENA = "@xena:there.test"
BEA = "@bea:here.test"  # verified on this node
PAT = "@pat:here.test"  # public


def profiles(answer: Any, *, federation: bool = True
             ) -> tuple[Profiles, list[tuple[str, str, str]]]:
    asked: list[tuple[str, str, str]] = []

    async def ask(server: str, user_id: str, reader: str) -> Any:
        asked.append((server, user_id, reader))
        if isinstance(answer, Exception):
            raise answer
        return answer

    classes = UserClasses(SimpleNamespace(), Clock(FakeReactor()))  # type: ignore[arg-type]
    classes.verified(VerificationRow("v1", BEA, "mha", "document", "@root", 0, None))
    made = Profiles(None, None, AccessPolicy(), "here.test", None,  # type: ignore[arg-type]
                    SimpleNamespace(classes=classes), None,  # type: ignore[arg-type]
                    ask if federation else None)
    return made, asked


def read(made: Profiles, viewer: str = PAT) -> Any:
    return result_of(defer.ensureDeferred(made.profile(viewer, XENA)))


def test_the_users_own_server_is_asked_and_its_answer_passed_on() -> None:
    made, asked = profiles({"displayname": "Xena", "in.gov.broker.class": "verified"})
    assert read(made) == {"displayname": "Xena", "in.gov.broker.class": "verified"}
    assert [(server, user_id) for server, user_id, _ in asked] == [("there.test", XENA)]


def test_a_verified_reader_is_named_in_the_question() -> None:
    made, asked = profiles({"displayname": "Xena"})
    read(made, BEA)
    assert [reader for _, _, reader in asked] == [BEA]


@pytest.mark.parametrize("viewer", [PAT, ""])
def test_a_public_reader_or_one_without_a_token_is_not_named(viewer: str) -> None:
    made, asked = profiles({"displayname": "Xena"})
    read(made, viewer)
    assert [reader for _, _, reader in asked] == [""]


def test_each_read_asks_again_so_one_readers_answer_reaches_no_other() -> None:
    made, asked = profiles({"displayname": "Xena"})
    read(made, BEA)
    read(made, PAT)
    assert [reader for _, _, reader in asked] == [BEA, ""]


def test_unknown_keys_and_values_that_are_not_strings_are_left_out() -> None:
    made, _ = profiles({"displayname": 7, "avatar_url": "mxc://there.test/a", "other": "x"})
    assert read(made) == {"avatar_url": "mxc://there.test/a"}


@pytest.mark.parametrize("failure", [HttpResponseError(404, "M_NOT_FOUND", {}),
                                     DestinationRefused("federation with there.test is not"
                                                        " allowed")])
def test_a_user_the_server_does_not_know_or_of_a_server_not_federated_with_is_not_found(
        failure: Exception) -> None:
    made, _ = profiles(failure)
    with pytest.raises(NotFound):
        read(made)


@pytest.mark.parametrize("failure", [HttpResponseError(500, "M_UNKNOWN", {}),
                                     ConnectionRefusedError(), ["not", "a", "profile"]])
def test_a_server_that_cannot_answer_is_unavailable(failure: Any) -> None:
    made, _ = profiles(failure)
    with pytest.raises(Unavailable):
        read(made)


def test_without_federation_a_remote_profile_is_not_found() -> None:
    made, _ = profiles({}, federation=False)
    with pytest.raises(NotFound):
        read(made)
