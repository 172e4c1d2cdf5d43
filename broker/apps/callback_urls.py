"""Whether an application's callback URL may be called: an http(s) URL whose host resolves only
to public addresses (loopback, private, link-local, shared and reserved ranges are refused)
unless the node allows private callbacks (config ``apps.allow_private_callbacks``).

It is asked when an application is registered or its URL changed, and again before each
callback is delivered, because what a name resolves to can change after registration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from broker.errors import InvalidInput
from federation.server_resolver import is_public_address, resolve_host_with_reactor
from protocol.discovery import is_ip_literal

#: (host, port) -> the IP addresses the host resolves to
Resolve = Callable[[str, int], Awaitable[list[str]]]

INVALID = "callback_url_invalid"
PRIVATE = "callback_url_private"
MAX_URL_LENGTH = 2048


def _refused(reason: str, message: str) -> InvalidInput:
    return InvalidInput(message, **{"in.gov.broker.reason": reason})


def _default_resolve() -> Resolve:
    from twisted.internet import reactor

    return resolve_host_with_reactor(reactor)


def split_callback_url(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; ``InvalidInput`` (callback_url_invalid) for
    anything else."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise _refused(INVALID, "callback_url must be an http or https URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise _refused(INVALID, f"callback_url is not a URL: {e}") from e
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused(INVALID, "callback_url must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _refused(INVALID, "callback_url must not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_callback_url(url: str, allow_private: bool,
                             resolve: Resolve | None = None) -> None:
    """Raise ``InvalidInput`` with ``in.gov.broker.reason`` ``callback_url_invalid`` (not an
    http(s) URL, or a host that does not resolve) or ``callback_url_private`` (a host with a
    non-public address, unless ``allow_private``)."""
    await callback_address(url, allow_private, resolve)


async def callback_address(url: str, allow_private: bool,
                           resolve: Resolve | None = None) -> tuple[str, int]:
    """The address and port to dial for ``url``, checked as :func:`check_callback_url` does
    (a caller connects to this address, so a name that resolves otherwise a moment later is
    not dialled unchecked)."""
    host, port = split_callback_url(url)
    if is_ip_literal(host):
        addresses = [host.strip("[]")]
    else:
        try:
            addresses = await (resolve or _default_resolve())(host, port)
        except Exception as e:  # a resolver failure: the URL cannot be called
            raise _refused(INVALID, f"callback_url host {host!r} does not resolve") from e
    if not addresses:
        raise _refused(INVALID, f"callback_url host {host!r} does not resolve")
    if not allow_private and any(not is_public_address(a) for a in addresses):
        raise _refused(PRIVATE, f"callback_url host {host!r} resolves to a private address"
                       " (set apps.allow_private_callbacks to allow it)")
    return addresses[0], port
