"""The wire format and the policies both clients share (no I/O here)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, TypeVar
from urllib.parse import quote, urlencode, urljoin, urlsplit

from .errors import (
    BadBatchError,
    NoLeaderError,
    ConnectionFailedError,
    InternalError,
    InvalidOptionsError,
    RequestTimeoutError,
    error_from_answer,
)
from .models import AppendResult, GlobalPage, Page, Position, Producer, Record, StoredRecord, StreamConfig, StreamInfo
from .options import ClientOptions

T = TypeVar("T")

MAX_REDIRECTS = 10


# ---------------------------------------------------------------- requests


@dataclass(slots=True)
class Request:
    """One logical request (all its attempts and redirects)."""

    method: str
    path: str  # path and query, relative to the base URL
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    # True when resending it can never store twice (reads, cursor writes,
    # appends under an idempotency key).
    idempotent: bool = True
    # True for reads: a 500 is retried.
    read: bool = True


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def retry_delay(err: BadBatchError, attempt: int, opts: ClientOptions, req: Request) -> float | None:
    """How long to wait before retrying ``req`` after ``err`` on attempt ``attempt`` (0-based), or None."""
    if attempt >= opts.max_retries:
        return None
    status = err.status
    if isinstance(err, ConnectionFailedError):
        if not (req.idempotent or not err.sent):
            return None
    elif isinstance(err, RequestTimeoutError):
        if not req.idempotent:
            return None
    elif status == 429 or isinstance(err, NoLeaderError):
        pass  # stores nothing: always safe
    elif status == 503:
        # unavailable: a journal failed mid-write or a store closed under
        # the append; its outcome is unknown.
        if not req.idempotent:
            return None
    elif status in (502, 504):
        if not req.idempotent:
            return None
    elif status == 500:
        if not req.read:
            return None
    else:
        return None
    cap = min(opts.max_backoff, opts.retry_backoff * (2 ** min(attempt, 30)))
    delay = random.uniform(0, cap)  # full jitter
    if err.retry_after is not None:
        if err.retry_after > opts.max_retry_after:
            return None
        delay = max(delay, err.retry_after)
    return delay


def new_idempotency_key() -> str:
    """128 random bits, hex."""
    return secrets.token_hex(16)


def redirect_target(base_url: str, answer: Answer, req_headers: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """The URL and headers of a 307/308 redirect's next hop, or None if it cannot be followed.

    The bearer token is kept only when the answer names the leader
    (``Leader-Id``), and never from https to http.
    """
    loc = answer.headers.get("location")
    if not loc:
        return None
    target = urljoin(base_url, loc)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    headers = dict(req_headers)
    if "Authorization" in headers:
        keep = bool(answer.headers.get("leader-id")) and not (
            urlsplit(base_url).scheme == "https" and parts.scheme != "https"
        )
        if not keep:
            del headers["Authorization"]
    return target, headers


def raise_for_answer(answer: Answer) -> None:
    if not 200 <= answer.status < 300:
        raise error_from_answer(answer.status, answer.headers, answer.body)


# ---------------------------------------------------------------- encoding


def format_timestamp(ts: datetime) -> str:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidOptionsError("a record's timestamp must be timezone-aware (e.g. tzinfo=timezone.utc)")
    s = ts.astimezone(timezone.utc).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def parse_timestamp(s: str) -> datetime:
    """An RFC 3339 instant, in UTC (nanoseconds are cut to microseconds)."""
    dt = datetime.fromisoformat(s)
    if s[-1:] == "Z":
        return dt  # its tzinfo is timezone.utc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    elif dt.utcoffset():
        dt = dt.astimezone(timezone.utc)
    return dt


_json_str = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_b2a = binascii.b2a_base64


def encode_record(r: Record) -> str:
    """A record's wire form as JSON text (a JSON record's value spliced in raw).

    Built by hand from one cached string encoder: a batch of 100 small records
    spent most of its client time in json.dumps' per-call setup.
    """
    if not isinstance(r, Record):
        raise InvalidOptionsError(f"records must be badbatch.Record, not {type(r).__name__}")
    parts: list[str] = []
    if r.key is not None:
        if not isinstance(r.key, str):
            raise InvalidOptionsError("a record's key must be a str or None")
        parts.append('"key":' + _json_str(r.key))
    if r.headers:
        hs: list[str] = []
        for k, v in r.headers.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidOptionsError("a record's headers must map str to str")
            hs.append(_json_str(k) + ":" + _json_str(v))
        parts.append('"headers":{' + ",".join(hs) + "}")
    if r.timestamp is not None:
        parts.append('"timestamp":"' + format_timestamp(r.timestamp) + '"')
    value = r.value
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidOptionsError(f"a record's value must be bytes, not {type(value).__name__} (use Record.json for JSON)")
    if r.is_json:
        text = bytes(value).decode("utf-8")
        if not text.strip():
            raise InvalidOptionsError("a JSON record needs a JSON value")
        # Splice the caller's JSON text in as is: the server checks it, and
        # compacts it when it reads back.
        parts.append('"value":' + text)
    elif value:
        parts.append('"value_base64":"' + _b2a(value, newline=False).decode("ascii") + '"')
    return "{" + ",".join(parts) + "}"


def encode_records(records: Iterable[Record]) -> bytes:
    # An empty batch goes to the server, which answers bad_request.
    return ('{"records":[' + ",".join([encode_record(r) for r in records]) + "]}").encode("utf-8")


_raw_decode = json.JSONDecoder().raw_decode
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode


_new_stored = object.__new__


def decode_stored(d: Mapping[str, Any], stream: str | None = None) -> StoredRecord:
    if "value" in d:
        value = _compact(d["value"]).encode("utf-8")
        is_json = True
    else:
        b = d.get("value_base64")
        value = binascii.a2b_base64(b, strict_mode=True) if b else b""
        is_json = False
    key = d.get("key")
    if key is None and "key_base64" in d:
        key = base64.b64decode(d["key_base64"]).decode("utf-8", "surrogateescape")
    # A frozen dataclass, built without its __init__ (which costs 1 us a
    # record in object.__setattr__ calls): tails decode ~100k records/s.
    rec = _new_stored(StoredRecord)
    rec.__dict__.update(
        stream=d.get("stream", stream) or "",
        offset=int(d["offset"]),
        seq=int(d["seq"]),
        timestamp=parse_timestamp(d["timestamp"]),
        value=value,
        key=key,
        headers=d.get("headers") or {},
        is_json=is_json,
    )
    return rec


def _load(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError as e:
        raise InternalError(f"cannot decode the server's answer: {e}", status=answer.status,
                            request_id=answer.headers.get("x-request-id")) from None


def _decoding(fn: Callable[[Answer], T]) -> Callable[[Answer], T]:
    def wrapped(answer: Answer) -> T:
        try:
            return fn(answer)
        except BadBatchError:
            raise
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise InternalError(f"cannot decode the server's answer: {type(e).__name__}: {e}", status=answer.status,
                                request_id=answer.headers.get("x-request-id")) from None
    return wrapped


@_decoding
def decode_append(answer: Answer) -> AppendResult:
    d = _load(answer)
    return AppendResult(
        stream=d["stream"], first_offset=int(d["first_offset"]), last_offset=int(d["last_offset"]),
        count=int(d["count"]), first_seq=int(d["first_seq"]), last_seq=int(d["last_seq"]),
        durability=str(d.get("durability", "")), replayed=bool(d.get("replayed", False)),
    )


def page_decoder(stream: str) -> Callable[[Answer], Page]:
    @_decoding
    def decode(answer: Answer) -> Page:
        d = _load(answer)
        return Page([decode_stored(r, stream) for r in d["records"] or []], int(d["next_offset"]))
    return decode


@_decoding
def decode_global(answer: Answer) -> GlobalPage:
    d = _load(answer)
    return GlobalPage([decode_stored(r) for r in d["records"] or []], int(d["next_seq"]))


def _info(d: Mapping[str, Any]) -> StreamInfo:
    lt, ea, ttl, fo = d.get("last_timestamp"), d.get("expires_at"), d.get("ttl_seconds"), d.get("fork_offset")
    return StreamInfo(stream=d["stream"], first_offset=int(d["first_offset"]), next_offset=int(d["next_offset"]),
                      records=int(d["records"]), bytes=int(d["bytes"]),
                      last_timestamp=parse_timestamp(lt) if lt else None,
                      content_type=d.get("content_type") or None, closed=bool(d.get("closed", False)),
                      ttl_seconds=int(ttl) if ttl else None, expires_at=parse_timestamp(ea) if ea else None,
                      forked_from=d.get("forked_from") or None,
                      # fork_offset is left out at 0: a fork names its source.
                      fork_offset=int(fo or 0) if d.get("forked_from") else None)


@_decoding
def decode_created(answer: Answer) -> bool:
    """A create's answer: True when it created the stream (201), False when it existed (200)."""
    return answer.status == 201


