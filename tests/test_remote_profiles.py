"""A client's read of a profile of a user of another server (broker/services/profiles.py): the
user's server is asked (the federation profile query), only string values of the known fields
are passed on, a server that does not know the user is 404, one that cannot answer 502.

The question to the other server is a function the test answers (the query across real nodes
is in test_profile_visibility_nodes.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from broker.access_policy import AccessPolicy
from broker.errors import NotFound, Unavailable
from broker.services.profiles import Profiles
from protocol.errors import DestinationRefused, HttpResponseError
from tests.storage_helpers import result_of

XENA = "@xena:there.test"


def profiles(answer: Any) -> tuple[Profiles, list[tuple[str, str]]]:
    asked: list[tuple[str, str]] = []

    async def ask(server: str, user_id: str) -> Any:
        asked.append((server, user_id))
        if isinstance(answer, Exception):
            raise answer
        return answer

    made = Profiles(None, None, AccessPolicy(), "here.test", None, None, None,  # type: ignore[arg-type]
                    ask)
    return made, asked


def read(made: Profiles, viewer: str = "@pat:here.test") -> Any:
    return result_of(defer.ensureDeferred(made.profile(viewer, XENA)))


def test_the_users_own_server_is_asked_and_its_answer_passed_on() -> None:
    made, asked = profiles({"displayname": "Xena", "in.gov.broker.class": "verified"})
    assert read(made) == {"displayname": "Xena", "in.gov.broker.class": "verified"}
    assert asked == [("there.test", XENA)]


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
    made = Profiles(None, None, AccessPolicy(), "here.test", None, None, None)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        read(made)
