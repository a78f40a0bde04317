"""The sync client."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Sequence, TypeVar

from . import _wire as w
from ._sync_transport import SyncStream, SyncTransport
from .errors import BadBatchError, NotLeaderError, RequestTimeoutError
from .models import AppendResult, GlobalPage, Page, Position, Producer, Record, StoredRecord, StreamConfig, StreamInfo
from .options import ClientOptions

__all__ = ["Client", "Tail"]

T = TypeVar("T")


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if timeout <= 0:
        raise RequestTimeoutError("the call's timeout is not positive")
    return time.monotonic() + timeout


class Client:
    """A client of one BadBatch server (or cluster node).

    It pools its connections and is safe for concurrent use by many threads:
    make one per server and share it. Close it (or use it as a context
    manager) to release the pooled connections.

    ``options`` gives every option at once; keyword arguments override single
    ones (``Client(url, token="...", max_retries=3)``). Neither is modified.
    Every method that does I/O takes ``timeout``: a deadline in seconds for the
    whole call, its retries included (``None``: only the per-attempt
    ``request_timeout`` applies).
    """

    def __init__(self, base_url: str, options: ClientOptions | None = None, **overrides: Any) -> None:
        opts = options if options is not None else ClientOptions()
        if not isinstance(opts, ClientOptions):
            from .errors import InvalidOptionsError

            raise InvalidOptionsError("options must be a badbatch.ClientOptions")
        if overrides:
            opts = opts.replace(**overrides)
        self.options: ClientOptions = opts
        self._b = w.Builder(base_url, opts)
        self._t = SyncTransport(opts.connect_timeout, opts.max_connections)

    @property
    def base_url(self) -> str:
        return self._b.base_url

    def close(self) -> None:
        """Close the pooled connections (open tails are not affected)."""
        self._t.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def _once(self, req: w.Request, deadline: float | None) -> w.Answer:
        """One attempt, following a cluster follower's redirects."""
        url, headers = self._b.url(req), self._b.headers(req)
        for _ in range(w.MAX_REDIRECTS + 1):
            timeout = self.options.request_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise RequestTimeoutError(f"{req.method} {req.path}: the call's timeout passed")
            ans = self._t.send(req.method, url, headers, req.body, timeout)
            if ans.status in (307, 308):
                nxt = w.redirect_target(url, ans, headers)
                if nxt is None:
                    break
                url, headers = nxt
                continue
            return ans
        raise NotLeaderError(f"{req.method} {req.path}: redirect not followed (last answer {ans.status})",
                             status=ans.status)

    def _call(self, req: w.Request, decode: Callable[[w.Answer], T], timeout: float | None) -> T:
        deadline = _deadline(timeout)
        attempt = 0
        while True:
            try:
                ans = self._once(req, deadline)
                w.raise_for_answer(ans)
                return decode(ans)
            except BadBatchError as err:
                delay = w.retry_delay(err, attempt, self.options, req)
                if delay is None:
                    raise
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise
                time.sleep(delay)
                attempt += 1

    # ------------------------------------------------------------ appending

    def append(self, stream: str, record: Record, *, expected_last_offset: int | None = None,
               idempotency_key: str | None = None, producer: Producer | None = None, close: bool = False,
               stream_seq: str | None = None, timeout: float | None = None) -> AppendResult:
        """Append one record.

        ``expected_last_offset``: append only if the stream's last offset is
        this (-1: the stream must be empty), else :class:`OffsetMismatchError`.
        ``idempotency_key``: a repeat within the server's window stores nothing
        and answers the first result with ``replayed=True``.
        ``producer``: an idempotent producer's id, epoch and seq (a repeat is
        ``replayed``, a gap :class:`ProducerSeqGapError`, an older epoch
        :class:`ProducerFencedError`); such an append is always safe to retry.
        ``close``: close the stream atomically with this append.
        ``stream_seq``: a writer's sequence label (1 to 256 printable ASCII
        characters), sent as ``Stream-Seq``: it must sort after the stream's
        last one, byte by byte, else :class:`StreamSeqError` and nothing is
        stored.
        """
        return self.append_batch(stream, [record], expected_last_offset=expected_last_offset,
                                 idempotency_key=idempotency_key, producer=producer, close=close,
                                 stream_seq=stream_seq, timeout=timeout)

    def append_batch(self, stream: str, records: Sequence[Record], *, expected_last_offset: int | None = None,
                     idempotency_key: str | None = None, producer: Producer | None = None, close: bool = False,
                     stream_seq: str | None = None, timeout: float | None = None) -> AppendResult:
        """Append records atomically: they get consecutive offsets, or none is stored."""
        req = self._b.append(stream, list(records), expected_last_offset, idempotency_key, producer, close, stream_seq)
        return self._call(req, w.decode_append, timeout)

    # ------------------------------------------------------------ lifecycle

    def create_stream(self, stream: str, config: StreamConfig | None = None, *, timeout: float | None = None) -> bool:
        """Create ``stream`` with ``config``: True when created, False when it existed with the same
        configuration (nothing changed); another configuration is :class:`StreamExistsError`.
        Safe to retry."""
        return self._call(self._b.create_stream(stream, config), w.decode_created, timeout)

    def fork_stream(self, stream: str, source: str, offset: int, config: StreamConfig | None = None, *,
                    timeout: float | None = None) -> None:
        """Create ``stream`` as a fork of ``source``: it reads ``source``'s records below ``offset``,
        then its own. ``config`` ``None`` takes the source's configuration. A fork onto an existing
        stream is :class:`StreamExistsError`."""
        self._call(self._b.fork_stream(stream, source, offset, config), w.decode_nothing, timeout)

    def close_stream(self, stream: str, *, timeout: float | None = None) -> None:
        """Close ``stream``: appends are refused (:class:`StreamClosedError`) and tails end after
        its last record. Closing a closed stream again succeeds; safe to retry."""
        self._call(self._b.close_stream(stream), w.decode_nothing, timeout)

    def delete_stream(self, stream: str, *, timeout: float | None = None) -> None:
        """Delete ``stream`` (:class:`NotFoundError` when there is none). A stream with forks answers
        :class:`GoneError` until its last fork is deleted. Not retried after an unknown outcome."""
        self._call(self._b.delete_stream(stream), w.decode_nothing, timeout)

    # ------------------------------------------------------------ reading

    def read(self, stream: str, from_: Position = "earliest", limit: int | None = None, *,
             timeout: float | None = None) -> Page:
        """Read one page from ``from_`` ("earliest", "latest", an offset or a datetime)."""
        return self._call(self._b.read(stream, from_, limit), w.page_decoder(stream), timeout)

    def read_global(self, from_seq: int = 0, limit: int | None = None, *, timeout: float | None = None) -> GlobalPage:
        """Read one page of the global log (all streams, commit order) from ``from_seq``."""
        return self._call(self._b.read_global(from_seq, limit), w.decode_global, timeout)

    def streams(self, *, timeout: float | None = None) -> list[StreamInfo]:
        """The streams the token may read."""
        return self._call(self._b.streams(), w.decode_streams, timeout)

    def stream_info(self, stream: str, *, timeout: float | None = None) -> StreamInfo:
        """One stream's description."""
        return self._call(self._b.stream_info(stream), w.decode_info, timeout)

    def set_cursor(self, stream: str, name: str, offset: int, *, timeout: float | None = None) -> None:
        """Store the named consumer cursor ``name`` of ``stream``."""
        self._call(self._b.set_cursor(stream, name, offset), w.decode_nothing, timeout)

    def cursor(self, stream: str, name: str, *, timeout: float | None = None) -> int:
        """A cursor's offset (:class:`NotFoundError` when it was never set)."""
        return self._call(self._b.cursor(stream, name), w.decode_cursor, timeout)

    def tail(self, stream: str, from_: Position = "earliest") -> "Tail":
        """Follow ``stream`` live: an iterator of every record once, in offset order.

        It rides on Server-Sent Events and reconnects after any failure (a
        server restart included) with ``Last-Event-ID``, so there is no gap and
        no duplicate. It ends when closed, when the stream is closed and its
        last record was yielded (the iteration stops), or by raising an error
        that a retry cannot fix (not_found, gone, forbidden, unauthorized, ...).

        It connects before it returns, so ``"latest"`` means the end of the
        stream now, and a permanent error (e.g. :class:`NotFoundError`) is
        raised here; a transient failure is left to the iteration, which
        retries it.
        """
        t = Tail(self, stream, from_)
        t._open()
        return t


