"""Another server's media for local users, across two real nodes of ours (both engines): node
B's users download and thumbnail node A's media through A's federation media endpoints;
servers outside B's allow-list are refused, an unreachable one is 502, content over B's upload
limit is 502 M_TOO_LARGE, and nobody without a token gets remote media through B."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.node_harness import NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.test_media_api import mxc_path, upload

MEDIA = "/_matrix/client/v1/media"
UNREACHABLE = "127.0.0.1:1"
B_LIMIT = 4096


@pytest.fixture(scope="module", params=ENGINES)
def pair(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with two_nodes(request.param, tmp_path_factory, "remote_media", {},
                   also_allowed=(UNREACHABLE,),
                   b_overrides={"limits.max_upload_bytes": B_LIMIT}) as nodes:
        yield nodes


def test_a_local_user_downloads_another_servers_media(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    mxc = mxc_path(upload(a.register(), b"from node A", "text/plain", "a.txt"))
    bob = b.register()
    body = bob.get(f"{MEDIA}/download/{mxc}")
    assert bob.status == 200, body
    assert body == b"from node A"
    assert bob.last_response.headers["Content-Type"].startswith("text/plain")
    assert "a.txt" in bob.last_response.headers["Content-Disposition"]
    again = bob.get(f"{MEDIA}/download/{mxc}/renamed.txt")
    assert bob.status == 200 and again == b"from node A"
    assert "renamed.txt" in bob.last_response.headers["Content-Disposition"]


def test_a_local_user_gets_a_thumbnail_of_another_servers_image(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    image = io.BytesIO()
    Image.new("RGB", (300, 300), "blue").save(image, "PNG")
    mxc = mxc_path(upload(a.register(), image.getvalue(), "image/png"))
    bob = b.register()
    body = bob.get(f"{MEDIA}/thumbnail/{mxc}", params={"width": 32, "height": 32,
                                                         "method": "crop"})
    assert bob.status == 200, body
    with Image.open(io.BytesIO(body)) as thumbnail:
        assert thumbnail.size == (32, 32)


def _error_for_user_of(node: NodeProcess, mxc: str) -> tuple[int, str]:
    """What a user of ``node`` is answered for ``mxc``'s download: status and errcode."""
    user = node.register()
    body = user.get(f"{MEDIA}/download/{mxc}")
    return user.status, body.get("errcode", "") if isinstance(body, dict) else ""


def test_unknown_remote_media_is_not_found(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    assert _error_for_user_of(b, f"{a.server_name}/NoSuchMediaHere") == (404, "M_NOT_FOUND")


def test_remote_content_over_the_upload_limit_is_too_large(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    mxc = mxc_path(upload(a.register(), b"x" * (B_LIMIT + 1), "application/octet-stream"))
    assert _error_for_user_of(b, mxc) == (502, "M_TOO_LARGE")


def test_an_unreachable_server_is_a_bad_gateway(pair: tuple[NodeProcess, NodeProcess]) -> None:
    assert _error_for_user_of(pair[1], f"{UNREACHABLE}/SomeMediaId") == (502, "M_UNKNOWN")


def test_a_server_outside_the_allow_list_is_refused(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    assert _error_for_user_of(pair[1], "elsewhere.test/SomeMediaId") == (403, "M_FORBIDDEN")


def test_remote_media_is_not_served_without_a_token(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    mxc = mxc_path(upload(a.register(), b"for users only", "text/plain"))
    anonymous = b.client()
    body = anonymous.get(f"/_matrix/media/v3/download/{mxc}")
    assert (anonymous.status, body["errcode"]) == (404, "M_NOT_FOUND")
    body = anonymous.get(f"{MEDIA}/download/{mxc}")
    assert anonymous.status == 401, body
