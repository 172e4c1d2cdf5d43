"""A device's last use (time and address) is that of its latest request, by the node's clock.

In process on a fake clock (``tests/inprocess_node.py``): the test moves time between two
requests instead of sleeping, and reads the times the node recorded.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from broker.http.user_auth import RequestUsers
from tests.inprocess_node import START_S, InProcessNode
from tests.storage_helpers import result_of


def _request_from(local: InProcessNode, token: str, host: str) -> None:
    """One authenticated request of ``token``'s device from ``host``."""
    request = DummyRequest([b"whoami"])
    request.requestHeaders.addRawHeader(b"authorization", f"Bearer {token}".encode())
    request.client = IPv4Address("TCP", host, 40000)
    local.run(RequestUsers(local.node.auth).get_requester(request))


def _last_seen(local: InProcessNode, user_id: str, device_id: str) -> tuple[int | None, str | None]:
    local.run(local.node.auth.flush_last_seen())
    device = result_of(local.node.stores.users.get_device(user_id, device_id))
    assert device is not None
    return device.last_seen_ts, device.last_seen_ip


def test_device_last_seen_is_the_clock_time_of_its_latest_request(local: InProcessNode) -> None:
    alice, token = local.register("alice")
    user_id, device_id = alice.user_id, alice.device_id
    _request_from(local, token, "10.0.0.1")
    first = _last_seen(local, user_id, device_id)
    local.advance(90)
    _request_from(local, token, "10.0.0.2")
    assert first == (int(START_S * 1000), "10.0.0.1")
    assert _last_seen(local, user_id, device_id) == (int((START_S + 90) * 1000), "10.0.0.2")
