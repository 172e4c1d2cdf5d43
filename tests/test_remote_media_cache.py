"""The remote media cache (broker/media/remote.py), on the node's fake clock: concurrent
requests for one file share one fetch, a fetched file is served from disk until it expires,
and a failed fetch fails every waiter and is not remembered. The fetches across real nodes are
tested in test_remote_media_nodes.py; here the other server's answers are what the node's own
federation endpoint sends (broker/media/multipart.py), handed over when the test says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, threads
from twisted.internet.task import Clock as FakeReactor

from broker.clock import Clock
from broker.errors import Unavailable
from broker.media.files import MediaFiles
from broker.media.multipart import as_multipart
from broker.media.remote import RemoteMedia
from broker.raw_response import RawResponse
from federation.transport_client import RawAnswer
from tests.storage_helpers import result_of

EXPIRY_MS = 60_000


@pytest.fixture(autouse=True)
def files_on_this_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake reactor runs no pool threads: file work runs on the calling thread."""
    monkeypatch.setattr(threads, "deferToThread",
                        lambda f, *args, **kw: defer.maybeDeferred(f, *args, **kw))


class OtherServer:
    """Answers each fetch when the test says (``answer``/``fail``), counting them."""

    def __init__(self) -> None:
        self.pending: list[defer.Deferred[RawAnswer]] = []

    def fetch(self, destination: str, path: str, args: Any, *, limit: int,
              timeout: float) -> defer.Deferred[RawAnswer]:
        asked: defer.Deferred[RawAnswer] = defer.Deferred()
        self.pending.append(asked)
        return asked

    def answer(self, data: bytes) -> None:
        sent = as_multipart(RawResponse(data, "text/plain"))
        self.pending.pop(0).callback(RawAnswer(sent.content_type, sent.body))

    def fail(self) -> None:
        self.pending.pop(0).errback(ConnectionRefusedError())


@pytest.fixture
def scene(tmp_path: Path) -> tuple[RemoteMedia, OtherServer, FakeReactor]:
    reactor, other = FakeReactor(), OtherServer()
    cache = RemoteMedia(MediaFiles(tmp_path), other.fetch, Clock(reactor), "b.test", 1024,
                        lambda server: True, expiry_ms=EXPIRY_MS)
    return cache, other, reactor


def _download(cache: RemoteMedia) -> defer.Deferred[RawResponse]:
    return defer.ensureDeferred(cache.download("a.test", "MediaOfA", None, 1000))


def test_concurrent_downloads_share_one_fetch(scene: Any) -> None:
    cache, other, _ = scene
    first, second = _download(cache), _download(cache)
    assert len(other.pending) == 1 and not first.called and not second.called
    other.answer(b"shared")
    assert result_of(first).body == result_of(second).body == b"shared"


def test_a_fetched_file_is_served_from_disk_until_it_expires(scene: Any) -> None:
    cache, other, reactor = scene
    first = _download(cache)
    other.answer(b"version one")
    assert result_of(first).body == b"version one"
    reactor.advance(EXPIRY_MS / 1000 - 1)
    assert result_of(_download(cache)).body == b"version one"
    assert other.pending == []
    reactor.advance(1)
    expired = _download(cache)
    assert len(other.pending) == 1
    other.answer(b"version two")
    assert result_of(expired).body == b"version two"


def test_a_failed_fetch_fails_every_waiter_and_is_tried_again_next_time(scene: Any) -> None:
    cache, other, _ = scene
    first, second = _download(cache), _download(cache)
    other.fail()
    for waiter in (first, second):
        failure = []
        waiter.addErrback(failure.append)
        assert failure and failure[0].check(Unavailable)
    retried = _download(cache)
    other.answer(b"back")
    assert result_of(retried).body == b"back"
