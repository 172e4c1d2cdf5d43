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


class StateResolutionError(Exception):
    """State resolution cannot proceed: a needed event is missing or inconsistent."""


class KeyFetchError(Exception):
    """A server's signing keys could not be obtained (directly or through a notary)."""


class InvalidServerKeys(KeyFetchError):
    """A server keys response (or a notary's copy of one) is malformed or badly signed."""


class MalformedAuthorization(ValueError):
    """An ``Authorization: X-Matrix ...`` header cannot be parsed."""


class FederationListError(ValueError):
    """A signed federation list was refused; ``reason`` is a short machine-readable code.

    Codes: ``malformed``, ``unsigned``, ``bad_signature``, ``wrong_key``, ``bad_authority_key``,
    ``invalid_server_name``, ``expired`` (from ``federation.federation_list``) and ``unreadable``,
    ``stale_version``, ``version_conflict`` (from ``federation.policy``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
