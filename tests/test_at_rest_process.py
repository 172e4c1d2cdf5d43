"""Encryption at rest in a real node process on each engine: uploaded files are sealed in the
media folder and download (and thumbnail) as they were sent; ``broker keys at-rest generate``
writes a key file only its owner reads; ``broker run`` with the wrong key exits with one line;
``broker keys at-rest rotate`` killed mid-way goes on when run again, beside the running node."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from PIL import Image

from broker.at_rest_keys import read_key_file
from broker.cli import main
from storage.at_rest import DataKey
from tests.at_rest_helpers import MARKER, key_file
from tests.node_harness import REPO, NodeProcess, node_on_engine
from tests.room_helpers import V3, create_room, send_text

UPLOAD = "/_matrix/media/v3/upload"
AUTHED = "/_matrix/client/v1/media"


@pytest.fixture(params=["sqlite", "postgres"])
def sealed_node(request: Any, tmp_path: Path) -> Iterator[NodeProcess]:
    path = key_file(tmp_path)
    with node_on_engine(request.param, tmp_path,
                        overrides={"at_rest.key_file": str(path)}) as node:
        yield node


def upload(node: NodeProcess, data: bytes, content_type: str) -> tuple[Any, str]:
    alice = node.register()
    body = alice.post(UPLOAD, raw=data, headers={"Content-Type": content_type})
    assert alice.status == 200, body
    return alice, str(body["content_uri"])[len("mxc://"):]


def media_files(node: NodeProcess) -> list[Path]:
    return [p for p in (node.workdir / "data" / "media").rglob("*") if p.is_file()]


def test_an_uploaded_file_is_sealed_on_disk_and_downloads_as_sent(
        sealed_node: NodeProcess) -> None:
    data = (MARKER.encode() + os.urandom(50)) * 12_000  # several sealed chunks
    alice, media = upload(sealed_node, data, "application/octet-stream")
    stored = media_files(sealed_node)
    assert stored and [p for p in stored if MARKER.encode() in p.read_bytes()] == []
    assert alice.get(f"{AUTHED}/download/{media}") == data
    assert alice.last_response.headers["Content-Length"] == str(len(data))


def test_a_sealed_image_thumbnails(sealed_node: NodeProcess) -> None:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 10, 10)).save(out, "PNG")
    alice, media = upload(sealed_node, out.getvalue(), "image/png")
    thumbnail = alice.get(f"{AUTHED}/thumbnail/{media}", params={
        "width": 32, "height": 32, "method": "scale"})
    assert alice.status == 200
    assert Image.open(io.BytesIO(thumbnail)).size[0] <= 32


def test_generate_writes_a_key_file_only_its_owner_reads(tmp_path: Path) -> None:
    config = tmp_path / "homeserver.yaml"
    assert main(["init", "--server-name", "keys.test", "--config", str(config)]) == 0
    out = tmp_path / "data" / "at_rest.keys"
    assert main(["keys", "at-rest", "generate", "--config", str(config), "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert main(["keys", "at-rest", "generate", "--config", str(config), "--out", str(out)]) == 1


def test_the_node_with_a_wrong_key_exits_with_one_clear_line(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, overrides={"at_rest.key_file": str(key_file(tmp_path))})
    node.start().stop()
    key_file(tmp_path, DataKey.generate())
    config = yaml.safe_load(node.config_path.read_text())
    assert config["at_rest"]["key_file"]
    run = subprocess.run(
        [sys.executable, "-m", "broker", "run", "--config", str(node.config_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ConfigError: at_rest: the at-rest keyring"
                                                   " lacks key"), run.stderr


def rotate_command(node: NodeProcess) -> list[str]:
    return [sys.executable, "-m", "broker", "keys", "at-rest", "rotate", "--config",
            str(node.config_path), "--batch", "2"]


def test_a_rotation_killed_mid_way_resumes_while_the_node_serves(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    node = NodeProcess(tmp_path, overrides={"at_rest.key_file": str(path)}).start()
    try:
        alice = node.register()
        room_id = create_room(alice)
        bodies = [f"{MARKER} {i}" for i in range(20)]
        for body in bodies:
            send_text(alice, room_id, body)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        first = subprocess.Popen(rotate_command(node), stdout=subprocess.PIPE, text=True,
                                 env=env, cwd=tmp_path)
        assert first.stdout is not None
        for line in first.stdout:  # nothing finishes before the node had time to reload
            if line.startswith("events.json:"):
                break
        first.kill()  # kill -9 between two batches, or inside one
        first.wait()
        assert len(read_key_file(path)) == 2
        resumed = subprocess.run(rotate_command(node), capture_output=True, text=True,
                                 env=env, cwd=tmp_path, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.startswith("resuming the rotation to key")
        assert len(read_key_file(path)) == 1
        assert timeline(alice, room_id) == bodies  # the node took up the new key file
        node.stop()
        node.start()
        assert timeline(alice, room_id) == bodies
    finally:
        node.stop()


def timeline(client: Any, room_id: str) -> list[str]:
    chunk = client.get(f"{V3}/rooms/{quote(room_id)}/messages",
                       params={"dir": "f", "limit": 100})["chunk"]
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]
