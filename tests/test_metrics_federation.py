"""The federation metrics of a real node: a peer that stops answering shows backing off, with
what is queued for it (two nodes of ours, TLS on loopback)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.node_harness import NodeProcess, free_port
from tests.room_helpers import V3, create_room, send_text
from tests.test_metrics_node import scrape


def federation_samples(url: str, peer: str) -> dict[str, float]:
    """The federation gauges of ``peer`` in a scrape of ``url``."""
    found: dict[str, float] = {}
    for name, samples in scrape(url).items():
        if name.startswith("broker_federation_"):
            for labels, value in samples:
                if labels.get("destination") == peer:
                    found[name] = value
    return found


def test_an_unreachable_peer_backs_off_with_its_events_queued(tmp_path: Path) -> None:
    port = free_port()
    a = NodeProcess(tmp_path / "a", federation=True, overrides={"metrics": {"port": port}})
    b = NodeProcess(tmp_path / "b", federation=True)
    a.allow(b)
    b.allow(a)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        a.start()
        b.start()
        alice, bob = a.register(), b.register()
        room_id = create_room(alice, preset="public_chat")
        bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
        assert bob.status == 200
        b.stop()
        send_text(alice, room_id, "while b is down")
        deadline = time.monotonic() + 20
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:  # delivery fails on A's own time: read until it has
            seen = federation_samples(url, b.server_name)
            if seen.get("broker_federation_destination_backing_off") == 1:
                break
        assert seen.get("broker_federation_destination_backing_off") == 1, seen
        assert seen["broker_federation_destination_failures"] >= 1
        assert seen["broker_federation_queue_pdus"] >= 1
    finally:
        a.stop()
        b.stop()
