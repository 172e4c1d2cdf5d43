"""The content repository over HTTP: upload, download, thumbnails, config and async uploads."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.node_harness import Client, NodeProcess

UPLOAD = "/_matrix/media/v3/upload"
AUTHED = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"


@pytest.fixture(scope="module")
def small_node(tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A node that accepts uploads of at most 2048 bytes."""
    running = NodeProcess(tmp_path_factory.mktemp("smallmedia"),
                          overrides={"limits.max_upload_bytes": 2048}).start()
    try:
        yield running
    finally:
        running.stop()


def upload(client: Client, data: bytes, content_type: str = "application/octet-stream",
           filename: str | None = None) -> str:
    body = client.post(UPLOAD, raw=data, headers={"Content-Type": content_type},
                       params={"filename": filename} if filename else None)
    assert client.status == 200, body
    return str(body["content_uri"])


def mxc_path(uri: str) -> str:
    assert uri.startswith("mxc://")
    return uri[len("mxc://"):]


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def test_upload_and_authenticated_download_round_trip(any_node: NodeProcess) -> None:
    alice = any_node.register()
    data = os.urandom(5000)
    uri = upload(alice, data, "image/png", "holiday photo.png")
    assert uri.startswith(f"mxc://{any_node.server_name}/")
    body = alice.get(f"{AUTHED}/download/{mxc_path(uri)}")
    assert alice.status == 200
    assert body == data
    headers = alice.last_response.headers
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == 'inline; filename="holiday photo.png"'


def test_large_upload_streams_back_intact(node: NodeProcess) -> None:
    alice = node.register()
    data = os.urandom(3 * 1024 * 1024 + 17)
    uri = upload(alice, data)
    assert alice.get(f"{AUTHED}/download/{mxc_path(uri)}") == data
    assert alice.last_response.headers["Content-Length"] == str(len(data))


def test_authenticated_download_requires_a_token(node: NodeProcess) -> None:
    uri = upload(node.register(), b"secret")
    anonymous = node.client()
    body = anonymous.get(f"{AUTHED}/download/{mxc_path(uri)}")
    assert anonymous.status == 401
    assert body["errcode"] == "M_MISSING_TOKEN"


def test_upload_requires_a_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.post(UPLOAD, raw=b"x", headers={"Content-Type": "text/plain"})
    assert anonymous.status == 401
    assert body["errcode"] == "M_MISSING_TOKEN"


def test_legacy_download_works_without_a_token(node: NodeProcess) -> None:
    uri = upload(node.register(), b"hello", "text/plain", "hello.txt")
    anonymous = node.client()
    assert anonymous.get(f"{LEGACY}/download/{mxc_path(uri)}") == b"hello"
    assert anonymous.status == 200


def test_download_carries_the_sandbox_headers(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"<script>alert(1)</script>", "text/html", "page.html")
    alice.get(f"{AUTHED}/download/{mxc_path(uri)}")
    headers = alice.last_response.headers
    assert headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert headers["Content-Security-Policy"].startswith("sandbox;")
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_download_with_a_file_name_overrides_the_uploaded_one(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"abc", "text/plain", "original.txt")
    alice.get(f"{AUTHED}/download/{mxc_path(uri)}/renamed.txt")
    assert alice.last_response.headers["Content-Disposition"] == 'inline; filename="renamed.txt"'


def test_upload_without_filename_has_no_filename_in_disposition(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"abc", "application/zip")
    alice.get(f"{AUTHED}/download/{mxc_path(uri)}")
    assert alice.last_response.headers["Content-Disposition"] == "attachment"


def test_upload_without_content_type_is_served_as_octet_stream(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(UPLOAD, raw=b"raw bytes", headers={"Content-Type": ""})
    alice.get(f"{AUTHED}/download/{mxc_path(body['content_uri'])}")
    assert alice.last_response.headers["Content-Type"] == "application/octet-stream"


def test_head_download_sends_headers_without_body(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"0123456789", "text/plain")
    response = alice.session.head(f"{node.base_url}{AUTHED}/download/{mxc_path(uri)}",
                                  headers={"Authorization": f"Bearer {alice.token}"})
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "10"
    assert response.content == b""


def test_unknown_media_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"{AUTHED}/download/{node.server_name}/doesNotExist123")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_media_of_a_server_outside_the_federation_is_forbidden(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"abc")
    media_id = mxc_path(uri).split("/", 1)[1]
    body = alice.get(f"{AUTHED}/download/other.example/{media_id}")
    assert (alice.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_media_id_with_path_characters_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"{AUTHED}/download/{node.server_name}/..%2F..%2Fbroker.db")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_upload_filename_with_control_characters_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.post(UPLOAD, raw=b"x", params={"filename": "a\r\nb.txt"})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_crop_thumbnail_of_a_png_has_the_requested_size(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, png((640, 480)), "image/png")
    body = alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}",
                     params={"width": 96, "height": 96, "method": "crop"})
    assert alice.status == 200
    assert alice.last_response.headers["Content-Type"] == "image/png"
    assert alice.last_response.headers["Content-Disposition"].startswith("inline")
    assert Image.open(io.BytesIO(body)).size == (96, 96)


def test_scale_thumbnail_fits_the_requested_box(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, png((1000, 500)), "image/png")
    body = alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}",
                     params={"width": 320, "height": 240, "method": "scale"})
    assert alice.status == 200
    assert Image.open(io.BytesIO(body)).size == (320, 160)


