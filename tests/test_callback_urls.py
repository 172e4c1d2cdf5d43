"""Callback URLs of applications (broker/apps/callback_urls.py): only http(s) URLs whose host
resolves to public addresses are called, unless the node allows private callbacks.  The
resolver is a parameter: these tests answer for the names they use."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from broker.apps.callback_urls import check_callback_url
from broker.errors import InvalidInput
from tests.storage_helpers import result_of


def resolving(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such name {host}")
        return table[host]
    return resolve


NAMES = resolving({"apps.example.gov": ["93.184.216.34"], "inside.example.gov": ["10.1.2.3"],
                   "mixed.example.gov": ["93.184.216.34", "127.0.0.1"], "empty.example.gov": []})


def reason_of(url: str, allow_private: bool = False) -> str | None:
    try:
        result_of(defer.ensureDeferred(check_callback_url(url, allow_private, NAMES)))
    except InvalidInput as e:
        return str(e.extra["in.gov.broker.reason"])
    return None


def test_a_public_https_url_is_accepted() -> None:
    assert reason_of("https://apps.example.gov/hooks/status") is None


@pytest.mark.parametrize("url", ["ftp://apps.example.gov/x", "apps.example.gov/x", "https://",
                                 "javascript:alert(1)", "https://user:pw@apps.example.gov/",
                                 "http://apps.example.gov:99999/", "", "https://" + "a" * 3000])
def test_what_is_not_an_http_url_with_a_host_is_invalid(url: str) -> None:
    assert reason_of(url) == "callback_url_invalid"


def test_a_host_that_does_not_resolve_is_invalid() -> None:
    assert reason_of("https://nowhere.example.gov/") == "callback_url_invalid"
    assert reason_of("https://empty.example.gov/") == "callback_url_invalid"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/cb", "http://[::1]/cb",
                                 "http://169.254.169.254/latest", "https://inside.example.gov/",
                                 "http://192.168.1.5/", "http://[::ffff:10.0.0.1]/"])
def test_a_private_loopback_or_link_local_host_is_refused(url: str) -> None:
    assert reason_of(url) == "callback_url_private"


def test_one_private_address_among_public_ones_is_refused() -> None:
    assert reason_of("https://mixed.example.gov/") == "callback_url_private"


def test_private_hosts_are_accepted_when_the_config_allows_them() -> None:
    assert reason_of("http://127.0.0.1:8080/cb", allow_private=True) is None
    assert reason_of("https://inside.example.gov/", allow_private=True) is None
