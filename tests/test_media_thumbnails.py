"""Thumbnail sizing and rendering (Pillow), and the headers served media carries."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from broker.media.headers import content_disposition, normalise_content_type
from broker.media.thumbnails import CannotThumbnail, make_thumbnail, plan


def write_image(path: Path, size: tuple[int, int], fmt: str = "PNG", **kwargs: object) -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path, fmt, **kwargs)
    return path


def test_scale_fits_the_box_keeping_aspect_ratio() -> None:
    chosen = plan(1000, 500, 320, 240, "scale")
    assert (chosen.width, chosen.height) == (320, 160)
    assert chosen.box == (0, 0, 1000, 500)


def test_crop_takes_the_centre_at_the_requested_aspect() -> None:
    chosen = plan(1000, 500, 96, 96, "crop")
    assert (chosen.width, chosen.height) == (96, 96)
    assert chosen.box == (250, 0, 750, 500)


def test_crop_never_upscales_a_small_source() -> None:
    chosen = plan(100, 50, 200, 200, "crop")
    assert (chosen.width, chosen.height) == (50, 50)


def test_scale_never_upscales() -> None:
    chosen = plan(100, 50, 200, 200, "scale")
    assert (chosen.width, chosen.height) == (100, 50)


def test_png_thumbnail_has_the_requested_crop_size(tmp_path: Path) -> None:
    source = write_image(tmp_path / "big.png", (640, 480))
    thumb = make_thumbnail(source, "image/png", 32, 32, "crop")
    assert thumb is not None and thumb.content_type == "image/png"
    assert Image.open(io.BytesIO(thumb.data)).size == (32, 32)


def test_jpeg_source_gives_a_jpeg_thumbnail(tmp_path: Path) -> None:
    source = write_image(tmp_path / "big.jpg", (800, 400), "JPEG")
    thumb = make_thumbnail(source, "image/jpeg", 320, 240, "scale")
    assert thumb is not None and thumb.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.data)).size == (320, 160)


def test_small_static_image_is_served_as_the_original(tmp_path: Path) -> None:
    source = write_image(tmp_path / "small.png", (20, 10))
    assert make_thumbnail(source, "image/png", 96, 96, "crop") is None


def test_small_animated_gif_is_flattened_unless_animation_is_asked_for(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    source = tmp_path / "anim.gif"
    frames[0].save(source, "GIF", save_all=True, append_images=frames[1:], duration=50)
    still = make_thumbnail(source, "image/gif", 96, 96, "scale")
    assert still is not None and still.content_type == "image/png"
    assert make_thumbnail(source, "image/gif", 96, 96, "scale", animated=True) is None


def test_bytes_that_are_not_an_image_cannot_be_thumbnailed(tmp_path: Path) -> None:
    source = tmp_path / "fake.png"
    source.write_bytes(b"this is not a png")
    with pytest.raises(CannotThumbnail):
        make_thumbnail(source, "image/png", 32, 32, "crop")


def test_non_image_type_cannot_be_thumbnailed(tmp_path: Path) -> None:
    source = write_image(tmp_path / "x.png", (64, 64))
    with pytest.raises(CannotThumbnail):
        make_thumbnail(source, "application/pdf", 32, 32, "crop")


def test_safe_types_are_inline_with_quoted_filename() -> None:
    assert content_disposition("image/png", 'my "cat".png') == \
        'inline; filename="my \\"cat\\".png"'


def test_unsafe_types_are_attachments() -> None:
    assert content_disposition("text/html", "page.html") == 'attachment; filename="page.html"'
    assert content_disposition("image/svg+xml", None) == "attachment"


def test_non_ascii_filename_uses_rfc_8187_encoding() -> None:
    assert content_disposition("text/plain; charset=utf-8", "résumé.txt") == \
        "inline; filename*=utf-8''r%C3%A9sum%C3%A9.txt"


def test_malformed_content_type_falls_back_to_octet_stream() -> None:
    assert normalise_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    assert normalise_content_type("not a type") == "application/octet-stream"
    assert normalise_content_type(None) == "application/octet-stream"
