"""The separation rules in rooms shared with a Synapse homeserver, driven through matrix-nio as
apps on both servers would: a Synapse user (public to our node: Synapse attests nobody) is
refused from an official group held here, joining or knocking, with the rule's name passed on
by Synapse to its client; an informal room with the same user keeps working both ways; our
verified user's join of a Synapse room, carrying our attestation, is an ordinary membership there;
our verified user reads a Synapse user's profile through a query naming her, which Synapse
answers as any.

One Synapse and one node of ours for the module (Synapse takes seconds to start).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nio
import pytest
import yaml

from broker.attestations import ATTESTATION
from broker.cli import main
from broker.group_rules import VERIFIED_ONLY
from broker.rooms.room_kind import GROUP_EVENT
from broker.services.federation_queries import REQUESTER
from tests.nio_helpers import expect, register, send_text, sync_until, text_with_id
from tests.node_harness import NodeProcess
from tests.synapse_harness import SYNAPSE_ENV, SYNAPSE_SKIP, SynapseProcess

Servers = tuple[NodeProcess, SynapseProcess, str]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: Any) -> Iterator[Servers]:
    """Synapse and our node (organisation mha), and the localpart of a user of ours verified
    for mha."""
    python = os.environ.get(SYNAPSE_ENV)
    if not python:
        pytest.skip(SYNAPSE_SKIP)
    workdir = Path(tmp_path_factory.mktemp("synapse_groups"))
    orgs = workdir / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    synapse = SynapseProcess(Path(tmp_path_factory.mktemp("synapse")), python)
    ours = NodeProcess(workdir / "ours", federation=True,
                       overrides={"organisations.path": str(orgs)})
    ours.allow_servers(synapse.server_name)
    synapse.allow(ours.server_name)
    synapse.start()
    ours.start()
    try:
        vera = "v" + uuid.uuid4().hex[:10]
        ours.register(vera)
        assert main(["users", "verify", vera, "--organisation", "mha", "--basis", "document",
                     "--config", str(ours.config_path)]) == 0
        yield ours, synapse, vera
    finally:
        ours.stop()
        synapse.stop()


async def _verified_client(ours: NodeProcess, localpart: str) -> nio.AsyncClient:
    """The verified user logged in through nio, once the running node took in the command's
    verification (its change feed polls every second)."""
    client = nio.AsyncClient(ours.base_url, f"@{localpart}:{ours.server_name}")
    expect(await client.login("correct horse 1"), nio.LoginResponse)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        profile = await client.get_profile(client.user_id)
        if isinstance(profile, nio.ProfileGetResponse) and \
                profile.other_info.get("in.gov.broker.class") == "verified":
            return client
        await asyncio.sleep(0.1)
    raise AssertionError("the node did not take in the verification")


async def _until_logged(synapse: SynapseProcess, text: str, timeout: float = 15.0) -> None:
    """Wait for Synapse's request log to hold ``text`` (it writes the log out every few
    seconds)."""
    log = synapse.workdir / "homeserver.log"
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"Synapse logged no request with {text}"
        await asyncio.sleep(0.2)


async def _official_group(vera: nio.AsyncClient, join_rule: str) -> str:
    """An official group of mha with an alias, whose join rule is ``join_rule``; the alias."""
    alias = "g" + uuid.uuid4().hex[:10]
    expect(await vera.room_create(alias=alias, initial_state=[
        {"type": GROUP_EVENT, "state_key": "",
         "content": {"kind": "official", "organisation": "mha"}},
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": join_rule}},
    ]), nio.RoomCreateResponse)
    return f"#{alias}:{vera.user_id.split(':', 1)[1]}"


async def _refusal_by_our_group(servers: Servers, join_rule: str,
                                attempt: Callable[[nio.AsyncClient, str], Awaitable[Any]]
                                ) -> tuple[Any, Any]:
    """A fresh Synapse user's ``attempt`` on a fresh official group of ours (by its alias):
    Synapse's answer, and the reason field it holds."""
    ours, synapse, localpart = servers
    vera = await _verified_client(ours, localpart)
    sam = await register(synapse)  # type: ignore[arg-type]  # base_url is all it needs
    try:
        answer = await attempt(sam, await _official_group(vera, join_rule))
        if not isinstance(answer, nio.ErrorResponse) or answer.transport_response is None:
            return answer, None
        return answer, (await answer.transport_response.json()).get("in.gov.broker.reason")
    finally:
        await vera.close()
        await sam.close()


