"""The federation profile query's reader (broker/services/federation_queries.py): the user of the
asking server its ``in.gov.broker.requester`` names is whom the profile is shown to and whom
the policy decides for; a reader of another server is passed over (counted) and the profile
shown to nobody, as for a query naming none.

What a profile shows each audience is tested in test_profile_visibility.py, believing the
reader in test_remote_classes.py, and the query between real nodes in
test_profile_visibility_nodes.py.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.access_policy import AccessPolicy, Decision
from broker.clock import Clock
from broker.remote_classes import READER_NOT_OF_ORIGIN, RemoteClasses
from broker.services.federation_queries import FederationQueries
from tests.storage_helpers import result_of

HERE = "a.test"
VERA = f"@vera:{HERE}"
BEA = "@bea:b.test"


class Scene:
    """Node A answering: whom each profile was shown to, and each policy decision."""

    def __init__(self) -> None:
        self.shown_to: list[str] = []
        self.decisions: list[Decision] = []

        async def status(server: str, user_id: str) -> Any:
            return {"user_id": user_id, "class": "verified", "organisation": "mha", "since": 5}

        self.remote = RemoteClasses(HERE, Clock(FakeReactor()), 300, status)

        def rule(decision: Decision) -> None:
            self.decisions.append(decision)

        self.queries = FederationQueries(HERE, None, self.profile, None,  # type: ignore[arg-type]
                                         AccessPolicy([rule]), None,  # type: ignore[arg-type]
                                         self.remote)

    async def profile(self, user_id: str, reader: str) -> dict[str, Any]:
        self.shown_to.append(reader)
        return {"displayname": "Vera"}

    def ask(self, origin: str, requester: str | None) -> Any:
        return result_of(defer.ensureDeferred(
            self.queries.profile(origin, VERA, None, requester)))


def test_the_profile_is_shown_to_the_reader_of_the_asking_server_it_names() -> None:
    scene = Scene()
    scene.ask("b.test", BEA)
    assert scene.shown_to == [BEA] and scene.remote.verification_org(BEA) == "mha"


def test_the_policy_decides_for_the_named_reader() -> None:
    scene = Scene()
    scene.ask("b.test", BEA)
    assert [(d.actor, d.target, d.origin) for d in scene.decisions] == [(BEA, VERA, "b.test")]


def test_a_reader_of_another_server_is_passed_over_and_the_profile_shown_to_nobody() -> None:
    scene = Scene()
    scene.ask("c.test", BEA)
    assert scene.shown_to == [""] and scene.remote.ignored[READER_NOT_OF_ORIGIN] == 1
    assert scene.remote.statement(BEA) is None  # b.test was not asked about its user


def test_a_query_naming_no_reader_shows_the_profile_to_nobody() -> None:
    scene = Scene()
    scene.ask("b.test", None)
    assert scene.shown_to == [""] and sum(scene.remote.ignored.values()) == 0
