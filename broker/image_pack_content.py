"""An organisation's image pack as an admin sends it, checked and turned into the content of
an MSC2545 ``m.image_pack`` state event (the same content goes out under the unstable
``im.ponies.room_emotes`` that today's clients read)::

    {"images": {"<shortcode>": {"url": "mxc://...", "body"?, "info"?, "usage"?}},
     "pack": {"display_name"?, "avatar_url"?, "usage"?, "attribution"?}}

Every image (and the pack's avatar) is media of this node that exists: the admin uploads it
through the media API first.  An image's ``info`` gets the media's ``mimetype`` and ``size``
when the admin leaves them out.  A problem is a 400 naming the field (``M_BAD_JSON`` for a
wrong shape or unknown field, ``M_INVALID_PARAM`` for a value the node refuses).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from broker.admin.model import BadField, MissingField, check_body
from protocol.canonical import encode_canonical_json
from storage.media import MediaRecord

PACK_TYPES = ("m.image_pack", "im.ponies.room_emotes")  # stable, then unstable
USAGES = ("emoticon", "sticker")
PACK_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
MAX_SHORTCODE = 100
MAX_IMAGES = 300
MAX_TEXT = 200
MAX_ATTRIBUTION = 1000
# The content must leave room for the rest of the event within the spec's 65,536 bytes.
MAX_CONTENT_BYTES = 60_000
MXC = re.compile(r"mxc://(?P<server>[^/]+)/(?P<media_id>[A-Za-z0-9_\-]+)")

FindMedia = Callable[[str], Awaitable[MediaRecord | None]]


def check_pack_id(pack_id: str) -> str:
    if not PACK_ID.fullmatch(pack_id):
        raise BadField("pack_id", f"{pack_id!r} is not a pack ID (1 to 64 of A-Z, a-z, 0-9,"
                       " '.', '_' and '-')", errcode="M_INVALID_PARAM")
    return pack_id


def check_shortcode(shortcode: str) -> None:
    """A shortcode is what users type between colons: no whitespace, no colon, printable."""
    field = f"images.{shortcode}"
    if not shortcode or len(shortcode) > MAX_SHORTCODE:
        raise BadField(field, f"a shortcode is 1 to {MAX_SHORTCODE} characters",
                       errcode="M_INVALID_PARAM")
    if ":" in shortcode or any(c.isspace() for c in shortcode) or not shortcode.isprintable():
        raise BadField(field, f"{shortcode!r} is not a shortcode (no colons, whitespace or"
                       " control characters)", errcode="M_INVALID_PARAM")


class PackContent:
    """Checks pack bodies against the media of the node named ``server_name``."""

    def __init__(self, server_name: str, find_media: FindMedia) -> None:
        self.server_name = server_name
        self.find_media = find_media

    async def content(self, body: dict[str, Any]) -> dict[str, Any]:
        """The event content ``body`` describes; :class:`BadField` for the first problem."""
        check_body(body, ("images", "pack"), ("images",))
        images = body["images"]
        if not isinstance(images, dict):
            raise BadField("images", "must be an object of shortcode -> image")
        if not images:
            raise BadField("images", "a pack holds at least one image",
                           errcode="M_INVALID_PARAM")
        if len(images) > MAX_IMAGES:
            raise BadField("images", f"a pack holds at most {MAX_IMAGES} images (this one has"
                           f" {len(images)})", errcode="M_INVALID_PARAM")
        content: dict[str, Any] = {"images": {}}
        for shortcode, image in images.items():
            check_shortcode(shortcode)
            content["images"][shortcode] = await self._image(f"images.{shortcode}", image)
        pack = body.get("pack", {})
        if not isinstance(pack, dict):
            raise BadField("pack", "must be an object")
        content["pack"] = await self._pack(pack)
        size = len(encode_canonical_json(content))
        if size > MAX_CONTENT_BYTES:
            raise BadField("images", f"the pack is {size} bytes as an event; at most"
                           f" {MAX_CONTENT_BYTES} fit: split it into several packs",
                           errcode="M_INVALID_PARAM")
        return content

    async def _image(self, field: str, image: Any) -> dict[str, Any]:
        if not isinstance(image, dict):
            raise BadField(field, "must be an object with 'url'")
        for name in image:
            if name not in ("url", "body", "info", "usage"):
                raise BadField(f"{field}.{name}", "unknown field (expected one of: url, body,"
                               " info, usage)")
        if "url" not in image:
            raise MissingField(f"{field}.url")
        media = await self._media(f"{field}.url", image["url"])
        found: dict[str, Any] = {"url": image["url"]}
        if "body" in image:
            found["body"] = _text(f"{field}.body", image["body"], MAX_TEXT)
        info = image.get("info", {})
        if not isinstance(info, dict):
            raise BadField(f"{field}.info", "must be an object")
        found["info"] = {"mimetype": media.content_type, "size": media.size, **info}
        if "usage" in image:
            found["usage"] = _usage(f"{field}.usage", image["usage"])
        return found

    async def _pack(self, pack: dict[str, Any]) -> dict[str, Any]:
        check_body(pack, ("display_name", "avatar_url", "usage", "attribution"))
        found: dict[str, Any] = {}
        if "display_name" in pack:
            found["display_name"] = _text("pack.display_name", pack["display_name"], MAX_TEXT)
        if "avatar_url" in pack:
            await self._media("pack.avatar_url", pack["avatar_url"])
            found["avatar_url"] = pack["avatar_url"]
        if "usage" in pack:
            found["usage"] = _usage("pack.usage", pack["usage"])
        if "attribution" in pack:
            found["attribution"] = _text("pack.attribution", pack["attribution"],
                                         MAX_ATTRIBUTION)
        return found

    async def _media(self, field: str, url: Any) -> MediaRecord:
        if not isinstance(url, str):
            raise BadField(field, "must be an mxc:// URI")
        match = MXC.fullmatch(url)
        if match is None:
            raise BadField(field, f"{url!r} is not an mxc:// URI", errcode="M_INVALID_PARAM")
        if match["server"] != self.server_name:
            raise BadField(field, f"{url!r} is not media of this node: upload the image here"
                           " first", errcode="M_INVALID_PARAM")
        media = await self.find_media(match["media_id"])
        if media is None:
            raise BadField(field, f"no media {url!r} on this node (upload it first)",
                           errcode="M_INVALID_PARAM")
        return media


def _text(field: str, value: Any, maximum: int) -> str:
    if not isinstance(value, str):
        raise BadField(field, "must be a string")
    if len(value) > maximum:
        raise BadField(field, f"may be at most {maximum} characters", errcode="M_INVALID_PARAM")
    return value


def _usage(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadField(field, f"must be a list of: {', '.join(USAGES)}")
    if not value or len(set(value)) != len(value) or any(v not in USAGES for v in value):
        raise BadField(field, f"must list each of {', '.join(USAGES)} at most once, at least"
                       " one", errcode="M_INVALID_PARAM")
    return list(value)
