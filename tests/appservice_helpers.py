"""Application services for tests: registration files, and a real HTTP server on loopback
standing for a service (it records what the node sends and answers with the status the test
sets; mautrix's AppService is the real framework of the bridging tests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


def registration_file(folder: Path, service_id: str, *, url: str | None, prefix: str,
                      server_name: str, **changes: Any) -> Path:
    """A registration whose exclusive namespaces are users ``@<prefix>_...`` and aliases
    ``#<prefix>_...`` of ``server_name``; its tokens are ``<id>-as`` and ``<id>-hs``."""
    escaped = server_name.replace(".", "\\.")
    data: dict[str, Any] = {
        "id": service_id, "url": url, "as_token": f"{service_id}-as",
        "hs_token": f"{service_id}-hs", "sender_localpart": f"{prefix}bot",
        "rate_limited": False,
        "namespaces": {"users": [{"exclusive": True, "regex": f"@{prefix}_.*:{escaped}"}],
                       "aliases": [{"exclusive": True, "regex": f"#{prefix}_.*:{escaped}"}],
                       "rooms": []}}
    data.update(changes)
    path = folder / f"{service_id}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class RecordingService:
    """A loopback HTTP server answering every request with ``status`` (200 ``{}`` by
    default); ``requests`` holds (method, path, authorization, JSON body) in arrival order."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[str, str, str, Any]] = []
        self.answered: list[int] = []  # the status each request was answered with
        self.arrived = threading.Condition()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with service.arrived:
                    status = service.status
                    service.requests.append((self.command, self.path,
                                             self.headers.get("Authorization", ""),
                                             json.loads(raw) if raw else None))
                    service.answered.append(status)
                    service.arrived.notify_all()
                body = b"{}" if status == 200 else b'{"errcode":"M_UNKNOWN"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 20) -> list[tuple[str, str, str, Any]]:
        """The first ``count`` requests, waiting (on a condition, not a sleep) for them."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def accepted_transactions(self) -> list[dict[str, Any]]:
        """The bodies of the transactions it answered 200, in order."""
        return [body for (_m, path, _a, body), status in zip(self.requests, self.answered,
                                                            strict=False)
                if path.startswith("/_matrix/app/v1/transactions/") and status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def running_service() -> Iterator[RecordingService]:
    service = RecordingService()
    try:
        yield service
    finally:
        service.close()
