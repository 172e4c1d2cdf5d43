"""The federation media answer (spec: server-server-api "Content Repository"): a
``multipart/mixed`` body of exactly two parts, the media's metadata as JSON (``{}``: none is
defined yet) and then the content with its own Content-Type and Content-Disposition.

The content part is the local answer itself, still streamed from disk: only the few bytes
around it are added.
"""

from __future__ import annotations

import secrets
from typing import Any

from broker.raw_response import RawResponse

METADATA = b"{}"


def _parts(boundary: str, content_type: str, disposition: str | None) -> tuple[bytes, bytes]:
    headers = f"Content-Type: {content_type}\r\n"
    if disposition is not None:
        headers += f"Content-Disposition: {disposition}\r\n"
    head = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n").encode("ascii") + \
        METADATA + f"\r\n--{boundary}\r\n{headers}\r\n".encode("ascii")
    return head, f"\r\n--{boundary}--\r\n".encode("ascii")


def as_multipart(content: RawResponse) -> RawResponse:
    """``content`` (a local download or thumbnail) as the federation media answer."""
    boundary = secrets.token_hex(16)
    head, tail = _parts(boundary, content.content_type,
                        content.headers.get("Content-Disposition"))
    headers = {k: v for k, v in content.headers.items() if k != "Content-Disposition"}
    mixed = f"multipart/mixed; boundary={boundary}"
    inner = content.stream
    if inner is None:
        return RawResponse(head + content.body + tail, mixed, content.status, headers)

    async def stream(request: Any) -> None:
        request.write(head)
        await inner(request)
        request.write(tail)

    length = None if content.length is None else len(head) + content.length + len(tail)
    return RawResponse(b"", mixed, content.status, headers, stream=stream, length=length)
