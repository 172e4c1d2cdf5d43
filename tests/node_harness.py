"""Real nodes for integration tests: each runs as its own process on a loopback port.

``NodeProcess`` writes a config (with ``broker init``'s writer), starts ``python -m broker run``
and waits until the client API answers.  ``Client`` is a tiny synchronous HTTP helper for tests
that speak the raw API; tests of user journeys use matrix-nio instead.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

import requests
import yaml
from requests.adapters import HTTPAdapter

from broker.init_config import write_initial_config

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_line_within(stream: BinaryIO, timeout: float) -> bytes | None:
    """One line from a pipe (``b""`` at end of file), or None if none came within ``timeout``
    seconds: a blocking wait with a deadline, no polling."""
    readable, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if readable else None


class NodeProcess:
    # What runs the node (after the interpreter); a test's own launcher may wrap it.
    command: tuple[str, ...] = ("-m", "broker", "run")

    def __init__(self, workdir: Path, *, server_name: str = "", engine: str = "sqlite",
                 dsn: str = "", overrides: dict[str, Any] | None = None,
                 federation: bool = False) -> None:
        """``federation=True``: a second, TLS listener serves the Server-Server API and the
        server name is ``localhost:<that port>`` (peers are allowed with :meth:`allow`)."""
        self.workdir = workdir
        self.port = free_port()
        self.federation_port = free_port() if federation else None
        if federation:
            server_name = server_name or f"127.0.0.1:{self.federation_port}"
        self.server_name = server_name or f"node{self.port}.test"
        self.config_path = workdir / "homeserver.yaml"
        write_initial_config(
            config_path=self.config_path, server_name=self.server_name, port=self.port,
            bind_address="127.0.0.1", data_dir="data", database_engine=engine,
            database_dsn=dsn, enable_registration=True, overwrite=True,
            federation_port=self.federation_port, tls_self_signed=federation)
        config = yaml.safe_load(self.config_path.read_text())
        config["rate_limits"]["enabled"] = False
        if federation:
            config["federation"] = {"allow_private_addresses": True, "verify_tls": False,
                                    "allow_list": []}
        for key, value in (overrides or {}).items():
            target = config
            *parents, last = key.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[last] = value
        self.config_path.write_text(yaml.safe_dump(config))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "node.log"

    def allow(self, *peers: NodeProcess) -> NodeProcess:
        """Add peers to this node's federation allow-list (before start)."""
        return self.allow_servers(*(p.server_name for p in peers))

    def allow_servers(self, *server_names: str) -> NodeProcess:
        config = yaml.safe_load(self.config_path.read_text())
        allow = config.setdefault("federation", {}).setdefault("allow_list", [])
        allow.extend(name for name in server_names if name not in allow)
        self.config_path.write_text(yaml.safe_dump(config))
        return self

    def start(self, timeout: float = 20.0) -> NodeProcess:
        """Start the node and wait (a blocking read) for its word that it listens."""
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        ready_read, ready_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, *self.command, "--config", str(self.config_path),
                 "--ready-fd", str(ready_write)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                pass_fds=(ready_write,))
        finally:
            os.close(ready_write)
        with open(ready_read, "rb") as ready:
            line = read_line_within(ready, timeout)
        if line is None:
            raise RuntimeError(f"node did not start in {timeout}s:\n{self.log()}")
        if line != b"ready\n":  # end of file: the node exited without listening
            self.process.wait(10)
            raise RuntimeError(f"node exited early:\n{self.log()}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Stop the node at once (SIGKILL), as a crash or a power cut would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self) -> Client:
        return Client(self.base_url)

    def register(self, localpart: str | None = None, password: str = "correct horse 1") -> Client:
        """A new account on this node, logged in."""
        client = self.client()
        localpart = localpart or "u" + uuid.uuid4().hex[:10]
        body = client.post("/_matrix/client/v3/register", {
            "username": localpart, "password": password, "auth": {"type": "m.login.dummy"}})
        assert "access_token" in body, body
        client.token = body["access_token"]
        client.user_id = body["user_id"]
        client.device_id = body["device_id"]
        return client

    def admin(self) -> Client:
        """A new node admin, created with ``broker user add --admin`` and logged in."""
        localpart = "admin" + uuid.uuid4().hex[:8]
        done = subprocess.run(
            [sys.executable, "-m", "broker", "user", "add", "--config", str(self.config_path),
             "--user", localpart, "--password", "admin pass 1", "--admin"],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
            timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        admin = self.client()
        body = admin.post("/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
            "password": "admin pass 1"})
        assert admin.status == 200, body
        admin.token, admin.user_id = body["access_token"], body["user_id"]
        return admin


class _SourceAddressAdapter(HTTPAdapter):
    """Connections from a chosen local address."""

    def __init__(self, host: str) -> None:
        self._source = (host, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


class Client:
    """Raw JSON over HTTP; methods return the parsed body and keep the last status."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 source_host: str | None = None) -> None:
        """``source_host``: connect from this local address (e.g. another loopback one)."""
        self.base_url = base_url
        self.token = token
        self.user_id = ""
        self.device_id = ""
        self.status = 0
        self.session = requests.Session()
        if source_host is not None:
            self.session.mount("http://", _SourceAddressAdapter(source_host))

    def request(self, method: str, path: str, body: Any = None, *, raw: Any = None,
                headers: dict[str, str] | None = None, params: dict[str, Any] | None = None,
                timeout: float = 30) -> Any:
        all_headers = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        response = self.session.request(
            method, self.base_url + path, json=body if raw is None else None, data=raw,
            headers=all_headers, params=params, timeout=timeout)
        self.status = response.status_code
        self.last_response = response
        try:
            return response.json()
        except ValueError:
            return response.content

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def begin_get(self, path: str, params: dict[str, Any] | None = None) -> PendingRequest:
        """Send a GET (a long-poll, say) and return without waiting for the answer."""
        query = f"?{urlencode(params)}" if params else ""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return PendingRequest(self.base_url, path + query, headers)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, body if body is not None else {}, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, body if body is not None else {}, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("DELETE", path, body, **kwargs)


class PendingRequest:
    """A request already written to its socket whose answer is read later: ``answered`` looks
    (without waiting) whether the node has begun to answer, ``body`` waits for the answer."""

    def __init__(self, base_url: str, target: str, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(url.hostname or "", url.port)
        # Returns once the request is in the socket: what the test sends next comes after it.
        self._connection.request("GET", target, headers=headers)
        self.status = 0

    def answered(self) -> bool:
        sock = self._connection.sock
        return sock is None or bool(select.select([sock], [], [], 0)[0])

    def body(self, timeout: float) -> Any:
        """The parsed answer; socket.timeout (TimeoutError) if none comes within ``timeout``."""
        assert self._connection.sock is not None
        self._connection.sock.settimeout(timeout)
        try:
            response = self._connection.getresponse()
            self.status = response.status
            content = response.read()
        finally:
            self._connection.close()
        try:
            return json.loads(content)
        except ValueError:
            return content


@contextmanager
def node_on_engine(engine: str, workdir: Path, **options: Any) -> Iterator[NodeProcess]:
    """A running node on ``engine`` ("sqlite", or "postgres" in a fresh database that is
    dropped afterwards; skips the test without a PostgreSQL server); stopped on exit."""
    from tests.storage_helpers import (
        POSTGRES_ENV,
        POSTGRES_SKIP,
        create_postgres_database,
        drop_postgres_database,
    )

    dsn = name = ""
    if engine == "postgres":
        if not os.environ.get(POSTGRES_ENV):
            import pytest

            pytest.skip(POSTGRES_SKIP)
        dsn, name = create_postgres_database()
    node = NodeProcess(workdir, engine=engine, dsn=dsn, **options)
    try:
        yield node.start()
    finally:
        node.stop()
        if name:
            drop_postgres_database(name)


@contextmanager
def federated_nodes(tmp_path_factory: Any, count: int = 2, prefix: str = "fed",
                    **options: Any) -> Iterator[list[NodeProcess]]:
    """``count`` running nodes that federate with each other (TLS on loopback, each allowing
    the others); stopped on exit.  ``options`` go to every NodeProcess."""
    nodes = [NodeProcess(Path(tmp_path_factory.mktemp(f"{prefix}_{i}")), federation=True,
                         **options) for i in range(count)]
    for node in nodes:
        node.allow(*(other for other in nodes if other is not node))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
