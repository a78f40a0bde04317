"""Property tests of the record encoding: JSON vs binary values, unicode keys and headers,
timestamps. Offline (the wire form against a model of the server) and through a real server."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import badbatch as bb
from badbatch import _wire as w

# UTF-8-encodable text (no surrogates); the server refuses empty header names.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
name = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
keys = st.none() | name
headers = st.dictionaries(name, text, max_size=4)
# The server keeps nanoseconds since 1970 in an int64: 1677-09-22 to 2262-04-11.
instants = st.datetimes(min_value=datetime(1678, 1, 1), max_value=datetime(2262, 1, 1),
                        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                                   timezone(timedelta(hours=-8))]))
# Without the target phase, whose Pareto optimisation takes half a minute here.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
    | st.floats(allow_nan=False, allow_infinity=False, width=64),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
    max_leaves=12,
)


@st.composite
def records(draw: Any) -> bb.Record:
    common = dict(key=draw(keys), headers=draw(headers), timestamp=draw(st.none() | instants))
    if draw(st.booleans()):
        return bb.Record.json(draw(json_values), **common)
    return bb.Record(draw(st.binary(max_size=64)), **common)


def server_model(wire: dict[str, Any], offset: int) -> dict[str, Any]:
    """What the server answers for a record it was sent (docs/http-api.md)."""
    out: dict[str, Any] = {"offset": offset, "seq": 100 + offset,
                           "timestamp": wire.get("timestamp", "2026-01-01T00:00:00.000000001Z")}
    if wire.get("key"):
        out["key"] = wire["key"]
    if wire.get("headers"):
        out["headers"] = wire["headers"]
    if "value" in wire:
        out["value"] = wire["value"]
    else:
        out["value_base64"] = wire.get("value_base64", "")
    return out


def same(r: bb.Record, got: bb.StoredRecord) -> None:
    assert got.key == (r.key or None)  # an empty key reads back as none
    assert dict(got.headers) == dict(r.headers)
    assert got.is_json == r.is_json
    if r.is_json:
        assert got.json() == json.loads(r.value)
    else:
        assert got.value == r.value
    if r.timestamp is not None:
        assert got.timestamp == r.timestamp  # the same instant
        assert got.timestamp.tzinfo == timezone.utc


@given(st.lists(records(), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])
def test_wire_round_trip(recs: list[bb.Record]) -> None:
    body = json.loads(w.encode_records(recs))
    assert set(body) == {"records"} and len(body["records"]) == len(recs)
    for i, (r, wire) in enumerate(zip(recs, body["records"])):
        assert set(wire) <= {"key", "value", "value_base64", "headers", "timestamp"}
        assert not ("value" in wire and "value_base64" in wire)
        if not r.is_json and r.value:
            assert base64.b64decode(wire["value_base64"], validate=True) == r.value
        if r.timestamp is not None:
            assert wire["timestamp"].endswith("Z")
        got = w.decode_stored(json.loads(json.dumps(server_model(wire, i))), "s")
        assert got.offset == i and got.stream == "s"
        same(r, got)


@given(instants)
@settings(max_examples=300, deadline=None, phases=PHASES)
def test_timestamps_round_trip(ts: datetime) -> None:
    s = w.format_timestamp(ts)
    assert w.parse_timestamp(s) == ts
    # Nanoseconds from the server are cut to microseconds.
    ns = s[:-1] + ("789Z" if "." in s else ".000000789Z")
    assert w.parse_timestamp(ns) == ts


def test_naive_timestamps_are_refused() -> None:
    import pytest

    with pytest.raises(bb.InvalidOptionsError):
        w.encode_records([bb.Record(b"", timestamp=datetime(2026, 1, 1))])


@given(st.lists(records(), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
def test_round_trip_through_the_server(server_url: str, admin_token: str, recs: list[bb.Record]) -> None:
    import secrets

    stream = "prop-" + secrets.token_hex(6)
    with bb.Client(server_url, token=admin_token) as c:
        res = c.append_batch(stream, recs) if len(recs) > 1 else c.append(stream, recs[0])
        assert (res.first_offset, res.last_offset, res.count) == (0, len(recs) - 1, len(recs))
        page = c.read(stream, "earliest", 100)
    assert [g.offset for g in page.records] == list(range(len(recs)))
    for r, got in zip(recs, page.records):
        same(r, got)


sse_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)


@st.composite
def sse_streams(draw: Any) -> tuple[bytes, list[tuple[bytes | None, bytes | None, bytes]]]:
    """An SSE stream (records, comments, error events, multi-line data; LF or CRLF) and its events."""
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    out: list[str] = []
    events: list[tuple[bytes | None, bytes | None, bytes]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["record", "comment", "error", "multi"]))
        if kind == "comment":
            out.append(":" + draw(sse_text) + nl + nl)
            continue
        data = [draw(sse_text) for _ in range(draw(st.integers(1, 3)) if kind == "multi" else 1)]
        ident = str(draw(st.integers(0, 10**6))) if kind != "error" else None
        event = "error" if kind == "error" else None
        lines = ([f"id: {ident}"] if ident else []) + ([f"event: {event}"] if event else [])
        lines += [f"data: {d}" for d in data]
        out.append(nl.join(lines) + nl + nl)
        events.append((ident.encode() if ident else None, event.encode() if event else None,
                       "\n".join(data).encode()))
    return "".join(out).encode(), events


@given(sse_streams(), st.lists(st.integers(1, 40), max_size=20))
@settings(max_examples=300, deadline=None, phases=PHASES)
def test_sse_parser_any_chunking(stream: tuple[bytes, list[Any]], cuts: list[int]) -> None:
    raw, want = stream
    p = w.SSEParser()
    got: list[Any] = []
    i = 0
    for n in cuts:
        got += p.feed(raw[i:i + n])
        i += n
    got += p.feed(raw[i:])
    # The fast path (id + one data line) and the line-by-line path agree, whatever the cuts;
    # an event whose only data line is empty is still an event ("data: " dispatches "").
    assert got == want
