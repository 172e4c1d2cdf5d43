"""This node's federation media endpoints, asked by a fake peer over TLS (a real node on each
engine): ``GET /_matrix/federation/v1/media/download/{mediaId}`` and ``/thumbnail/{mediaId}``
answer ``multipart/mixed`` (the metadata as JSON, then the content), only to signed requests
of allowed servers, and only for this node's media."""

from __future__ import annotations

import email
import email.policy
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.fake_peer import FED_V1
from tests.peer_env import ENGINES, Env, assert_error, peer_env
from tests.test_media_api import mxc_path, upload

CONTENT = b"a sealed file, served to another server"


@pytest.fixture(scope="module", params=ENGINES)
def env(request: Any, tmp_path_factory: Any) -> Iterator[Env]:
    with peer_env(tmp_path_factory.mktemp("federation_media"), request.param) as running:
        yield running


def _parts(response: Any) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    raw = f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode() + \
        response.content
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    return list(message.iter_parts())


def _uploaded(env: Env, data: bytes, content_type: str, filename: str | None = None) -> str:
    uri = upload(env.node.register(), data, content_type, filename)
    return mxc_path(uri).split("/", 1)[1]


def test_download_answers_the_metadata_then_the_content(env: Env) -> None:
    media_id = _uploaded(env, CONTENT, "text/plain", "note.txt")
    metadata, content = _parts(env.peer.request(env.node, "GET",
                                                f"{FED_V1}/media/download/{media_id}"))
    assert metadata.get_content_type() == "application/json"
    assert json.loads(metadata.get_payload(decode=True)) == {}
    assert content.get_content_type() == "text/plain"
    assert "note.txt" in content["Content-Disposition"]
    assert content.get_payload(decode=True) == CONTENT


def test_thumbnail_answers_a_scaled_image(env: Env) -> None:
    image = io.BytesIO()
    Image.new("RGB", (400, 200), "red").save(image, "PNG")
    media_id = _uploaded(env, image.getvalue(), "image/png")
    _, content = _parts(env.peer.request(
        env.node, "GET", f"{FED_V1}/media/thumbnail/{media_id}",
        params={"width": 40, "height": 40, "method": "scale"}))
    assert content.get_content_type() == "image/png"
    with Image.open(io.BytesIO(content.get_payload(decode=True))) as thumbnail:
        assert thumbnail.size == (40, 20)


def test_unknown_media_is_not_found(env: Env) -> None:
    assert_error(env.peer.request(env.node, "GET", f"{FED_V1}/media/download/NoSuchMedia"),
                 404, "M_NOT_FOUND")


def test_an_unsigned_request_is_refused(env: Env) -> None:
    media_id = _uploaded(env, CONTENT, "text/plain")
    assert_error(env.peer.request(env.node, "GET", f"{FED_V1}/media/download/{media_id}",
                                  authorization=""), 401, "M_UNAUTHORIZED")


def test_a_server_outside_the_allow_list_is_refused(env: Env) -> None:
    media_id = _uploaded(env, CONTENT, "text/plain")
    assert_error(env.denied.request(env.node, "GET", f"{FED_V1}/media/download/{media_id}"),
                 403, "M_FORBIDDEN")
