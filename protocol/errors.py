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


class HttpResponseError(Exception):
    """A federation request was answered with a non-2xx status.

    ``errcode`` is the Matrix ``errcode`` of the body if it had one; ``body`` is the parsed
    JSON body, or the raw text when the body was not JSON.
    """

    def __init__(self, status: int, errcode: str | None, body: object) -> None:
        super().__init__(f"HTTP {status}" + (f" {errcode}" if errcode else ""))
        self.status = status
        self.errcode = errcode
        self.body = body


class DestinationRefused(Exception):
    """An outbound federation request was refused before connecting.

    The destination is not allowed by the federation policy, is not a valid server name,
    or resolves only to addresses we may not connect to (private, loopback, link-local...).
    """


class InvalidResponseError(Exception):
    """A federation request was answered with a 2xx status but a body that is not JSON."""
