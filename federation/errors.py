"""Exceptions raised by the federation event primitives."""

from __future__ import annotations


class AuthError(Exception):
    """An event failed the room version's authorization rules."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureVerifyError(Exception):
    """A signature was missing, malformed or did not verify."""


class InvalidEventError(ValueError):
    """A PDU does not have the shape the room version requires."""