def test_a_synapse_users_join_of_our_official_group_is_refused_naming_the_rule(
        servers: Servers) -> None:
    answer, reason = asyncio.run(_refusal_by_our_group(
        servers, "public", lambda sam, alias: sam.join(alias)))
    assert isinstance(answer, nio.JoinError), answer
    assert (answer.status_code, reason) == ("M_FORBIDDEN", VERIFIED_ONLY)


def test_a_synapse_users_knock_on_our_official_group_is_refused_naming_the_rule(
        servers: Servers) -> None:
    answer, reason = asyncio.run(_refusal_by_our_group(
        servers, "knock", lambda sam, alias: sam.room_knock(alias, reason="let me in")))
    assert isinstance(answer, nio.RoomKnockError), answer
    assert (answer.status_code, reason) == ("M_FORBIDDEN", VERIFIED_ONLY)


def test_an_informal_room_with_a_synapse_user_carries_messages_both_ways(
        servers: Servers) -> None:
    ours, synapse, localpart = servers

    async def run() -> None:
        vera = await _verified_client(ours, localpart)
        sam = await register(synapse)  # type: ignore[arg-type]  # base_url is all it needs
        try:
            alias = "i" + uuid.uuid4().hex[:10]
            created = expect(await vera.room_create(alias=alias), nio.RoomCreateResponse)
            expect(await vera.room_invite(created.room_id, sam.user_id), nio.RoomInviteResponse)
            expect(await sam.join(f"#{alias}:{ours.server_name}"), nio.JoinResponse)
            await sam.sync(timeout=0)
            await vera.sync(timeout=0)
            from_vera = await send_text(vera, created.room_id, "from the broker")
            await sync_until(sam, text_with_id(from_vera))
            from_sam = await send_text(sam, created.room_id, "from synapse")
            await sync_until(vera, text_with_id(from_sam))
        finally:
            await vera.close()
            await sam.close()
    asyncio.run(run())


def test_our_verified_users_attested_join_of_a_synapse_room_is_an_ordinary_membership(
        servers: Servers) -> None:
    """Synapse takes our join, attestation and all, keeps the key as content and the room
    works; the attestation Synapse hands its client is the one our node signed."""
    ours, synapse, localpart = servers

    async def run() -> None:
        vera = await _verified_client(ours, localpart)
        sam = await register(synapse)  # type: ignore[arg-type]  # base_url is all it needs
        try:
            alias = "s" + uuid.uuid4().hex[:10]
            created = expect(await sam.room_create(alias=alias, visibility=nio.RoomVisibility
                                                   .public), nio.RoomCreateResponse)
            expect(await vera.join(f"#{alias}:{synapse.server_name}"), nio.JoinResponse)
            member = expect(await sam.room_get_state_event(
                created.room_id, "m.room.member", vera.user_id), nio.RoomGetStateEventResponse)
            assert member.content["membership"] == "join"
            assert member.content[ATTESTATION]["class"] == "verified"
            assert member.content[ATTESTATION]["organisation"] == "mha"
            await sam.sync(timeout=0)
            from_vera = await send_text(vera, created.room_id, "from a verified user")
            await sync_until(sam, text_with_id(from_vera))
        finally:
            await vera.close()
            await sam.close()
    asyncio.run(run())


def test_our_verified_users_read_of_a_synapse_users_profile_names_her_and_is_answered(
        servers: Servers) -> None:
    """Our node names Vera in its profile query (``in.gov.broker.requester``, as it does for
    every verified reader); Synapse ignores the parameter and answers the profile as to any
    server."""
    ours, synapse, localpart = servers

    async def run() -> None:
        vera = await _verified_client(ours, localpart)
        sam = await register(synapse)  # type: ignore[arg-type]  # base_url is all it needs
        try:
            expect(await sam.set_displayname("Sam of Synapse"),
                   nio.ProfileSetDisplayNameResponse)
            profile = expect(await vera.get_profile(sam.user_id), nio.ProfileGetResponse)
            assert profile.displayname == "Sam of Synapse"
            await _until_logged(synapse, f"{REQUESTER}={quote(vera.user_id, safe='')}")
        finally:
            await vera.close()
            await sam.close()
    asyncio.run(run())
