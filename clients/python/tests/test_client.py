"""Unit tests of both clients against a scripted server: retries, idempotency, redirects,
errors, options, tails."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import badbatch as bb
from badbatch import _wire as w
from fakeserver import APPEND_OK, FakeServer, Reply, err, sse_record

FAST = dict(retry_backoff=0.001, max_backoff=0.01)


@pytest.fixture()
def fake() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """call(url, options, method, *args, **kw): the method on a fresh sync or async client."""
    def run(url: str, opts: dict[str, Any], method: str, *args: Any, **kw: Any) -> Any:
        if request.param == "sync":
            with bb.Client(url, **opts) as c:
                return getattr(c, method)(*args, **kw)

        async def go() -> Any:
            async with bb.AsyncClient(url, **opts) as c:
                return await getattr(c, method)(*args, **kw)
        return asyncio.run(go())
    return run


# ------------------------------------------------------------------ options


def test_options_defaults_validation_and_immutability() -> None:
    o = bb.ClientOptions(token="t0ken-with-16-chars")
    assert o.max_retries == 5 and o.retry_backoff == 0.1 and o.max_backoff == 5.0 and o.max_retry_after == 30.0
    assert o.request_timeout == 30.0 and o.connect_timeout == 5.0 and o.tail_idle_timeout == 60.0
    assert o.generate_idempotency_keys is True and o.user_agent.startswith("badbatch-python-client/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.max_retries = 1  # type: ignore[misc]
    c = bb.Client("http://127.0.0.1:1", o, max_retries=2)
    assert c.options.max_retries == 2 and o.max_retries == 5  # the caller's object is unchanged
    for bad in (dict(max_retries=-1), dict(retry_backoff=-1), dict(max_backoff=0.01, retry_backoff=1),
                dict(request_timeout=0), dict(connect_timeout=float("nan")), dict(tail_idle_timeout=-1),
                dict(token="has space"), dict(max_retries=True), dict(user_agent="")):
        with pytest.raises(bb.InvalidOptionsError) as ei:
            bb.ClientOptions(**bad)
        assert ei.value.code == "invalid_options"
    with pytest.raises(bb.InvalidOptionsError):
        bb.Client("http://127.0.0.1:1", no_such_option=1)
    for url in ("ftp://x", "http://", "127.0.0.1:8080", "http://h:99999"):
        with pytest.raises(bb.InvalidOptionsError):
            bb.Client(url)
    with pytest.raises(bb.InvalidOptionsError):
        bb.AsyncClient("nope")


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("status,code,cls", [
    (400, "bad_request", bb.BadRequestError), (400, "invalid_stream", bb.InvalidStreamError),
    (401, "unauthorized", bb.UnauthorizedError), (403, "forbidden", bb.ForbiddenError),
    (404, "not_found", bb.NotFoundError), (404, "not_cluster", bb.NotClusterError),
    (405, "method_not_allowed", bb.MethodNotAllowedError), (409, "membership_conflict", bb.MembershipConflictError),
    (410, "gone", bb.GoneError), (413, "too_large", bb.TooLargeError), (415, "unsupported_type", bb.UnsupportedTypeError),
    (418, "teapot", bb.BadRequestError),
])
def test_error_kinds(fake: FakeServer, call: Any, status: int, code: str, cls: type) -> None:
    fake.add(err(status, code, "why", {"X-Request-Id": "rid"}))
    with pytest.raises(cls) as ei:
        call(fake.url, FAST, "stream_info", "s")
    e = ei.value
    assert isinstance(e, bb.BadBatchError) and e.code == code and e.status == status and e.message == "why"
    assert e.request_id == "rid"
    assert len(fake.seen) == 1  # never retried


def test_offset_mismatch_carries_current_last_offset(fake: FakeServer, call: Any) -> None:
    fake.add(err(409, "offset_mismatch", current_last_offset=7))
    with pytest.raises(bb.OffsetMismatchError) as ei:
        call(fake.url, FAST, "append", "s", bb.Record(b"x"), expected_last_offset=3)
    assert ei.value.current_last_offset == 7 and ei.value.status == 409
    assert fake.seen[0].headers["expected-last-offset"] == "3"


def test_undecodable_answer_is_internal(fake: FakeServer, call: Any) -> None:
    fake.add(Reply(200, b"not json"))
    with pytest.raises(bb.InternalError):
        call(fake.url, FAST, "cursor", "s", "c")


# ------------------------------------------------------------------ retries


def test_append_retries_503_under_one_generated_key(fake: FakeServer, call: Any) -> None:
    fake.add(err(503, "unavailable"), err(502, "bad_gateway"), Reply(201, APPEND_OK))
    res = call(fake.url, FAST, "append", "s", bb.Record(b"x"))
    assert res.first_seq == 5 and len(fake.seen) == 3
    keys = {s.headers["idempotency-key"] for s in fake.seen}
    assert len(keys) == 1 and len(keys.pop()) == 32  # 128 bits, hex, the same on every attempt


def test_callers_idempotency_key_is_sent(fake: FakeServer, call: Any) -> None:
    fake.add(Reply(201, dict(APPEND_OK, replayed=True), {"Idempotent-Replayed": "true"}))
    res = call(fake.url, FAST, "append_batch", "s", [bb.Record(b"a"), bb.Record.json([1])], idempotency_key="k-1")
    assert res.replayed is True and fake.seen[0].headers["idempotency-key"] == "k-1"


def test_without_key_only_what_stored_nothing_is_retried(fake: FakeServer, call: Any) -> None:
    opts = dict(FAST, generate_idempotency_keys=False)
    fake.add(err(503, "no_leader"), Reply(201, APPEND_OK))
    call(fake.url, opts, "append", "s", bb.Record(b"x"))  # 503 no_leader stores nothing: retried
    assert "idempotency-key" not in fake.seen[0].headers and len(fake.seen) == 2
    fake.add(err(502, "bad_gateway"))
    with pytest.raises(bb.UnavailableError):  # a 502 may have stored it: not retried without a key
        call(fake.url, opts, "append", "s", bb.Record(b"x"))
    assert len(fake.seen) == 3
    fake.add(err(503, "unavailable"))
    with pytest.raises(bb.UnavailableError):  # 503 unavailable: the outcome is unknown
        call(fake.url, opts, "append", "s", bb.Record(b"x"))
    assert len(fake.seen) == 4


def test_retry_after_is_honoured_and_capped(fake: FakeServer, call: Any) -> None:
    fake.add(err(429, "rate_limited", headers={"Retry-After": "1"}), Reply(201, APPEND_OK))
    t = time.monotonic()
    call(fake.url, FAST, "append", "s", bb.Record(b"x"))
    assert time.monotonic() - t >= 0.95 and len(fake.seen) == 2
    fake.add(err(429, "rate_limited", headers={"Retry-After": "60"}))
    with pytest.raises(bb.RateLimitedError) as ei:
        call(fake.url, FAST, "append", "s", bb.Record(b"x"))
    assert ei.value.retry_after == 60 and len(fake.seen) == 3  # longer than max_retry_after: not waited for


def test_no_leader_is_retried(fake: FakeServer, call: Any) -> None:
    fake.add(err(503, "no_leader", headers={"Retry-After": "0"}), Reply(201, APPEND_OK))
    assert call(fake.url, FAST, "append", "s", bb.Record(b"x")).count == 1


def test_max_retries_and_500_for_reads_only(fake: FakeServer, call: Any) -> None:
    fake.add(*[err(503, "unavailable")] * 3)
    with pytest.raises(bb.UnavailableError):
        call(fake.url, dict(FAST, max_retries=2), "streams")
    assert len(fake.seen) == 3
    fake.add(err(500, "internal"), Reply(200, {"stream": "s", "name": "c", "offset": 4}))
    assert call(fake.url, FAST, "cursor", "s", "c") == 4
    fake.add(err(500, "internal"))
    with pytest.raises(bb.InternalError):
        call(fake.url, FAST, "append", "s", bb.Record(b"x"))
    assert len(fake.seen) == 6


def test_backoff_is_exponential_with_full_jitter() -> None:
    o = bb.ClientOptions(retry_backoff=0.1, max_backoff=1.0, max_retries=11)
    req = w.Request("GET", "/")
    e = bb.UnavailableError("x", status=503)
    for attempt, cap in ((0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (10, 1.0)):
        ds = [w.retry_delay(e, attempt, o, req) for _ in range(200)]
        assert all(d is not None and 0 <= d <= cap for d in ds)
        assert max(ds) > cap * 0.5  # spread over [0, cap]
    assert w.retry_delay(e, 11, o, req) is None  # max_retries


def test_connection_refused_is_retried_then_connection_error(call: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(bb.ConnectionFailedError) as ei:
        call(f"http://127.0.0.1:{port}", dict(FAST, max_retries=2, generate_idempotency_keys=False),
             "append", "s", bb.Record(b"x"))
    assert ei.value.code == "connection" and ei.value.status is None


def test_timeouts(fake: FakeServer, call: Any) -> None:
    fake.add(Reply(200, {"streams": []}, delay=0.6), Reply(200, {"streams": []}))
    t = time.monotonic()
    assert call(fake.url, dict(FAST, request_timeout=0.2), "streams") == []  # first attempt timed out, retried
    assert time.monotonic() - t < 0.6 + 0.5
    fake.add(Reply(200, {"streams": []}, delay=0.6))
    with pytest.raises(bb.RequestTimeoutError) as ei:
        call(fake.url, FAST, "streams", timeout=0.2)  # the per-call deadline
    assert ei.value.code == "timeout"


# ------------------------------------------------------------------ redirects


def test_redirect_to_leader_keeps_token(fake: FakeServer, call: Any) -> None:
    leader = FakeServer()
    try:
        leader.add(Reply(201, APPEND_OK))
        fake.add(err(307, "not_leader", headers={"Location": leader.url + "/v1/streams/s/records", "Leader-Id": "2"}))
        call(fake.url, dict(FAST, token="tok-0123456789abcdef"), "append", "s", bb.Record(b"x"), idempotency_key="k")
        got = leader.seen[0]
        assert got.method == "POST" and got.headers["authorization"] == "Bearer tok-0123456789abcdef"
        assert got.headers["idempotency-key"] == "k" and b'"value_base64":"eA=="' in got.body
    finally:
        leader.close()


def test_redirect_without_leader_id_drops_token(fake: FakeServer, call: Any) -> None:
    other = FakeServer()
    try:
        other.add(Reply(200, {"streams": []}))
        fake.add(Reply(307, b"", {"Location": other.url + "/v1/streams"}))
        call(fake.url, dict(FAST, token="tok-0123456789abcdef"), "streams")
        assert "authorization" not in other.seen[0].headers
    finally:
        other.close()


def test_redirect_never_keeps_token_from_https_to_http() -> None:
    ans = w.Answer(307, {"location": "http://leader:1/v1/streams/s/records", "leader-id": "2"}, b"")
    hop = w.redirect_target("https://follower:1/v1/streams/s/records", ans, {"Authorization": "Bearer t"})
    assert hop is not None and "Authorization" not in hop[1]
    ans.headers["location"] = "https://leader:1/x"
    hop = w.redirect_target("https://follower:1/v1/streams/s/records", ans, {"Authorization": "Bearer t"})
    assert hop is not None and hop[1]["Authorization"] == "Bearer t"
    ans.headers["location"] = "ftp://leader/x"
    assert w.redirect_target("https://f/x", ans, {}) is None


# ------------------------------------------------------------------ requests


def test_request_shapes(fake: FakeServer, call: Any) -> None:
    from datetime import datetime, timezone

    page = {"records": [{"offset": 3, "seq": 9, "timestamp": "2026-01-01T00:00:00.123456789Z", "key_base64": "/w==",
                         "value": {"a": [1, 2]}}], "next_offset": 4}
    fake.add(Reply(200, page))
    p = call(fake.url, FAST, "read", "a b/c", datetime(2026, 1, 1, 1, tzinfo=timezone.utc), 5)
    assert fake.seen[-1].path == "/v1/streams/a%20b%2Fc/records?from_time=2026-01-01T01%3A00%3A00Z&limit=5"
    r = p.records[0]
    assert (r.offset, r.seq, r.is_json, r.json(), r.stream) == (3, 9, True, {"a": [1, 2]}, "a b/c")
    assert r.timestamp == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert r.key == b"\xff".decode("utf-8", "surrogateescape")
    fake.add(Reply(200, {"records": [], "next_seq": 12}))
    assert call(fake.url, FAST, "read_global", 10, 2).next_seq == 12
    assert fake.seen[-1].path == "/v1/records?from_seq=10&limit=2"
    fake.add(Reply(200, {"stream": "s", "name": "c", "offset": 2}))
    call(fake.url, FAST, "set_cursor", "s", "c", 2)
    assert fake.seen[-1].method == "PUT" and fake.seen[-1].body == b'{"offset": 2}'
    for bad in (-1, True, "x"):
        with pytest.raises(bb.InvalidOptionsError):
            call(fake.url, FAST, "read", "s", bad)


# ------------------------------------------------------------------ tails


def _tail_take(mode: str, url: str, n: int, from_: Any = "earliest", **opts: Any) -> list[bb.StoredRecord]:
    if mode == "sync":
        with bb.Client(url, **FAST, **opts) as c, c.tail("s", from_) as t:
            return [next(t) for _ in range(n)]

    async def go() -> list[bb.StoredRecord]:
        async with bb.AsyncClient(url, **FAST, **opts) as c:
            t = await c.tail("s", from_)
            out = [await anext(t) for _ in range(n)]
            await t.aclose()
            return out
    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tail_resumes_with_last_event_id_no_gap_no_duplicate(fake: FakeServer, mode: str) -> None:
    fake.add(
        Reply(200, sse=[b"retry: 1000\n\n", sse_record(0), b": keep-alive\n\n", sse_record(1)],
              headers={"Stream-Next-Offset": "0"}),
        err(503, "unavailable", headers={"Retry-After": "0"}),
        Reply(200, sse=[sse_record(1), sse_record(2)[:10]]),  # a duplicate, then a torn event
        Reply(200, sse=[sse_record(2), sse_record(3)]),
    )
    recs = _tail_take(mode, fake.url, 4)
    assert [r.offset for r in recs] == [0, 1, 2, 3]
    assert [r.json() for r in recs] == [0, 1, 2, 3]
    assert fake.seen[0].headers["accept"] == "text/event-stream" and "last-event-id" not in fake.seen[0].headers
    assert fake.seen[1].headers["last-event-id"] == "1" and "from=2" in fake.seen[1].path
    assert fake.seen[3].headers["last-event-id"] == "1"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tail_pins_latest_before_the_first_record(fake: FakeServer, mode: str) -> None:
    fake.add(Reply(200, sse=[b": hi\n\n"], headers={"Stream-Next-Offset": "42"}),
             Reply(200, sse=[sse_record(42)]))
    assert [r.offset for r in _tail_take(mode, fake.url, 1, "latest")] == [42]
    assert "from=latest" in fake.seen[0].path and "from=42" in fake.seen[1].path


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tail_permanent_errors_end_it(fake: FakeServer, mode: str) -> None:
    fake.add(err(404, "not_found"))
    with pytest.raises(bb.NotFoundError):
        _tail_take(mode, fake.url, 1)
    fake.add(Reply(200, sse=[sse_record(0), b'event: error\ndata: {"error":{"code":"gone","message":"below"}}\n\n']))
    with pytest.raises(bb.GoneError):
        _tail_take(mode, fake.url, 2)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tail_idle_timeout_reconnects(fake: FakeServer, mode: str) -> None:
    # The first connection sends one record, then goes silent (no keep-alive)
    # for longer than tail_idle_timeout: the tail reopens and resumes at 1.
    fake.add(Reply(200, sse=[sse_record(0)], hold=3.0), Reply(200, sse=[sse_record(1)]))
    t = time.monotonic()
    assert [r.offset for r in _tail_take(mode, fake.url, 2, tail_idle_timeout=0.4)] == [0, 1]
    assert time.monotonic() - t < 2.5
    assert fake.seen[1].headers["last-event-id"] == "0"


def test_sync_tail_close_from_another_thread(fake: FakeServer) -> None:
    gate = threading.Event()

    def hang(seen: Any) -> Reply:
        gate.wait(5)
        return Reply(200, sse=[])
    fake.add(Reply(200, sse=[sse_record(0)]), hang)
    with bb.Client(fake.url, **FAST) as c:
        t = c.tail("s")
        assert next(t).offset == 0
        threading.Timer(0.3, t.close).start()
        with pytest.raises(StopIteration):
            next(t)
    gate.set()


def test_sse_parser_handles_split_input_crlf_and_multiline_data() -> None:
    p = w.SSEParser()
    raw = b"id: 1\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n: c\n\nid: 2\ndata: z\n\n"
    out = []
    for i in range(len(raw)):
        out += p.feed(raw[i:i + 1])
    assert out == [(b"1", b"x", b"a\nb"), (b"2", None, b"z")]


# ------------------------------------------------------------------ concurrency


def test_sync_client_is_safe_across_threads(fake: FakeServer) -> None:
    fake.add(*[Reply(201, APPEND_OK)] * 64)
    with bb.Client(fake.url, **FAST) as c:
        results: list[Any] = []

        def work() -> None:
            for _ in range(8):
                results.append(c.append("s", bb.Record(b"x")))
        ts = [threading.Thread(target=work) for _ in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
    assert len(results) == 64 and len({s.headers["idempotency-key"] for s in fake.seen}) == 64


def test_async_client_is_safe_across_tasks(fake: FakeServer) -> None:
    fake.add(*[Reply(201, APPEND_OK)] * 64)

    async def go() -> list[Any]:
        async with bb.AsyncClient(fake.url, **FAST) as c:
            return await asyncio.gather(*[c.append("s", bb.Record(b"x")) for _ in range(64)])
    assert len(asyncio.run(go())) == 64