def test_thumbnail_is_cached_on_disk_and_served_again(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, png((300, 300)), "image/png")
    params = {"width": 32, "height": 32, "method": "crop"}
    first = alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}", params=params)
    cached = list((node.workdir / "data" / "media" / "local_thumbnails").rglob("32-32-crop.png"))
    assert cached
    assert alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}", params=params) == first


def test_legacy_thumbnail_works_without_a_token(node: NodeProcess) -> None:
    uri = upload(node.register(), png((200, 200)), "image/png")
    anonymous = node.client()
    body = anonymous.get(f"{LEGACY}/thumbnail/{mxc_path(uri)}",
                         params={"width": 50, "height": 50, "method": "crop"})
    assert anonymous.status == 200
    assert Image.open(io.BytesIO(body)).size == (50, 50)


def test_thumbnail_of_non_image_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"just text", "text/plain")
    body = alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}", params={"width": 32, "height": 32})
    assert (alice.status, body["errcode"]) == (400, "M_UNKNOWN")


def test_thumbnail_without_width_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, png((64, 64)), "image/png")
    body = alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}", params={"height": 32})
    assert (alice.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_thumbnail_with_unknown_method_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, png((64, 64)), "image/png")
    body = alice.get(f"{AUTHED}/thumbnail/{mxc_path(uri)}",
                     params={"width": 32, "height": 32, "method": "stretch"})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_thumbnail_of_unknown_media_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"{AUTHED}/thumbnail/{node.server_name}/doesNotExist123",
                     params={"width": 32, "height": 32})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_config_reports_the_upload_limit(node: NodeProcess) -> None:
    alice = node.register()
    assert alice.get(f"{AUTHED}/config") == {"m.upload.size": 52_428_800}
    assert alice.get(f"{LEGACY}/config") == {"m.upload.size": 52_428_800}


def test_config_requires_a_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = anonymous.get(f"{AUTHED}/config")
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_oversized_upload_is_too_large(small_node: NodeProcess) -> None:
    alice = small_node.register()
    body = alice.post(UPLOAD, raw=b"x" * 4096, headers={"Content-Type": "text/plain"})
    assert (alice.status, body["errcode"]) == (413, "M_TOO_LARGE")
    assert alice.get(f"{AUTHED}/config") == {"m.upload.size": 2048}
    upload(alice, b"x" * 2048, "text/plain")


def test_failed_upload_leaves_no_file_behind(small_node: NodeProcess) -> None:
    alice = small_node.register()
    store = small_node.workdir / "data" / "media"
    before = sorted(p for p in store.rglob("*") if p.is_file()) if store.exists() else []
    alice.post(UPLOAD, raw=b"x" * 4096, headers={"Content-Type": "text/plain"})
    after = sorted(p for p in store.rglob("*") if p.is_file()) if store.exists() else []
    assert after == before


# -- asynchronous upload (create, then PUT) ------------------------------------------------------
def create(client: Client) -> str:
    body = client.post("/_matrix/media/v1/create", {})
    assert client.status == 200, body
    assert body["unused_expires_at"] > time.time() * 1000
    return str(body["content_uri"])


def test_created_media_id_accepts_one_upload(node: NodeProcess) -> None:
    alice = node.register()
    uri = create(alice)
    path = f"{UPLOAD}/{mxc_path(uri)}"
    assert alice.put(path, raw=b"later bytes", headers={"Content-Type": "text/plain"}) == {}
    assert alice.get(f"{AUTHED}/download/{mxc_path(uri)}") == b"later bytes"
    body = alice.put(path, raw=b"again", headers={"Content-Type": "text/plain"})
    assert (alice.status, body["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")


def test_another_user_cannot_fill_a_created_media_id(node: NodeProcess) -> None:
    uri = create(node.register())
    bob = node.register()
    body = bob.put(f"{UPLOAD}/{mxc_path(uri)}", raw=b"x", headers={"Content-Type": "text/plain"})
    assert (bob.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_upload_to_a_media_id_never_created_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(f"{UPLOAD}/{node.server_name}/neverCreated123", raw=b"x",
                     headers={"Content-Type": "text/plain"})
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_download_of_created_but_empty_media_times_out(node: NodeProcess) -> None:
    alice = node.register()
    uri = create(alice)
    body = alice.get(f"{AUTHED}/download/{mxc_path(uri)}", params={"timeout_ms": 0})
    assert (alice.status, body["errcode"]) == (504, "M_NOT_YET_UPLOADED")


def test_download_waits_for_a_pending_upload(node: NodeProcess) -> None:
    alice = node.register()
    uri = create(alice)
    waiting = alice.begin_get(f"{AUTHED}/download/{mxc_path(uri)}", {"timeout_ms": 20_000})
    assert not waiting.answered()
    alice.put(f"{UPLOAD}/{mxc_path(uri)}", raw=b"arrived", headers={"Content-Type": "text/plain"})
    # Answered by the upload, not by the end of the 20 s wait.
    assert waiting.body(timeout=10) == b"arrived"


def test_media_store_lives_where_configured(node: NodeProcess) -> None:
    alice = node.register()
    uri = upload(alice, b"where am i")
    media_id = mxc_path(uri).split("/", 1)[1]
    expected = Path(node.workdir, "data", "media", "local_content", media_id[:2], media_id[2:4],
                    media_id[4:])
    assert expected.read_bytes() == b"where am i"
