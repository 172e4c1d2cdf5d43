"""What the end-to-end encryption endpoints call: device and one-time keys, cross-signing keys
and signatures, device-list changes.

The operations themselves are in :mod:`broker.e2ee` (still written over the node, which the
composition root binds them to); endpoint groups see only this service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.e2ee.cross_signing import KeyUpload

JsonDict = dict[str, Any]
KeyOperation = Callable[["Requester", JsonDict], Awaitable[JsonDict]]


@dataclass(frozen=True)
class EndToEndKeys:
    upload: KeyOperation  # POST /keys/upload
    query: KeyOperation  # POST /keys/query (cross-signing keys included)
    claim: KeyOperation  # POST /keys/claim
    # (user, from, to): users whose devices changed, users no longer shared with
    changes: Callable[[str, int, int], Awaitable[tuple[set[str], set[str]]]]
    current_position: Callable[[], int]
    check_signing_keys: Callable[[str, JsonDict], Awaitable[KeyUpload]]
    # (upload, authenticated): False when a concurrent upload now makes UIA necessary
    store_signing_keys: Callable[..., Awaitable[bool]]
    upload_signatures: Callable[[str, JsonDict], Awaitable[JsonDict]]
