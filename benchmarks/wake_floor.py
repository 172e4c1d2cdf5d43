"""The floor under a big fan-out: what answering N parked HTTP requests costs in this process
with nothing of the node in between, and what a slice per reactor turn adds.

    python benchmarks/wake_floor.py [--requests 5000] [--slices 100,16,1]

N sockets connect to a listener built like the node's (``broker.http.channel.make_site``)
and each sends one request, which parks; then the parked requests are answered a slice per
reactor turn, each with a fixed ~400-byte JSON body, and the script prints the process CPU
time per answer (``per_answer_us``) for:

- ``twisted``: ``request.write`` + ``request.finish`` (what the node's router does);
- ``raw``: the same bytes written straight to the transport, the request left unfinished (not
  a server: the lower bound of a Deferred, one queued write and the socket send).

The node's woken /sync costs what it builds and encodes on top of the first figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from twisted.internet import defer, reactor  # noqa: E402
from twisted.web import server  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402

from broker.http.channel import make_site  # noqa: E402

BODY = b'{"next_batch":"s1_0","rooms":{"join":{}}}' * 10
CONNECT_PER_TURN = 200


class _Parking(Resource):
    isLeaf = True

    def __init__(self, raw: bool) -> None:
        super().__init__()
        self.raw = raw
        self.parked: list[defer.Deferred[None]] = []

    def render(self, request: Any) -> Any:
        d: defer.Deferred[None] = defer.Deferred()
        d.addCallback(lambda _: self._answer(request))
        self.parked.append(d)
        return server.NOT_DONE_YET

    def _answer(self, request: Any) -> None:
        if self.raw:
            request.channel.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
            return
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Content-Length", b"%d" % len(BODY))
        request.write(BODY)
        request.finish()


def measure(requests: int, slice_size: int, raw: bool) -> dict[str, Any]:
    """Park ``requests`` requests, answer them ``slice_size`` per turn; the figures."""
    resource_ = _Parking(raw)
    port = reactor.listenTCP(0, make_site(resource_), backlog=requests,  # type: ignore
                             interface="127.0.0.1")
    address = ("127.0.0.1", port.getHost().port)
    sockets: list[socket.socket] = []
    result: dict[str, Any] = {}
    finished: defer.Deferred[None] = defer.Deferred()

    def connect_some() -> None:
        for _ in range(min(CONNECT_PER_TURN, requests - len(sockets))):
            sock = socket.create_connection(address)
            sock.setblocking(False)
            sock.send(b"GET /park HTTP/1.1\r\nHost: floor\r\n\r\n")
            sockets.append(sock)
        reactor.callLater(0, connect_some if len(sockets) < requests else wait_parked)

    def wait_parked() -> None:
        if len(resource_.parked) < requests:
            reactor.callLater(0.05, wait_parked)
            return
        todo = list(resource_.parked)
        started = time.process_time()
        turns = 0

        def wake_slice() -> None:
            nonlocal turns
            turns += 1
            for _ in range(min(slice_size, len(todo))):
                todo.pop().callback(None)
            if todo:
                reactor.callLater(0, wake_slice)
            else:
                reactor.callLater(0, done)

        def done() -> None:
            cpu = time.process_time() - started
            result.update({"mode": "raw" if raw else "twisted", "requests": requests,
                           "slice": slice_size, "turns": turns, "cpu_s": round(cpu, 3),
                           "per_answer_us": round(cpu / requests * 1e6, 1)})
            finished.callback(None)

        reactor.callLater(0, wake_slice)

    reactor.callLater(0, connect_some)
    finished.addCallback(lambda _: port.stopListening())
    finished.addCallback(lambda _: [s.close() for s in sockets])
    return {"deferred": finished, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--slices", default="100,16,1")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, args.requests * 2 + 100)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    runs = [(int(s), raw) for s in args.slices.split(",") for raw in (False, True)]
    results: list[dict[str, Any]] = []

    def next_run(_: Any = None) -> None:
        if not runs:
            reactor.stop()
            return
        slice_size, raw = runs.pop(0)
        run = measure(args.requests, slice_size, raw)
        run["deferred"].addCallback(lambda _: results.append(run["result"]))
        run["deferred"].addCallback(lambda _: print(json.dumps(run["result"]), flush=True))
        run["deferred"].addCallback(lambda _: reactor.callLater(0.5, next_run))

    reactor.callWhenRunning(next_run)
    reactor.run()  # type: ignore[attr-defined]
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
