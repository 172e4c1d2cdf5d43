"""An application across a restart of its node (a real node process on loopback), both
engines: its token still works, a replayed idempotency key answers the first message and
sends nothing, and the message's status is still readable."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.node_harness import node_on_engine
from tests.peer_env import ENGINES
from tests.test_apps_nodes import APPS, notices, register_app, until_notice


@pytest.mark.parametrize("engine", ENGINES)
def test_a_replayed_key_after_a_restart_sends_nothing(engine: str, tmp_path: Path) -> None:
    orgs = tmp_path / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    with node_on_engine(engine, tmp_path / "node",
                        overrides={"organisations.path": str(orgs)}) as node:
        app = register_app(node)
        asha = node.register()
        body = {"to": asha.user_id, "kind": "otp", "body": "OTP 1", "ttl_s": 300,
                "idempotency_key": "login-1"}
        first = app.post(f"{APPS}/messages", body)
        until_notice(asha)
        node.stop()
        node.start()
        again = app.post(f"{APPS}/messages", body)
        assert (app.status, again) == (200, first)
        assert len(notices(asha)[0]) == 1
        status = app.get(f"{APPS}/messages/{first['message_id']}")
        assert (app.status, status["recipient"]) == (200, asha.user_id)
