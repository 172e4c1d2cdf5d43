"""``broker user add`` creates an account that can then log in over the Client-Server API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.node_harness import REPO, NodeProcess


def user_add(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "broker", "user", "add", "--config", str(node.config_path), *args],
        capture_output=True, text=True, env=env, timeout=60, check=False)


def test_user_added_by_the_admin_command_can_log_in(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, overrides={"registration.enabled": False})
    done = user_add(node, "--user", "officer", "--password", "s3cret pass")
    assert done.returncode == 0, done.stderr
    assert f"@officer:{node.server_name}" in done.stdout
    node.start()
    try:
        client = node.client()
        body = client.post("/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "officer"},
            "password": "s3cret pass"})
        assert client.status == 200, body
        assert body["user_id"] == f"@officer:{node.server_name}"
        client.token = body["access_token"]
        assert client.get("/_matrix/client/v3/account/whoami")["user_id"] == body["user_id"]
    finally:
        node.stop()


def test_admin_command_refuses_an_existing_user(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path)
    assert user_add(node, "--user", "officer", "--password", "s3cret pass").returncode == 0
    again = user_add(node, "--user", "officer", "--password", "other pass")
    assert again.returncode == 1
    assert "already exists" in again.stderr
