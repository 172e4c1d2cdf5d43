"""Sync and pagination tokens.

A sync token ``s<stream>_<typing>`` names a position in the node's one stream plus the typing
serial.  Pagination tokens are the same shape; /messages reads only the stream part.  A
position P means "after every change numbered <= P".
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.http.errors import MatrixError


@dataclass(frozen=True)
class SyncToken:
    stream: int
    typing: int = 0

    def __str__(self) -> str:
        return f"s{self.stream}_{self.typing}"

    @classmethod
    def parse(cls, raw: str) -> SyncToken:
        try:
            if not raw.startswith("s"):
                raise ValueError(raw)
            stream, _, typing = raw[1:].partition("_")
            token = cls(int(stream), int(typing) if typing else 0)
        except ValueError as e:
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid token {raw!r}") from e
        if token.typing < 0:
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid token {raw!r}")
        return token


def pagination_token(stream: int) -> str:
    return str(SyncToken(stream))
