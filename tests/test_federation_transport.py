"""FederationClient and ServerResolver: refusals before connecting, discovery, a real round trip.

Refusals and discovery run on a ``MemoryReactorClock`` with fake DNS and ``.well-known``
answers (no network; a connection attempt shows up in ``reactor.tcpClients``). The round trip
runs ``tests/federation_peer.py`` twice in subprocesses: a TLS server with the real key
endpoints and X-Matrix authentication, and a client making signed requests to it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from federation.server_resolver import (
    WELL_KNOWN_DEFAULT_CACHE_MS,
    WELL_KNOWN_ERROR_CACHE_MS,
    WELL_KNOWN_MAX_CACHE_MS,
    ServerResolver,
    WellKnownAnswer,
    is_public_address,
)
from federation.transport_client import FederationClient
from protocol.discovery import SrvRecord
from protocol.errors import DestinationRefused
from protocol.signing import encode_signing_key_seed, generate_signing_key

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def time_ms(self) -> int:
        return self.now


class FakeNet:
    """DNS and .well-known answers from dicts, recording every lookup."""

    def __init__(self) -> None:
        self.hosts: dict[str, list[str]] = {}
        self.well_known: dict[str, WellKnownAnswer] = {}
        self.srv_records: dict[str, list[SrvRecord]] = {}
        self.lookups: list[str] = []

    async def fetch_well_known(self, host: str) -> WellKnownAnswer:
        self.lookups.append(f"well-known {host}")
        return self.well_known.get(host, WellKnownAnswer(404))

    async def lookup_srv(self, name: str) -> tuple[list[SrvRecord], int | None]:
        self.lookups.append(f"srv {name}")
        return self.srv_records.get(name, []), 300

    async def resolve_host(self, host: str, port: int) -> list[str]:
        self.lookups.append(f"dns {host}")
        return self.hosts.get(host, [])


def resolver(net: FakeNet, clock: FakeClock | None = None, *,
             private: bool = False) -> ServerResolver:
    return ServerResolver(clock or FakeClock(), fetch_well_known=net.fetch_well_known,
                          lookup_srv=net.lookup_srv, resolve_host=net.resolve_host,
                          allow_private_addresses=private)


def make_client(net: FakeNet, reactor: MemoryReactorClock, *, private: bool = False,
                allowed: bool = True) -> FederationClient:
    return FederationClient("me.example", generate_signing_key("k1"), reactor, FakeClock(),
                            lambda destination: allowed, allow_private_addresses=private,
                            verify_tls=True, resolver=resolver(net, private=private))


def failure_of(d: defer.Deferred[Any]) -> Failure:
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures, "expected the request to fail at once"
    return failures[0]


def start_get(client: FederationClient, destination: str) -> defer.Deferred[Any]:
    return defer.ensureDeferred(client.get_json(destination, "/_matrix/federation/v1/version"))


def discover(res: ServerResolver, name: str) -> Any:
    d = defer.ensureDeferred(res.discover(name))
    results: list[Any] = []
    d.addBoth(results.append)
    return results[0]


# Refusals before connecting ------------------------------------------------------------------
def test_destination_outside_the_allow_list_is_refused_without_any_lookup() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    d = start_get(make_client(net, reactor, allowed=False), "other.example:8448")
    assert failure_of(d).check(DestinationRefused)
    assert net.lookups == [] and reactor.tcpClients == []


def test_hostname_resolving_to_a_private_address_is_refused_before_connecting() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    net.hosts["inside.example"] = ["10.1.2.3"]
    d = start_get(make_client(net, reactor), "inside.example:8448")
    assert failure_of(d).check(DestinationRefused)
    assert reactor.tcpClients == []


def test_private_ip_literal_is_refused_before_connecting() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    d = start_get(make_client(net, reactor), "192.168.1.10:8448")
    assert failure_of(d).check(DestinationRefused)
    assert reactor.tcpClients == []


def test_only_public_addresses_of_a_mixed_answer_are_dialled() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    net.hosts["mixed.example"] = ["127.0.0.1", "203.0.113.7", "93.184.216.34"]
    start_get(make_client(net, reactor), "mixed.example:8448")
    assert [(host, port) for host, port, *_ in reactor.tcpClients] == [("93.184.216.34", 8448)]


def test_private_addresses_are_dialled_when_allowed() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    net.hosts["inside.example"] = ["10.1.2.3"]
    start_get(make_client(net, reactor, private=True), "inside.example:8448")
    assert [(host, port) for host, port, *_ in reactor.tcpClients] == [("10.1.2.3", 8448)]


def test_request_to_ourselves_is_refused() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    assert failure_of(start_get(make_client(net, reactor), "me.example")).check(
        DestinationRefused)


def test_invalid_server_name_is_refused() -> None:
    net, reactor = FakeNet(), MemoryReactorClock()
    assert failure_of(start_get(make_client(net, reactor), "bad name!")).check(DestinationRefused)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.1.1", "100.64.0.1",
    "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1", "not an ip",
])
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_global_addresses_are_public(address: str) -> None:
    assert is_public_address(address)


# Discovery -----------------------------------------------------------------------------------
def test_explicit_port_skips_well_known_and_srv() -> None:
    net = FakeNet()
    candidates = discover(resolver(net), "direct.example:1234")
    assert [(c.host, c.port, c.host_header) for c in candidates] == [
        ("direct.example", 1234, "direct.example:1234")]
    assert net.lookups == []


def test_well_known_delegation_is_followed() -> None:
    net = FakeNet()
    net.well_known["deleg.example"] = WellKnownAnswer(200, b'{"m.server": "matrix.deleg.example:443"}')
    candidates = discover(resolver(net), "deleg.example")
    assert [(c.host, c.port, c.tls_servername, c.host_header) for c in candidates] == [
        ("matrix.deleg.example", 443, "matrix.deleg.example", "matrix.deleg.example:443")]


def test_without_well_known_the_srv_record_is_used_with_the_original_tls_name() -> None:
    net = FakeNet()
    net.srv_records["_matrix-fed._tcp.srv.example"] = [SrvRecord("fed.srv.example.", 8449)]
    candidates = discover(resolver(net), "srv.example")
    assert [(c.host, c.port, c.tls_servername) for c in candidates] == [
        ("fed.srv.example", 8449, "srv.example")]


def test_without_well_known_or_srv_port_8448_is_used() -> None:
    net = FakeNet()
    candidates = discover(resolver(net), "plain.example")
    assert [(c.host, c.port) for c in candidates] == [("plain.example", 8448)]
    assert net.lookups == ["well-known plain.example", "srv _matrix-fed._tcp.plain.example",
                           "srv _matrix._tcp.plain.example"]


def well_known_fetches_after(answer: WellKnownAnswer, elapsed_ms: int) -> int:
    net, clock = FakeNet(), FakeClock()
    net.well_known["wk.example"] = answer
    res = resolver(net, clock)
    discover(res, "wk.example")
    clock.now += elapsed_ms
    discover(res, "wk.example")
    return net.lookups.count("well-known wk.example")


DELEGATED = b'{"m.server": "m.wk.example:8448"}'


def test_well_known_answer_is_cached_for_a_day_by_default() -> None:
    answer = WellKnownAnswer(200, DELEGATED)
    assert well_known_fetches_after(answer, WELL_KNOWN_DEFAULT_CACHE_MS - 1) == 1
    assert well_known_fetches_after(answer, WELL_KNOWN_DEFAULT_CACHE_MS) == 2


def test_well_known_error_is_cached_for_an_hour() -> None:
    answer = WellKnownAnswer(500)
    assert well_known_fetches_after(answer, WELL_KNOWN_ERROR_CACHE_MS - 1) == 1
    assert well_known_fetches_after(answer, WELL_KNOWN_ERROR_CACHE_MS) == 2


def test_well_known_max_age_is_honoured() -> None:
    answer = WellKnownAnswer(200, DELEGATED, "public, max-age=600")
    assert well_known_fetches_after(answer, 599_999) == 1
    assert well_known_fetches_after(answer, 600_000) == 2


def test_well_known_max_age_is_capped_at_48_hours() -> None:
    answer = WellKnownAnswer(200, DELEGATED, "max-age=9999999")
    assert well_known_fetches_after(answer, WELL_KNOWN_MAX_CACHE_MS) == 2


# A real signed round trip --------------------------------------------------------------------
def _read_announcement(reader: int, peer: subprocess.Popen[bytes], timeout: float) -> str:
    """What the peer writes into the named pipe ``reader``: one select over the pipe and the
    peer's pidfd (its exit), then the whole announcement."""
    exited = os.pidfd_open(peer.pid)
    try:
        readable, _, _ = select.select([reader, exited], [], [], timeout)
    finally:
        os.close(exited)
    if reader not in readable:
        os.close(reader)
        assert peer.poll() is None, peer.stderr.read().decode() if peer.stderr else ""
        raise AssertionError(f"peer did not start in {timeout}s")
    os.set_blocking(reader, True)
    with open(reader, "rb") as pipe:  # to end of file: the peer closes it after writing
        return pipe.read().decode()


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    seed = encode_signing_key_seed(generate_signing_key("c1"))
    port_file = tmp_path_factory.mktemp("peer") / "port"
    # The peer writes its address to "<port file>.tmp" once it listens (then renames it): as a
    # named pipe, that write is the readiness signal this waits on.
    announced = port_file.with_name(port_file.name + ".tmp")
    os.mkfifo(announced)
    reader = os.open(announced, os.O_RDONLY | os.O_NONBLOCK)
    peer = subprocess.Popen(
        [sys.executable, "-m", "tests.federation_peer", "serve", str(port_file), "client.test",
         seed], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        destination = _read_announcement(reader, peer, timeout=20)
        result = subprocess.run(
            [sys.executable, "-m", "tests.federation_peer", "client", destination, seed],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        yield json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        peer.terminate()
        peer.wait(timeout=10)


def test_server_keys_are_fetched_and_verified_over_tls(round_trip: dict[str, Any]) -> None:
    assert round_trip["server_key_ids"] == ["ed25519:peer1"]


def test_signed_put_reaches_the_peer_as_from_our_origin(round_trip: dict[str, Any]) -> None:
    echo = round_trip["echo"]["ok"]
    assert echo["origin"] == "client.test" and echo["body"] == {"x": [1, "é"]}


def test_query_and_encoded_path_are_signed_as_sent(round_trip: dict[str, Any]) -> None:
    assert round_trip["echo"]["ok"]["uri"] == "/_matrix/federation/v1/echo/a%20b?q=1+2&r=a&r=b"


def test_signed_get_without_body_authenticates(round_trip: dict[str, Any]) -> None:
    assert round_trip["echo_get"]["ok"]["origin"] == "client.test"


def test_unsigned_request_is_unauthorized(round_trip: dict[str, Any]) -> None:
    assert round_trip["unsigned"] == {"status": 401, "errcode": "M_UNAUTHORIZED"}


def test_request_signed_with_the_wrong_key_is_unauthorized(round_trip: dict[str, Any]) -> None:
    assert round_trip["wrong_key"] == {"status": 401, "errcode": "M_UNAUTHORIZED"}


def test_origin_not_allowed_is_forbidden(round_trip: dict[str, Any]) -> None:
    assert round_trip["denied"] == {"status": 403, "errcode": "M_FORBIDDEN"}


def test_notary_query_answers_the_peers_own_keys(round_trip: dict[str, Any]) -> None:
    [entry] = round_trip["notary"]["ok"]["server_keys"]
    assert list(entry["verify_keys"]) == ["ed25519:peer1"]


def test_self_signed_certificate_is_refused_when_verifying_tls(
        round_trip: dict[str, Any]) -> None:
    assert "certificate verify failed" in round_trip["verified_tls"].get("message", "")


def test_loopback_peer_is_refused_without_allow_private_addresses(
        round_trip: dict[str, Any]) -> None:
    assert round_trip["private_refused"]["error"] == "DestinationRefused"
