"""Response headers for served media: disposition, content type hygiene and browser sandboxing.

The spec lists the content types that are safe to serve ``inline`` (everything else is an
``attachment``), recommends a sandboxing Content-Security-Policy and asks for
``Cross-Origin-Resource-Policy: cross-origin`` so web clients can embed media.
"""

from __future__ import annotations

import re
from urllib.parse import quote

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# spec: client-server-api "Serving inline content"
INLINE_CONTENT_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
    "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf;"
        " style-src 'unsafe-inline'; object-src 'self';"
    ),
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
}

MAX_FILENAME_LENGTH = 255
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\r\n]*\"))*$")
# Characters that may stand unescaped inside a quoted-string filename (printable ASCII).
_PLAIN_FILENAME = re.compile(r"^[\x20-\x7e]+$")


def normalise_content_type(value: str | None) -> str:
    """The upload's declared content type if it is a well-formed media type, else the default.

    The spec allows serving a type "reasonably close" to the uploaded one; a malformed header is
    treated like a missing one."""
    if value is None:
        return DEFAULT_CONTENT_TYPE
    value = value.strip()
    if not value or len(value) > 255 or not _CONTENT_TYPE.match(value):
        return DEFAULT_CONTENT_TYPE
    return value


def base_type(content_type: str) -> str:
    """``image/png`` for ``Image/PNG; charset=x``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_inline_safe(content_type: str) -> bool:
    return base_type(content_type) in INLINE_CONTENT_TYPES


def check_filename(name: str) -> str | None:
    """Why ``name`` cannot be a file name (None when it can): no control characters, no path
    separators, at most 255 characters."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_FILENAME_LENGTH:
        return f"must be at most {MAX_FILENAME_LENGTH} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "must not contain control characters"
    if "/" in name or "\\" in name:
        return "must not contain path separators"
    return None


def content_disposition(content_type: str, filename: str | None, *, inline: bool | None = None) -> str:
    """``inline`` or ``attachment`` (from the content type unless forced), with the file name
    encoded per RFC 6266: a quoted ``filename`` for printable ASCII, else ``filename*`` (RFC 8187
    UTF-8 percent-encoding)."""
    disposition = "inline" if (is_inline_safe(content_type) if inline is None else inline) \
        else "attachment"
    if not filename:
        return disposition
    if _PLAIN_FILENAME.match(filename):
        escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'{disposition}; filename="{escaped}"'
    return f"{disposition}; filename*=utf-8''{quote(filename, safe='')}"


def media_headers(content_type: str, filename: str | None, *, inline: bool | None = None
                  ) -> dict[str, str]:
    """Every header a media response carries besides Content-Type and Content-Length."""
    return {"Content-Disposition": content_disposition(content_type, filename, inline=inline),
            **SECURITY_HEADERS}
