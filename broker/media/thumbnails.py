"""Thumbnail sizing (the spec's ``crop`` and ``scale``) and rendering with Pillow.

Per the spec: ``scale`` keeps the image's aspect ratio and fits it in the requested box (one side
equal to the request, the client letterboxes); ``crop`` returns the requested aspect ratio at the
requested size, cutting the centre out of the image.  Images are never upscaled: when the source
is no bigger than the request the original is served instead (:func:`make_thumbnail` returns None),
unless it is animated and the client did not ask for animation, or its type is not one a
thumbnail may have; then a static image at the source's own size is rendered.

Rendering is blocking; callers run it on a thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from broker.media.headers import base_type

METHODS = ("crop", "scale")
# Types we try to decode; anything else "cannot be thumbnailed".
SOURCE_TYPES = frozenset({"image/jpeg", "image/png", "image/apng", "image/gif", "image/webp",
                          "image/bmp"})
# Types the spec allows a thumbnail response to have, so an original may be served as-is.
SERVABLE_TYPES = frozenset({"image/jpeg", "image/png", "image/apng", "image/gif", "image/webp"})
# Decoding cost grows with pixels, not bytes: refuse sources past this (413 M_TOO_LARGE).
MAX_SOURCE_PIXELS = 40_000_000
JPEG_QUALITY = 85


class CannotThumbnail(Exception):
    """The content is not an image we can decode."""


class SourceTooLarge(Exception):
    """The image has too many pixels to thumbnail safely."""


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Plan:
    """Which part of the source to take (left, top, right, bottom) and the output size."""

    box: tuple[int, int, int, int]
    width: int
    height: int


def plan(src_w: int, src_h: int, req_w: int, req_h: int, method: str) -> Plan:
    """The crop box and output size for a request; never larger than the source."""
    if method == "scale":
        ratio = min(1.0, req_w / src_w, req_h / src_h)
        return Plan((0, 0, src_w, src_h), max(1, round(src_w * ratio)),
                    max(1, round(src_h * ratio)))
    if method != "crop":
        raise ValueError(f"unknown thumbnail method {method!r}")
    # The largest centred box with the requested aspect ratio ...
    if src_w * req_h > src_h * req_w:  # source is wider than requested: trim the sides
        box_w, box_h = max(1, round(src_h * req_w / req_h)), src_h
    else:  # source is taller: trim top and bottom
        box_w, box_h = src_w, max(1, round(src_w * req_h / req_w))
    left, top = (src_w - box_w) // 2, (src_h - box_h) // 2
    # ... shrunk to the request, or kept at its own size when it is smaller (no upscaling).
    ratio = min(1.0, req_w / box_w)
    return Plan((left, top, left + box_w, top + box_h), max(1, round(box_w * ratio)),
                max(1, round(box_h * ratio)))


def _encode(image: Image.Image, source_type: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if source_type == "image/jpeg":
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        return out.getvalue(), "image/jpeg"
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    image.save(out, "PNG", optimize=True)
    return out.getvalue(), "image/png"


def make_thumbnail(path: Path | BinaryIO, content_type: str, req_w: int, req_h: int, method: str,
                   *, animated: bool = False) -> Thumbnail | None:
    """A thumbnail of the image at ``path`` (or in a file object), or None when the original
    should be served."""
    source_type = base_type(content_type)
    if source_type not in SOURCE_TYPES:
        raise CannotThumbnail(f"cannot thumbnail {source_type}")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                raise SourceTooLarge(f"{image.width}x{image.height} is too many pixels")
            is_animated = bool(getattr(image, "is_animated", False))
            image.seek(0)
            frame = ImageOps.exif_transpose(image)
            src_w, src_h = frame.size
            if (src_w <= req_w and src_h <= req_h and source_type in SERVABLE_TYPES
                    and (animated or not is_animated)):
                return None
            chosen = plan(src_w, src_h, req_w, req_h, method)
            frame = frame.resize((chosen.width, chosen.height), Image.Resampling.LANCZOS,
                                 box=chosen.box)
            data, out_type = _encode(frame, source_type)
    except Image.DecompressionBombError as e:
        raise SourceTooLarge(str(e)) from e
    except (UnidentifiedImageError, OSError, ValueError, EOFError) as e:
        raise CannotThumbnail(str(e)) from e
    return Thumbnail(data, out_type, chosen.width, chosen.height)
