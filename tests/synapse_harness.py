"""A real Synapse homeserver for interoperability tests, in its own process and virtualenv.

Tests find Synapse through ``BROKER_SYNAPSE_PYTHON`` (a Python interpreter with the
``matrix-synapse`` package installed; ``scripts/run-tests`` makes one); without it they skip with that
reason.  Synapse gets a TLS federation listener with a self-signed certificate, trusts no
notary, federates only with the servers a test allows, and may reach loopback addresses.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from broker.tls import generate_self_signed
from tests.node_harness import Client, free_port

SYNAPSE_ENV = "BROKER_SYNAPSE_PYTHON"
SYNAPSE_SKIP = (f"Synapse interoperability tests need {SYNAPSE_ENV}: a python with "
                "matrix-synapse installed (scripts/run-tests creates one)")


def wait_for_notify_ready(notify: socket.socket, process: subprocess.Popen[bytes],
                          timeout: float) -> str:
    """Block until ``process`` sends ``READY=1`` to ``notify`` ("ready"), exits ("exited") or
    ``timeout`` seconds pass ("timeout"): one select over the socket and a pidfd."""
    deadline = time.monotonic() + timeout
    exited = os.pidfd_open(process.pid)
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([notify, exited], [], [], remaining)
            if notify in readable and b"READY=1" in notify.recv(4096).split(b"\n"):
                return "ready"
            if exited in readable:
                return "exited"
        return "timeout"
    finally:
        os.close(exited)


class SynapseProcess:
    def __init__(self, workdir: Path, python: str) -> None:
        self.workdir = workdir
        self.python = python
        self.port = free_port()
        self.federation_port = free_port()
        self.server_name = f"127.0.0.1:{self.federation_port}"
        self.config_path = workdir / "homeserver.yaml"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "synapse.out"
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [python, "-m", "synapse.app.homeserver", "--generate-config",
             "--server-name", self.server_name, "--config-path", str(self.config_path),
             "--data-directory", str(workdir / "data"), "--report-stats=no"],
            check=True, capture_output=True, cwd=workdir, timeout=120)
        cert, key = workdir / "tls.crt", workdir / "tls.key"
        generate_self_signed(cert, key, "127.0.0.1")
        config = yaml.safe_load(self.config_path.read_text())
        config.update({
            "listeners": [
                {"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http",
                 "tls": False, "resources": [{"names": ["client"], "compress": False}]},
                {"port": self.federation_port, "bind_addresses": ["127.0.0.1"],
                 "type": "http", "tls": True,
                 "resources": [{"names": ["federation"], "compress": False}]},
            ],
            "tls_certificate_path": str(cert),
            "tls_private_key_path": str(key),
            "federation_verify_certificates": False,
            "trusted_key_servers": [],
            "ip_range_blacklist": [],
            "ip_range_whitelist": ["127.0.0.0/8"],
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "federation_domain_whitelist": [],
            "rc_message": {"per_second": 1000, "burst_count": 1000},
            "rc_joins": {"local": {"per_second": 1000, "burst_count": 1000},
                         "remote": {"per_second": 1000, "burst_count": 1000}},
            "rc_registration": {"per_second": 1000, "burst_count": 1000},
            "rc_login": {"address": {"per_second": 1000, "burst_count": 1000},
                         "account": {"per_second": 1000, "burst_count": 1000}},
            "rc_invites": {"per_room": {"per_second": 1000, "burst_count": 1000},
                           "per_user": {"per_second": 1000, "burst_count": 1000}},
            "suppress_key_server_warning": True,
        })
        self._config = config
        self._write()

    def _write(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self._config))

    def allow(self, *server_names: str) -> SynapseProcess:
        self._config["federation_domain_whitelist"].extend(server_names)
        self._write()
        return self

    def start(self, timeout: float = 90.0) -> SynapseProcess:
        """Start Synapse and wait for its systemd-style ``READY=1`` (sent once it listens, to
        the datagram socket named by ``NOTIFY_SOCKET``) or its exit; no polling."""
        log = open(self.log_path, "ab")
        notify_path = self.workdir / "notify.sock"
        notify_path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(notify_path))
            env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
            env.pop("PYTHONPATH", None)
            self.process = subprocess.Popen(
                [self.python, "-m", "synapse.app.homeserver", "--config-path",
                 str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=env)
            outcome = wait_for_notify_ready(notify, self.process, timeout)
        if outcome == "exited":
            raise RuntimeError(f"synapse exited early:\n{self.log()}")
        if outcome == "timeout":
            raise RuntimeError(f"synapse did not start in {timeout}s:\n{self.log()}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        hs_log = self.workdir / "homeserver.log"
        if hs_log.exists():
            text += "\n--- homeserver.log ---\n" + hs_log.read_text(errors="replace")[-20000:]
        return text[-30000:]

    def register(self, localpart: str | None = None, password: str = "correct horse 1") -> Client:
        import uuid

        client = Client(self.base_url)
        localpart = localpart or "s" + uuid.uuid4().hex[:10]
        body: Any = client.post("/_matrix/client/v3/register", {
            "username": localpart, "password": password,
            "auth": {"type": "m.login.dummy"}, "inhibit_login": False})
        if "access_token" not in body and "session" in body:
            body = client.post("/_matrix/client/v3/register", {
                "username": localpart, "password": password,
                "auth": {"type": "m.login.dummy", "session": body["session"]}})
        assert "access_token" in body, body
        client.token = body["access_token"]
        client.user_id = body["user_id"]
        client.device_id = body["device_id"]
        return client
