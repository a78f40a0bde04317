"""The shared conformance suite (clients/conformance): every case, through the public API,
for the sync client and the asyncio client, against real servers (servers.json)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import secrets
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import badbatch as bb
from conftest import CONF, Server, Servers

# The shared cases, then this runner's own checks of every op (tests/cases).
CASES = sorted((CONF / "cases").glob("*.json")) + sorted((Path(__file__).parent / "cases").glob("*.json"))
TOKENS: dict[str, str] = json.loads((CONF / "tokens.json").read_text())
TRANSIENT = {"rate_limited", "unavailable", "no_leader"}


# ------------------------------------------------------------------ values


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, objects ignore order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def instant(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v).replace("z", "Z"))


def fill(spec: dict[str, Any]) -> bytes:
    unit = spec["text"].encode("utf-8")
    n = int(spec["length"])
    if n == 0:
        return b""
    return (unit * (n // max(len(unit), 1) + 1))[:n]


def to_record(r: dict[str, Any]) -> bb.Record:
    ts = instant(r["timestamp"]) if r.get("timestamp") is not None else None
    common: dict[str, Any] = dict(key=r.get("key"), headers=r.get("headers") or {}, timestamp=ts)
    if "value" in r:
        return bb.Record.json(r["value"], **common)
    if "value_base64" in r:
        return bb.Record(base64.b64decode(r["value_base64"]), **common)
    if "value_fill" in r:
        return bb.Record(fill(r["value_fill"]), **common)
    return bb.Record(b"", **common)


def as_dict(v: Any) -> Any:
    """A result as plain data, for references and result checks."""
    if isinstance(v, bb.Page):
        return {"records": [as_dict(r) for r in v.records], "next_offset": v.next_offset}
    if isinstance(v, bb.GlobalPage):
        return {"records": [as_dict(r) for r in v.records], "next_seq": v.next_seq}
    if isinstance(v, (bb.AppendResult, bb.StreamInfo, bb.StoredRecord)):
        return {f: getattr(v, f) for f in v.__dataclass_fields__}
    if isinstance(v, list):
        return [as_dict(x) for x in v]
    return v


def short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 600 else r[:600] + "..."


class Run:
    """One run of one case: its suffix, saved results, and reference resolution."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.case = case
        self.suffix = "-" + secrets.token_hex(4)
        self.saved: dict[str, Any] = {}

    def resolve(self, v: Any) -> Any:
        if isinstance(v, dict):
            if "ref" in v and set(v) <= {"ref", "plus"}:
                ident, *path = str(v["ref"]).split(".")
                if ident not in self.saved:
                    raise AssertionError(f"reference to {ident!r}, which no earlier step saved")
                cur: Any = self.saved[ident]
                for p in path:
                    cur = cur[int(p)] if isinstance(cur, list) else cur[p]
                return cur + v["plus"] if "plus" in v else cur
            return {k: self.resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        return v

    def stream(self, step: dict[str, Any], name: str) -> str:
        return name if step.get("raw_stream") else name + self.suffix

    def position(self, v: Any) -> bb.Position:
        v = self.resolve(v)
        if isinstance(v, dict) and "time" in v:
            return instant(v["time"])
        return v  # "earliest", "latest" or an offset


# ------------------------------------------------------------------ checks


def check_record(got: bb.StoredRecord, want: dict[str, Any], where: str, run: Run, step: dict[str, Any]) -> None:
    for field, w in want.items():
        if field == "offset":
            assert got.offset == w, f"{where}: offset {got.offset}, want {w}"
        elif field == "seq":
            assert got.seq == w, f"{where}: seq {got.seq}, want {w}"
        elif field == "stream":
            assert got.stream == run.stream(step, w), f"{where}: stream {got.stream!r}, want {w!r}+suffix"
        elif field == "key":
            assert got.key == w, f"{where}: key {got.key!r}, want {w!r}"
        elif field == "headers":
            assert dict(got.headers) == (w or {}), f"{where}: headers {dict(got.headers)!r}, want {w!r}"
        elif field == "timestamp":
            assert got.timestamp == instant(w), f"{where}: timestamp {got.timestamp}, want {w}"
        elif field == "value":
            assert got.is_json, f"{where}: a binary value {short(got.value)}, want the JSON {short(w)}"
            assert json_equal(got.json(), w), f"{where}: value {short(got.value)}, want {short(w)}"
        elif field == "value_base64":
            want_b = base64.b64decode(w)
            assert not got.is_json, f"{where}: a JSON value {short(got.value)}, want bytes {short(want_b)}"
            assert got.value == want_b, f"{where}: value {short(got.value)}, want {short(want_b)}"
        elif field == "value_fill":
            want_b = fill(w)
            assert not got.is_json and got.value == want_b, f"{where}: value of {len(got.value)} bytes differs from the fill"
        else:
            raise AssertionError(f"{where}: the case checks an unknown record field {field!r}")


def check_records(got: list[bb.StoredRecord], want: list[dict[str, Any]], where: str, run: Run,
                  step: dict[str, Any]) -> None:
    assert len(got) == len(want), (
        f"{where}: {len(got)} records (offsets {[r.offset for r in got]}), want {len(want)}")
    for i, (g, wr) in enumerate(zip(got, want)):
        check_record(g, run.resolve(wr), f"{where} record {i}", run, step)


def check_result(got: Any, want: dict[str, Any], where: str, run: Run, step: dict[str, Any]) -> None:
    d = as_dict(got)
    for field, w in run.resolve(want).items():
        assert isinstance(d, dict) and field in d, f"{where}: the result has no field {field!r} ({d!r})"
        g = d[field]
        if field == "stream":
            w = run.stream(step, w)
        if isinstance(g, datetime) or field.endswith("timestamp"):
            assert (g is None and w is None) or (g is not None and w is not None and instant(g) == instant(w)), \
                f"{where}: {field} {g}, want {w}"
        else:
            assert json_equal(g, w), f"{where}: {field} {g!r}, want {w!r}"


# ------------------------------------------------------------------ drivers


DURATIONS = {"retry_backoff", "max_backoff", "max_retry_after", "request_timeout", "connect_timeout",
             "tail_idle_timeout"}


def option_value(name: str, v: Any) -> Any:
    """A vocabulary option's value as ClientOptions takes it (durations in seconds)."""
    if name in DURATIONS and isinstance(v, str):
        for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
            if v.endswith(unit) and v[: -len(unit)].replace(".", "", 1).isdigit():
                return float(v[: -len(unit)]) * scale
    return v


class Driver:
    """The client side of a run: one client per (token, retries); sync or async."""

    def __init__(self, server: Server, tokens: bool, is_async: bool, client_options: dict[str, Any]) -> None:
        self.server, self.tokens, self.is_async = server, tokens, is_async
        self.client_options = {k: option_value(k, v) for k, v in client_options.items()}
        self.clients: dict[tuple[str | None, bool], Any] = {}
        self.tails: dict[str, Any] = {}

    def client(self, token_name: str | None, no_retries: bool) -> Any:
        name = token_name if token_name is not None else ("admin" if self.tokens else None)
        k = (name, no_retries)
        if k not in self.clients:
            kw: dict[str, Any] = dict(retry_backoff=0.05, max_backoff=1.0)
            kw.update(self.client_options)  # the profile's (servers.json)
            kw["token"] = TOKENS[name] if name else None
            if no_retries:
                kw["max_retries"] = 0  # a transient kind the step expects would be retried away
            opts = bb.ClientOptions(**kw)
            self.clients[k] = (bb.AsyncClient if self.is_async else bb.Client)(self.server.url, opts)
        return self.clients[k]

    async def call(self, c: Any, method: str, *args: Any, **kw: Any) -> Any:
        r = getattr(c, method)(*args, **kw)
        return await r if self.is_async else r

    async def close(self) -> None:
        for t in self.tails.values():
            await self.close_tail(t)
        for c in self.clients.values():
            if self.is_async:
                await c.aclose()
            else:
                c.close()

    async def close_tail(self, t: Any) -> None:
        if isinstance(t, BaseException):
            return
        if self.is_async:
            await t.aclose()
        else:
            t.close()

    async def tail_next(self, t: Any, count: int, timeout: float) -> list[bb.StoredRecord]:
        if isinstance(t, BaseException):
            raise t  # met when the tail opened: the outcome of its first tail_next
        out: list[bb.StoredRecord] = []
        if self.is_async:
            async def take() -> None:
                while len(out) < count:
                    out.append(await anext(t))
            try:
                await asyncio.wait_for(take(), timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"tail_next: {len(out)} of {count} records within {timeout} s") from None
            return out
        timer = threading.Timer(timeout, t.close)  # closing ends a blocked next() with StopIteration
        timer.start()
        try:
            while len(out) < count:
                try:
                    out.append(next(t))
                except StopIteration:
                    raise AssertionError(f"tail_next: {len(out)} of {count} records within {timeout} s") from None
        finally:
            timer.cancel()
        return out


async def run_step(run: Run, drv: Driver, servers: Servers, profile: str, step: dict[str, Any], where: str) -> None:
    op = step["op"]
    expect = step.get("expect") or {}
    want_error = expect.get("error")
    c = drv.client(step.get("token"), want_error in TRANSIENT)
    s = (lambda: run.stream(step, step["stream"]))

    async def do() -> Any:
        if op == "append":
            recs = [to_record(run.resolve(r)) for r in step["records"]]
            kw: dict[str, Any] = {}
            if "expected_last_offset" in step:
                kw["expected_last_offset"] = run.resolve(step["expected_last_offset"])
            if "idempotency_key" in step:
                kw["idempotency_key"] = run.resolve(step["idempotency_key"])
            if "stream_seq" in step:
                kw["stream_seq"] = run.resolve(step["stream_seq"])
            if len(recs) == 1:
                return await drv.call(c, "append", s(), recs[0], **kw)
            return await drv.call(c, "append_batch", s(), recs, **kw)
        if op == "read":
            return await drv.call(c, "read", s(), run.position(step.get("from", "earliest")),
                                  run.resolve(step.get("limit")))
        if op == "read_all":
            pos: bb.Position = run.position(step.get("from", "earliest"))
            got: list[bb.StoredRecord] = []
            for _ in range(100000):
                page = await drv.call(c, "read", s(), pos, run.resolve(step.get("limit")))
                if not page.records:
                    return got
                got.extend(page.records)
                pos = page.next_offset
            raise AssertionError("read_all: too many pages")
        if op == "read_global":
            return await drv.call(c, "read_global", run.resolve(step.get("from_seq", 0)),
                                  run.resolve(step.get("limit")))
        if op == "streams":
            return await drv.call(c, "streams")
        if op == "stream_info":
            return await drv.call(c, "stream_info", s())
        if op == "set_cursor":
            return await drv.call(c, "set_cursor", s(), step["name"], run.resolve(step["offset"]))
        if op == "cursor":
            return {"offset": await drv.call(c, "cursor", s(), step["name"])}
        if op == "tail_open":
            try:
                t = c.tail(s(), run.position(step.get("from", "earliest")))  # connects now
                drv.tails[step["tail"]] = (await t) if drv.is_async else t
            except bb.BadBatchError as e:
                if want_error is not None:
                    raise
                drv.tails[step["tail"]] = e  # kept for the next tail_next (README: a tail's error)
            return None
        if op == "tail_next":
            return await drv.tail_next(drv.tails[step["tail"]], int(step["count"]),
                                       float(step.get("timeout_ms", 10000)) / 1000)
        if op == "tail_close":
            await drv.close_tail(drv.tails.pop(step["tail"]))
            return None
        if op == "restart":
            await asyncio.get_running_loop().run_in_executor(None, drv.server.restart)
            return None
        raise AssertionError(f"{where}: unknown op {op!r}")

    try:
        result = await do()
    except bb.BadBatchError as e:
        if want_error is None:
            raise AssertionError(f"{where}: {op} failed: {e!r}") from e
        assert e.code == want_error or type(e).kind == want_error, f"{where}: error {e!r}, want kind {want_error}"
        assert isinstance(e, bb.ERROR_KINDS.get(want_error, bb.BadBatchError)), f"{where}: {type(e).__name__}"
        if "status" in expect:
            assert e.status == expect["status"], f"{where}: status {e.status}, want {expect['status']}"
        if "current_last_offset" in expect:
            assert isinstance(e, bb.OffsetMismatchError)
            assert e.current_last_offset == run.resolve(expect["current_last_offset"]), (
                f"{where}: current_last_offset {e.current_last_offset}, want {expect['current_last_offset']}")
        return
    assert want_error is None, f"{where}: {op} succeeded ({short(as_dict(result))}), want error {want_error}"
    if "id" in step:
        run.saved[step["id"]] = as_dict(result)
    if "result" in expect:
        check_result(result, expect["result"], where, run, step)
    if "records" in expect:
        recs = result.records if isinstance(result, (bb.Page, bb.GlobalPage)) else result
        check_records(recs, expect["records"], where, run, step)
    if "streams_include" in expect:
        names = {i.stream for i in result}
        for n in expect["streams_include"]:
            assert run.stream(step, n) in names, f"{where}: {run.stream(step, n)!r} not in {sorted(names)}"


async def run_case(path: Path, servers: Servers, is_async: bool) -> None:
    case = json.loads(path.read_text())
    profile = case.get("profile", "default")
    # The sync and the async runs have servers of their own, so that one's
    # rate-limit buckets or restarts never meet the other's.
    server = servers.get(profile, "async" if is_async else "sync")
    run = Run(case)
    spec = servers.profiles[profile]
    drv = Driver(server, bool(spec.get("tokens")), is_async, spec.get("client_options") or {})
    try:
        for i, step in enumerate(case["steps"]):
            await run_step(run, drv, servers, profile, step, f"{case['name']} step {i} ({step['op']})")
    finally:
        await drv.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("path", CASES, ids=[("" if p.parent.parent == CONF else "local-") + p.stem for p in CASES])
def test_case(path: Path, mode: str, servers: Servers) -> None:
    asyncio.run(run_case(path, servers, mode == "async"))