@_decoding
def decode_info(answer: Answer) -> StreamInfo:
    return _info(_load(answer))


@_decoding
def decode_streams(answer: Answer) -> list[StreamInfo]:
    return [_info(d) for d in _load(answer)["streams"] or []]


@_decoding
def decode_cursor(answer: Answer) -> int:
    return int(_load(answer)["offset"])


def decode_nothing(answer: Answer) -> None:
    return None


# ---------------------------------------------------------------- paths


def _seg(name: str, what: str) -> str:
    if not isinstance(name, str):
        raise InvalidOptionsError(f"{what} must be a str, not {type(name).__name__}")
    if not name:
        from .errors import InvalidStreamError

        raise InvalidStreamError(f"{what} must not be empty", status=400)
    return quote(name, safe="")


_MAX_COUNTER = (1 << 53) - 1


def producer_headers(p: Producer) -> dict[str, str]:
    """The Producer-Id, Producer-Epoch and Producer-Seq headers of a producer."""
    if not isinstance(p, Producer):
        raise InvalidOptionsError(f"producer must be a badbatch.Producer, not {type(p).__name__}")
    if not isinstance(p.id, str) or not p.id:
        raise InvalidOptionsError("a producer needs an id")
    if len(p.id.encode()) > 256 or any(ord(c) < 0x20 or ord(c) > 0x7E for c in p.id):
        raise InvalidOptionsError("a producer id is 1 to 256 printable ASCII characters")
    for name, v in (("epoch", p.epoch), ("seq", p.seq)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_COUNTER:
            raise InvalidOptionsError(f"a producer's {name} must be an int from 0 to 2^53-1, not {v!r}")
    return {"Producer-Id": p.id, "Producer-Epoch": str(p.epoch), "Producer-Seq": str(p.seq)}


def stream_config_body(c: StreamConfig) -> dict[str, Any]:
    """The JSON fields of a stream's configuration (only those set)."""
    if not isinstance(c, StreamConfig):
        raise InvalidOptionsError(f"config must be a badbatch.StreamConfig, not {type(c).__name__}")
    body: dict[str, Any] = {}
    if c.content_type is not None:
        if not isinstance(c.content_type, str) or not c.content_type:
            raise InvalidOptionsError("content_type must be a non-empty str or None")
        body["content_type"] = c.content_type
    if c.ttl is not None:
        ttl = c.ttl
        if (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0
                or ttl != int(ttl)):
            raise InvalidOptionsError(f"a TTL is a whole number of seconds > 0 over HTTP, not {ttl!r}")
        body["ttl_seconds"] = int(ttl)
    if c.expires_at is not None:
        if not isinstance(c.expires_at, datetime):
            raise InvalidOptionsError("expires_at must be a datetime")
        body["expires_at"] = format_timestamp(c.expires_at)
    if not isinstance(c.closed, bool):
        raise InvalidOptionsError("closed must be a bool")
    if c.closed:
        body["closed"] = True
    return body


def position_query(pos: Position) -> dict[str, str]:
    if isinstance(pos, datetime):
        return {"from_time": format_timestamp(pos)}
    if isinstance(pos, bool):
        raise InvalidOptionsError("a position is 'earliest', 'latest', an offset or a datetime")
    if isinstance(pos, int):
        if pos < 0:
            raise InvalidOptionsError(f"an offset is >= 0, not {pos}")
        return {"from": str(pos)}
    if pos in ("earliest", "latest"):
        return {"from": pos}
    raise InvalidOptionsError(f"a position is 'earliest', 'latest', an offset or a datetime, not {pos!r}")


def _limit(limit: int | None) -> dict[str, str]:
    if limit is None:
        return {}
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidOptionsError(f"limit must be an int >= 1, not {limit!r}")
    return {"limit": str(limit)}


class Builder:
    """Builds each operation's Request, and holds what every request carries."""

    def __init__(self, base_url: str, opts: ClientOptions) -> None:
        if not isinstance(base_url, str):
            raise InvalidOptionsError("base_url must be a str")
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise InvalidOptionsError(f"base URL {base_url!r}: want http(s)://host[:port][/prefix]")
        try:
            parts.port
        except ValueError as e:
            raise InvalidOptionsError(f"base URL {base_url!r}: {e}") from None
        self.base_url = base_url.rstrip("/")
        self.opts = opts
        self.common: dict[str, str] = {"User-Agent": opts.user_agent}
        if opts.token:
            self.common["Authorization"] = "Bearer " + opts.token

    def url(self, req: Request) -> str:
        return self.base_url + req.path

    def headers(self, req: Request) -> dict[str, str]:
        h = dict(self.common)
        h.update(req.headers)
        return h

    def append(self, stream: str, records: list[Record], expected_last_offset: int | None,
               idempotency_key: str | None, producer: Producer | None = None, close: bool = False,
               stream_seq: str | None = None) -> Request:
        body = encode_records(records)
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if expected_last_offset is not None:
            if isinstance(expected_last_offset, bool) or not isinstance(expected_last_offset, int) or expected_last_offset < -1:
                raise InvalidOptionsError(f"expected_last_offset must be an int >= -1, not {expected_last_offset!r}")
            h["Expected-Last-Offset"] = str(expected_last_offset)
        if producer is not None:
            h.update(producer_headers(producer))
        if not isinstance(close, bool):
            raise InvalidOptionsError(f"close must be a bool, not {close!r}")
        if close:
            h["Stream-Closed"] = "true"
        if stream_seq is not None:
            if not isinstance(stream_seq, str) or not stream_seq or len(stream_seq.encode()) > 256 or any(
                    ord(c) < 0x20 or ord(c) > 0x7E for c in stream_seq):
                raise InvalidOptionsError("stream_seq must be 1 to 256 printable ASCII characters")
            h["Stream-Seq"] = stream_seq
        key = idempotency_key
        if key is not None:
            if not isinstance(key, str) or not key or len(key.encode()) > 256 or any(
                    ord(c) < 0x20 or ord(c) > 0x7E for c in key):
                raise InvalidOptionsError("idempotency_key must be 1 to 256 printable ASCII characters")
        elif self.opts.generate_idempotency_keys:
            key = new_idempotency_key()
        if key is not None:
            h["Idempotency-Key"] = key
        # A producer's seq makes a repeat harmless too: the server answers it
        # with the first result and stores nothing.
        return Request("POST", f"/v1/streams/{_seg(stream, 'stream')}/records", h, body,
                       idempotent=key is not None or producer is not None, read=False)

    def create_stream(self, stream: str, config: StreamConfig | None) -> Request:
        body = stream_config_body(config if config is not None else StreamConfig())
        return self._put_stream(stream, body)

    def fork_stream(self, stream: str, source: str, offset: int, config: StreamConfig | None) -> Request:
        if not isinstance(source, str) or not source:
            raise InvalidOptionsError("a fork's source must be a non-empty str")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidOptionsError(f"a fork offset must be an int >= 0, not {offset!r}")
        body: dict[str, Any] = {"fork": {"stream": source, "offset": offset}}
        if config is not None:
            body.update(stream_config_body(config))
        return self._put_stream(stream, body)

    def _put_stream(self, stream: str, body: dict[str, Any]) -> Request:
        # Safe to retry: an equal configuration again changes nothing.
        return Request("PUT", f"/v1/streams/{_seg(stream, 'stream')}",
                       {"Content-Type": "application/json", "Accept": "application/json"},
                       json.dumps(body).encode(), idempotent=True, read=False)

    def close_stream(self, stream: str) -> Request:
        # Safe to retry: closing a closed stream again is a 200.
        return Request("POST", f"/v1/streams/{_seg(stream, 'stream')}/close", {"Accept": "application/json"},
                       idempotent=True, read=False)

    def delete_stream(self, stream: str) -> Request:
        # Not retried after an unknown outcome: a repeat of a delete that took
        # effect answers not_found.
        return Request("DELETE", f"/v1/streams/{_seg(stream, 'stream')}", {"Accept": "application/json"},
                       idempotent=False, read=False)

    def read(self, stream: str, from_: Position, limit: int | None) -> Request:
        q = position_query(from_)
        q.update(_limit(limit))
        return Request("GET", f"/v1/streams/{_seg(stream, 'stream')}/records?{urlencode(q)}",
                       {"Accept": "application/json"})

    def read_global(self, from_seq: int, limit: int | None) -> Request:
        if isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0:
            raise InvalidOptionsError(f"from_seq must be an int >= 0, not {from_seq!r}")
        q = {"from_seq": str(from_seq)}
        q.update(_limit(limit))
        return Request("GET", f"/v1/records?{urlencode(q)}", {"Accept": "application/json"})

    def streams(self) -> Request:
        return Request("GET", "/v1/streams", {"Accept": "application/json"})

    def stream_info(self, stream: str) -> Request:
        return Request("GET", f"/v1/streams/{_seg(stream, 'stream')}", {"Accept": "application/json"})

    def set_cursor(self, stream: str, name: str, offset: int) -> Request:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidOptionsError(f"a cursor offset must be an int >= 0, not {offset!r}")
        return Request("PUT", f"/v1/streams/{_seg(stream, 'stream')}/cursors/{_seg(name, 'cursor name')}",
                       {"Content-Type": "application/json", "Accept": "application/json"},
                       json.dumps({"offset": offset}).encode(), idempotent=True, read=False)

    def cursor(self, stream: str, name: str) -> Request:
        return Request("GET", f"/v1/streams/{_seg(stream, 'stream')}/cursors/{_seg(name, 'cursor name')}",
                       {"Accept": "application/json"})

    def tail(self, stream: str, from_: Position | None, last: int | None) -> Request:
        h = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last is not None:
            q = {"from": str(last + 1)}
            h["Last-Event-ID"] = str(last)
        else:
            q = position_query(from_ if from_ is not None else "earliest")
        return Request("GET", f"/v1/streams/{_seg(stream, 'stream')}/records?{urlencode(q)}", h)


# ---------------------------------------------------------------- tails


class SSEParser:
    """Server-Sent Events, incrementally: feed bytes, get (id, event, data) events.

    The fast path splits on blank lines and takes the usual ``id: N`` +
    ``data: ...`` event in one step; anything else (comments, ``event:``,
    multi-line data, CRLF line ends) goes through the line-by-line path.
    """

    __slots__ = ("_buf", "_id", "_event", "_data", "_lines")

    def __init__(self) -> None:
        self._buf = b""
        self._id: bytes | None = None
        self._event: bytes | None = None
        self._data: list[bytes] = []
        self._lines = False  # CRLF seen: line by line from now on

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes | None, bytes]]:
        buf = self._buf + chunk if self._buf else chunk
        if self._lines or b"\r" in chunk:
            self._lines = True
            return self._feed_lines(buf)
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        out: list[tuple[bytes | None, bytes | None, bytes]] = []
        for block in blocks:
            if block[:4] == b"id: " and not self._data and self._event is None:
                i = block.find(b"\ndata: ")
                if i > 0 and block.find(b"\n", i + 1) < 0:
                    out.append((block[4:i], None, block[i + 7:]))
                    self._id = None
                    continue
            out.extend(self._feed_lines(block + b"\n\n", keep_rest=False))
        return out

    def _feed_lines(self, buf: bytes, keep_rest: bool = True) -> list[tuple[bytes | None, bytes | None, bytes]]:
        lines = buf.split(b"\n")
        rest = lines.pop()
        if keep_rest:
            self._buf = rest
        out: list[tuple[bytes | None, bytes | None, bytes]] = []
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    out.append((self._id, self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data = self._data = []
                self._id = self._event = None
                continue
            if line[0] == 0x3A:  # ':' a comment (keep-alive)
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"id":
                self._id = value
            elif name == b"event":
                self._event = value
        return out


class TailState:
    """What a tail knows across reconnects: where to resume, and what it already yielded."""

    __slots__ = ("stream", "from_", "last", "failures", "ended")

    def __init__(self, stream: str, from_: Position) -> None:
        position_query(from_)  # validate now
        self.stream = stream
        self.from_: Position = from_
        self.last: int | None = None
        self.failures = 0
        self.ended = False  # the server said the stream is closed: no record will follow

    def connected(self, answer_headers: Mapping[str, str]) -> None:
        """A connection opened: pin a symbolic start to the offset the server chose."""
        if self.last is None and not isinstance(self.from_, int):
            nxt = answer_headers.get("stream-next-offset")
            if nxt is not None and nxt.isdigit():
                self.from_ = int(nxt)

    def event(self, event: bytes | None, data: bytes) -> StoredRecord | None:
        """A record to yield, or None (a duplicate, or the end); raises the error of an error event.

        ``event: closed`` says the stream is closed and every record was sent:
        ``ended`` is set, and the tail ends instead of reconnecting.
        """
        if event == b"error":
            raise sse_error(data)
        if event == b"closed":
            self.ended = True
            return None
        try:
            d = _raw_decode(data.decode("utf-8"))[0]
            off = int(d["offset"])
            if self.last is not None and off <= self.last:
                return None
            rec = decode_stored(d, self.stream)
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise InternalError(f"bad SSE record: {e}") from None
        self.last = off
        self.failures = 0
        return rec


_PERMANENT_TAIL = {"not_found", "gone", "forbidden", "unauthorized", "invalid_stream", "bad_request",
                   "method_not_allowed", "not_cluster", "unsupported_type", "too_large", "invalid_options"}


def sse_error(data: bytes) -> BadBatchError:
    from .errors import ERROR_KINDS

    status = 200
    try:
        err = json.loads(data)["error"]
        code, message = str(err["code"]), str(err.get("message", ""))
    except Exception:
        code, message = "internal", data.decode("utf-8", "replace")
    cls = ERROR_KINDS.get(code, InternalError)
    status = cls.default_status or status
    return cls(message, code=code, status=status)


def tail_retry_delay(err: BadBatchError, state: TailState, opts: ClientOptions) -> float | None:
    """A tail reconnects after anything but a permanent error, for as long as the caller iterates."""
    if err.code in _PERMANENT_TAIL or err.kind in _PERMANENT_TAIL:
        return None
    cap = min(opts.max_backoff, opts.retry_backoff * (2 ** min(state.failures, 30)))
    delay = random.uniform(0, cap)
    if err.retry_after is not None:
        delay = max(delay, min(err.retry_after, opts.max_retry_after))
    state.failures += 1
    return delay


def connection_ended() -> BadBatchError:
    return ConnectionFailedError("tail connection ended: reconnecting", sent=True)
