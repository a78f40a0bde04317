"""The stream lifecycle against a real server, for the sync and the asyncio client: create,
idempotent producers, forks, close, tails of a closed stream, delete (docs/http-api.md)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest

import badbatch as bb
from conftest import Server
from fakeserver import FakeServer, Reply, err, sse_record


class Flavour:
    """One client, sync or asyncio, called the same way."""

    def __init__(self, kind: str, url: str, **opts: Any) -> None:
        self.kind = kind
        if kind == "sync":
            self.c: Any = bb.Client(url, **opts)
        else:
            self.loop = asyncio.new_event_loop()
            self.c = bb.AsyncClient(url, **opts)

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.c, name)
        if self.kind == "sync":
            return fn
        return lambda *a, **kw: self.loop.run_until_complete(fn(*a, **kw))

    def tail_all(self, stream: str, from_: bb.Position = "earliest", limit: float = 10.0) -> list[bb.StoredRecord]:
        """Every record of a tail, which must end by itself within ``limit`` seconds."""
        start = time.monotonic()
        if self.kind == "sync":
            t = self.c.tail(stream, from_)
            timer = threading.Timer(limit, t.close)
            timer.start()
            try:
                recs = list(t)
            finally:
                timer.cancel()
        else:
            async def go() -> list[bb.StoredRecord]:
                async with await self.c.tail(stream, from_) as t:
                    return [r async for r in t]
            recs = self.loop.run_until_complete(asyncio.wait_for(go(), limit))
        assert time.monotonic() - start < limit, "the tail did not end by itself"
        return recs

    def close(self) -> None:
        if self.kind == "sync":
            self.c.close()
        else:
            self.loop.run_until_complete(self.c.aclose())
            self.loop.close()


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, plain_server: Server) -> Iterator[Flavour]:
    f = Flavour(request.param, plain_server.url)
    yield f
    f.close()


def test_create_stream(client: Flavour) -> None:
    s = f"lc-create-{client.kind}"
    cfg = bb.StreamConfig(content_type="text/plain", ttl=3600)
    assert client.create_stream(s, cfg) is True
    assert client.create_stream(s, cfg) is False  # the same configuration: nothing changed
    with pytest.raises(bb.StreamExistsError) as ei:
        client.create_stream(s, bb.StreamConfig())
    assert ei.value.status == 409 and ei.value.code == "stream_exists"
    info = client.stream_info(s)
    assert (info.content_type, info.ttl_seconds, info.closed, info.forked_from) == ("text/plain", 3600, False, None)
    assert client.create_stream(f"{s}-plain") is True
    assert client.stream_info(f"{s}-plain").content_type == "application/octet-stream"
    with pytest.raises(bb.InvalidOptionsError):
        client.create_stream(f"{s}-x", bb.StreamConfig(ttl=1.5))  # whole seconds over HTTP


def test_producer_replay_gap_and_fence(client: Flavour) -> None:
    s = f"lc-producer-{client.kind}"
    first = client.append(s, bb.Record(b"a"), producer=bb.Producer("p", 0, 0))
    again = client.append(s, bb.Record(b"a"), producer=bb.Producer("p", 0, 0))
    assert again.replayed and again.first_offset == first.first_offset
    with pytest.raises(bb.ProducerSeqGapError) as gap:
        client.append(s, bb.Record(b"x"), producer=bb.Producer("p", 0, 5))
    e = gap.value
    assert (e.status, e.expected_seq, e.received_seq, e.producer_epoch) == (409, 1, 5, 0)
    client.append(s, bb.Record(b"b"), producer=bb.Producer("p", 2, 0))
    with pytest.raises(bb.ProducerFencedError) as fenced:
        client.append(s, bb.Record(b"x"), producer=bb.Producer("p", 1, 0))
    assert fenced.value.status == 403 and fenced.value.producer_epoch == 2
    assert [r.value for r in client.read(s).records] == [b"a", b"b"]
    with pytest.raises(bb.InvalidOptionsError):
        client.append(s, bb.Record(b"x"), producer=bb.Producer("", 0, 0))


def test_stream_seq_must_increase(client: Flavour) -> None:
    s = f"lc-stream-seq-{client.kind}"
    client.append(s, bb.Record(b"1"), stream_seq="a")
    client.append_batch(s, [bb.Record(b"2"), bb.Record(b"3")], stream_seq="b")
    with pytest.raises(bb.StreamSeqError) as ei:
        client.append(s, bb.Record(b"x"), stream_seq="a")  # not above "b"
    assert (ei.value.status, ei.value.code, ei.value.kind) == (409, "stream_seq", "stream_seq")
    with pytest.raises(bb.StreamSeqError):
        client.append(s, bb.Record(b"x"), stream_seq="b")  # equal is not above
    assert [r.value for r in client.read(s).records] == [b"1", b"2", b"3"]  # nothing stored
    client.append(s, bb.Record(b"4"))  # no label: no condition
    with pytest.raises(bb.InvalidOptionsError):
        client.append(s, bb.Record(b"x"), stream_seq="")


def test_fork_reads_through(client: Flavour) -> None:
    src, fork = f"lc-src-{client.kind}", f"lc-fork-{client.kind}"
    client.append_batch(src, [bb.Record(b"s0"), bb.Record(b"s1"), bb.Record(b"s2")])
    client.fork_stream(fork, src, 2)
    client.append(fork, bb.Record(b"f2"))
    client.append(src, bb.Record(b"s3"))  # after the fork point: not the fork's
    page = client.read(fork)
    assert [(r.offset, r.value) for r in page.records] == [(0, b"s0"), (1, b"s1"), (2, b"f2")]
    info = client.stream_info(fork)
    assert (info.forked_from, info.fork_offset) == (src, 2)
    with pytest.raises(bb.StreamExistsError):
        client.fork_stream(fork, src, 1)
    with pytest.raises(bb.NotFoundError):
        client.fork_stream(f"{fork}-2", "lc-no-such-stream", 0)


def test_close_then_appends_are_refused_and_tails_end(client: Flavour) -> None:
    s = f"lc-close-{client.kind}"
    client.append(s, bb.Record(b"one"))
    client.append(s, bb.Record(b"last"), close=True)  # the final append closes atomically
    with pytest.raises(bb.StreamClosedError) as ei:
        client.append(s, bb.Record(b"more"))
    assert ei.value.status == 409
    client.close_stream(s)  # closing again succeeds
    assert client.stream_info(s).closed is True
    assert [r.value for r in client.tail_all(s)] == [b"one", b"last"]
    assert client.tail_all(s, "latest") == []

    live = f"lc-close-live-{client.kind}"
    client.append(live, bb.Record(b"x"))
    threading.Timer(0.3, lambda: bb.Client(client.c.base_url).close_stream(live)).start()
    assert [r.value for r in client.tail_all(live)] == [b"x"]  # a live tail ends at the close


def test_delete_soft_then_cascade(client: Flavour) -> None:
    src, fork = f"lc-del-{client.kind}", f"lc-del-fork-{client.kind}"
    client.append(src, bb.Record(b"a"))
    client.fork_stream(fork, src, 1)
    client.delete_stream(src)
    with pytest.raises(bb.GoneError) as ei:  # soft-deleted: the fork still reads it
        client.stream_info(src)
    assert ei.value.status == 410
    assert [r.value for r in client.read(fork).records] == [b"a"]
    client.delete_stream(fork)
    with pytest.raises(bb.NotFoundError):
        client.stream_info(src)
    with pytest.raises(bb.NotFoundError):
        client.delete_stream(src)
    assert client.create_stream(src) is True
    assert client.stream_info(src).next_offset == 0  # a new stream under the name starts empty


# ------------------------------------------------------------------ against a scripted server


@pytest.fixture()
def fake() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_lifecycle_requests_and_retries(fake: FakeServer, kind: str) -> None:
    c = Flavour(kind, fake.url, retry_backoff=0.001, max_backoff=0.01, generate_idempotency_keys=False)
    try:
        fake.add(err(503, "unavailable"), Reply(201, {"stream": "s", "first_offset": 0, "next_offset": 0,
                                                      "records": 0, "bytes": 0}))
        exp = "2030-01-02T03:04:05Z"
        assert c.create_stream("s", bb.StreamConfig(content_type="a/b", expires_at=datetime(
            2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc), closed=True)) is True  # retried
        assert fake.seen[-1].method == "PUT" and fake.seen[-1].path == "/v1/streams/s"
        assert fake.seen[-1].body == b'{"content_type": "a/b", "expires_at": "' + exp.encode() + b'", "closed": true}'
        fake.add(Reply(200, {}))
        c.fork_stream("f", "s", 3, bb.StreamConfig(ttl=60))
        assert fake.seen[-1].body == b'{"fork": {"stream": "s", "offset": 3}, "ttl_seconds": 60}'
        fake.add(err(503, "unavailable"), Reply(200, {}))
        c.close_stream("s")  # retried
        assert [x.method for x in fake.seen[-2:]] == ["POST", "POST"] and fake.seen[-1].path == "/v1/streams/s/close"
        n = len(fake.seen)
        fake.add(err(503, "unavailable"))
        with pytest.raises(bb.UnavailableError):
            c.delete_stream("s")  # the outcome is unknown: not retried
        assert len(fake.seen) == n + 1 and fake.seen[-1].method == "DELETE"
        fake.add(err(502, "bad_gateway"), Reply(201, {"stream": "s", "first_offset": 0, "last_offset": 0,
                                                      "count": 1, "first_seq": 0, "last_seq": 0}))
        c.append("s", bb.Record(b"x"), producer=bb.Producer("p", 1, 2), close=True, stream_seq="s-7")  # retried
        h = fake.seen[-1].headers
        assert (h["producer-id"], h["producer-epoch"], h["producer-seq"], h["stream-closed"]) == ("p", "1", "2", "true")
        assert fake.seen[-2].headers["stream-seq"] == h["stream-seq"] == "s-7"  # on every attempt
        assert "idempotency-key" not in h
        for code, status in (("stream_closed", 409), ("stream_exists", 409), ("producer_seq_gap", 409),
                             ("producer_fenced", 403), ("stream_seq", 409)):
            n = len(fake.seen)
            fake.add(err(status, code, headers={"Producer-Epoch": "4", "Producer-Expected-Seq": "8",
                                                "Producer-Received-Seq": "9"}))
            with pytest.raises(bb.ERROR_KINDS[code]) as ei:
                c.append("s", bb.Record(b"x"), producer=bb.Producer("p", 4, 9))
            assert ei.value.status == status and len(fake.seen) == n + 1  # never retried
            if code == "producer_seq_gap":
                assert (ei.value.expected_seq, ei.value.received_seq, ei.value.producer_epoch) == (8, 9, 4)
            if code == "producer_fenced":
                assert ei.value.producer_epoch == 4
        fake.add(Reply(200, sse=[sse_record(0), sse_record(1), b"event: closed\ndata: {}\n\n"], hold=5.0))
        assert [r.offset for r in c.tail_all("s", limit=3.0)] == [0, 1]
    finally:
        c.close()