class Tail(Iterator[StoredRecord]):
    """A live tail (see :meth:`Client.tail`). Iterate it; close it (from any thread) to stop."""

    def __init__(self, client: Client, stream: str, from_: Position) -> None:
        self._c = client
        self._state = w.TailState(stream, from_)
        self._parser = w.SSEParser()
        self._pending: list[StoredRecord] = []
        self._idx = 0
        self._stream: SyncStream | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def last_offset(self) -> int | None:
        """The offset of the last record yielded (``None`` before the first)."""
        return self._state.last

    def __iter__(self) -> "Tail":
        return self

    def __enter__(self) -> "Tail":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the tail; a ``next`` blocked in another thread ends with StopIteration."""
        with self._lock:
            self._closed = True
            s, self._stream = self._stream, None
        if s is not None:
            s.close()

    def _open(self) -> None:
        try:
            self._connect()
        except BadBatchError as err:
            self._drop()
            if w.tail_retry_delay(err, self._state, self._c.options) is None:
                self._closed = True
                raise

    def _connect(self) -> SyncStream:
        c = self._c
        req = c._b.tail(self._state.stream, self._state.from_, self._state.last)
        url, headers = c._b.url(req), c._b.headers(req)
        for _ in range(w.MAX_REDIRECTS + 1):
            s = c._t.open_stream(url, headers, c.options.connect_timeout, c.options.tail_idle_timeout)
            with self._lock:
                if self._closed:
                    raise StopIteration
                self._stream = s  # so that close() can abort the connect
            s.start()
            if s.status in (307, 308):
                body = s.read_all()
                s.close()
                nxt = w.redirect_target(url, w.Answer(s.status, s.headers, body), headers)
                if nxt is None:
                    raise NotLeaderError("tail: redirect not followed", status=s.status)
                url, headers = nxt
                continue
            if s.status != 200:
                body = s.read_all()
                s.close()
                w.raise_for_answer(w.Answer(s.status, s.headers, body))
            self._state.connected(s.headers)
            self._parser = w.SSEParser()
            return s
        raise NotLeaderError("tail: too many redirects", status=307)

    def __next__(self) -> StoredRecord:
        while True:
            if self._idx < len(self._pending):
                rec = self._pending[self._idx]
                self._idx += 1
                return rec
            if self._closed:
                raise StopIteration
            try:
                s = self._stream
                if s is None:
                    s = self._connect()
                chunk = s.read_chunk()
                if not chunk:
                    raise w.connection_ended()
                recs: list[StoredRecord] = []
                for _id, event, data in self._parser.feed(chunk):
                    got = self._state.event(event, data)
                    if got is not None:
                        recs.append(got)
                self._pending, self._idx = recs, 0
                if self._state.ended:  # the stream is closed: yield what came, then stop
                    self._closed = True
                    self._drop()
            except BadBatchError as err:
                self._drop()
                if self._closed:
                    raise StopIteration from None
                delay = w.tail_retry_delay(err, self._state, self._c.options)
                if delay is None:
                    self._closed = True
                    raise
                self._sleep(delay)

    def _drop(self) -> None:
        with self._lock:
            s, self._stream = self._stream, None
        if s is not None:
            s.close()

    def _sleep(self, delay: float) -> None:
        end = time.monotonic() + delay
        while not self._closed:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))
