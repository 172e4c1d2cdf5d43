"""A response body that is not JSON (media downloads and thumbnails).

Services that serve bytes return it; the HTTP layer writes it out.  It lives outside
``broker.http`` so that those services need not import the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    """A non-JSON response body (media downloads).

    Big bodies need not sit in memory: give ``stream`` (a coroutine writing the body to the
    request, honouring back-pressure) and its ``length`` instead of ``body``.
    """

    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[Any], Awaitable[None]] | None = None  # given the request
    length: int | None = None
