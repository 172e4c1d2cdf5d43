"""A tiny federation peer for transport tests, run in subprocesses (each with its own reactor).

    python -m tests.federation_peer serve <port file> <client server name> <client key seed>
    python -m tests.federation_peer client <destination> <client key seed>

``serve`` listens with TLS (a fresh self-signed certificate) on a loopback port and serves the
real key endpoints plus ``PUT /_matrix/federation/v1/echo/...``, a signed-server route (the
router authenticates it with ``broker.federation_api.authentication``) answering the origin, the
path and the body. The client's key is pinned, so the server never fetches it; ``denied.example`` is not
allowed. ``client`` runs a fixed set of requests with ``FederationClient`` and prints one JSON
object with each outcome.
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer, ssl, task
from twisted.internet import reactor as _reactor
from twisted.web import server

from broker.clock import Clock
from broker.federation_api.authentication import ServerAuthentication
from broker.federation_api.keys import KeyEndpoints
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.guards import Guards
from broker.http.server import Router
from broker.services.federation_queries import ServerKeys
from federation.keyring import Keyring
from federation.transport_client import FederationClient
from protocol.errors import HttpResponseError
from protocol.server_keys import parse_server_keys_response
from protocol.signing import (
    encode_verify_key,
    generate_signing_key,
    get_verify_key,
    signing_key_from_seed,
    verify_key_id,
)
from storage.database import Database, DatabaseConfig
from storage.migrations import apply_migrations
from storage.server_keys import ServerKeyStore

reactor: Any = _reactor

DENIED = "denied.example"
ECHO = r"/_matrix/federation/v1/echo/(?P<rest>.*)"


class Echo(Endpoints):
    @endpoint(("PUT", "GET"), ECHO, access=Access.SERVER, body=JsonObject, body_optional=True)
    async def echo(self, call: Call, rest: str, body: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"origin": call.server, "rest": rest,
                     "uri": call.request.uri.decode("ascii"), "body": body}


def _self_signed_pem() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def serve(port_file: str, client_name: str, client_seed: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fedpeer"))
    router = Router(1_000_000)
    site = server.Site(router)
    certificate = ssl.PrivateCertificate.loadPEM(_self_signed_pem())
    port = reactor.listenSSL(0, site, certificate.options(), interface="127.0.0.1")
    server_name = f"127.0.0.1:{port.getHost().port}"
    signing_key = generate_signing_key("peer1")
    client_key = signing_key_from_seed(client_seed, "c1")
    db = Database(DatabaseConfig(engine="sqlite", path=str(workdir / "peer.db")), reactor)
    db.start()
    apply_migrations(db)
    clock = Clock(reactor)
    pinned = {client_name: {verify_key_id(client_key): encode_verify_key(client_key)},
              DENIED: {verify_key_id(client_key): encode_verify_key(client_key)}}
    fed_client = FederationClient(server_name, signing_key, reactor, clock, lambda s: True,
                                  allow_private_addresses=True, verify_tls=False)
    policy = SimpleNamespace(is_allowed=lambda origin: origin != DENIED)
    keyring = Keyring(ServerKeyStore(db), fed_client, server_name,
                      {verify_key_id(signing_key): get_verify_key(signing_key)}, clock,
                      pinned_keys=pinned)
    limiter = SimpleNamespace(check=lambda action, key, exempt=False: None)
    router.guards = Guards(SimpleNamespace(), limiter, ServerAuthentication(policy, keyring))
    router.add(KeyEndpoints(ServerKeys(server_name, signing_key, [], clock, keyring)), Echo())
    router.compile()
    Path(port_file + ".tmp").write_text(server_name)
    Path(port_file + ".tmp").rename(port_file)
    reactor.run()


async def _outcome(call: Any) -> Any:
    try:
        return {"ok": await call}
    except HttpResponseError as exc:
        return {"status": exc.status, "errcode": exc.errcode}
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


async def run_client(destination: str, seed: str) -> dict[str, Any]:
    key = signing_key_from_seed(seed, "c1")
    clock = Clock(reactor)

    def client(name: str = "client.test", signing_key: Any = key, verify_tls: bool = False,
               private: bool = True) -> FederationClient:
        return FederationClient(name, signing_key, reactor, clock, lambda s: True,
                                allow_private_addresses=private, verify_tls=verify_tls)

    main = client()
    results: dict[str, Any] = {}
    keys_body = await main.get_json(destination, "/_matrix/key/v2/server", signed=False)
    parsed = parse_server_keys_response(keys_body, destination, clock.time_ms())
    results["server_key_ids"] = sorted(parsed.verify_keys)
    results["echo"] = await _outcome(main.put_json(
        destination, "/_matrix/federation/v1/echo/a%20b", {"x": [1, "é"]},
        args={"q": "1 2", "r": ["a", "b"]}))
    results["echo_get"] = await _outcome(main.get_json(destination,
                                                       "/_matrix/federation/v1/echo/get"))
    results["unsigned"] = await _outcome(main.get_json(
        destination, "/_matrix/federation/v1/echo/x", signed=False))
    results["wrong_key"] = await _outcome(client(signing_key=generate_signing_key("c1")).get_json(
        destination, "/_matrix/federation/v1/echo/x"))
    results["denied"] = await _outcome(client(name=DENIED).get_json(
        destination, "/_matrix/federation/v1/echo/x"))
    results["notary"] = await _outcome(main.post_json(
        destination, "/_matrix/key/v2/query", {"server_keys": {destination: {}}}, signed=False))
    results["verified_tls"] = await _outcome(client(verify_tls=True).get_json(
        destination, "/_matrix/key/v2/server", signed=False, timeout=10))
    results["private_refused"] = await _outcome(client(private=False).get_json(
        destination, "/_matrix/key/v2/server", signed=False, timeout=10))
    await main.close()
    return results


def client_main(destination: str, seed: str) -> None:
    async def run(_reactor: Any) -> None:
        print(json.dumps(await run_client(destination, seed)))

    task.react(lambda r: defer.ensureDeferred(run(r)))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        client_main(sys.argv[2], sys.argv[3])
