"""Sync and pagination tokens.

A sync token ``s<stream>_<typing>`` names a position in the node's one stream plus the typing
serial.  Pagination tokens are the same shape; /messages reads only the stream part.  A
position P means "after every change numbered <= P".  Both numbers lie in canonical JSON's
integer range (which every database column holds); the typing serial is never negative, the
stream position is negative only for backfilled history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol.canonical import MAX_SAFE_INT

# ASCII digits only, at most as many as MAX_SAFE_INT has (so a huge number is never parsed).
_TOKEN = re.compile(r"s(-?[0-9]{1,16})(?:_([0-9]{1,16}))?", re.ASCII)


class InvalidToken(ValueError):
    """A string that is not a token this node hands out."""


@dataclass(frozen=True)
class SyncToken:
    stream: int
    typing: int = 0

    def __str__(self) -> str:
        return f"s{self.stream}_{self.typing}"

    @classmethod
    def parse(cls, raw: str) -> SyncToken:
        """The token ``raw`` names; :class:`InvalidToken` if it is malformed or a number lies
        outside [-(2**53)+1, 2**53-1]."""
        match = _TOKEN.fullmatch(raw)
        if match is None:
            raise InvalidToken(f"Invalid token {raw[:40]!r}")
        stream, typing = int(match[1]), int(match[2] or 0)
        if not (-MAX_SAFE_INT <= stream <= MAX_SAFE_INT and typing <= MAX_SAFE_INT):
            raise InvalidToken(f"Token {raw[:40]!r} is out of range")
        return cls(stream, typing)

    def bounded_by(self, current: SyncToken) -> SyncToken:
        """This token with each number no higher than ``current``'s: a token from the future
        (one this node never handed out) stands for the node's current position."""
        if self.stream <= current.stream and self.typing <= current.typing:
            return self
        return SyncToken(min(self.stream, current.stream), min(self.typing, current.typing))


def pagination_token(stream: int) -> str:
    return str(SyncToken(stream))
