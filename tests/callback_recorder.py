"""A loopback HTTP server that records the callbacks it receives (for the tests of
broker/apps/callbacks.py and of applications on real nodes)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

WAIT_S = 10.0  # a generous bound on a callback arriving, never a timing assumption


class Recorder:
    """A loopback HTTP server: each path answers as ``behaviour[path]`` says ("ok" 200,
    "fail" 500, "hang" never), and every request is recorded."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.behaviour: dict[str, str] = {}
        self.release = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.received.append((self.path, dict(self.headers), body))
                behaviour = recorder.behaviour.get(self.path, "ok")
                if behaviour == "hang":
                    recorder.release.wait(WAIT_S * 3)
                    return
                code = 200 if behaviour == "ok" else 500
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.received]

    def signed_with(self, secret: str, index: int) -> bool:
        """Whether the ``index``-th request carries the HMAC of its body with ``secret``."""
        _, headers, body = self.received[index]
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return bool(headers.get("X-Broker-Signature") == f"sha256={expected}")

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    made.close()
