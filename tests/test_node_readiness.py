"""``broker run --ready-fd``: the node says when it listens, and the harness waits on that word
(a blocking read with a deadline) instead of polling the port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.node_harness import NodeProcess


def test_node_answers_as_soon_as_it_said_it_is_ready(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path).start()
    try:
        versions = node.client().get("/_matrix/client/versions")
        assert "versions" in versions
    finally:
        node.stop()


def test_node_that_exits_before_listening_is_reported_as_exited(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path)
    node.config_path.write_text("server_name: [not, a, name]\n")
    with pytest.raises(RuntimeError, match="node exited early"):
        node.start(timeout=60)
