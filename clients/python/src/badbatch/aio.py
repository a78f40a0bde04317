"""The asyncio client: the same API as :class:`badbatch.Client`, with ``await``."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable, Generator, Sequence, TypeVar

from . import _wire as w
from ._async_transport import AsyncStream, AsyncTransport
from .client import _deadline
from .errors import BadBatchError, InvalidOptionsError, NotLeaderError, RequestTimeoutError
from .models import AppendResult, GlobalPage, Page, Position, Producer, Record, StoredRecord, StreamConfig, StreamInfo
from .options import ClientOptions

__all__ = ["AsyncClient", "AsyncTail"]

T = TypeVar("T")


class AsyncClient:
    """The asyncio client of one BadBatch server (or cluster node).

    It pools its connections and is safe for concurrent use by many tasks of
    the event loop it is used on (one client per loop): make one per server
    and share it. ``await client.aclose()`` (or ``async with``) releases the
    pool. Options and ``timeout`` work as in :class:`badbatch.Client`.
    """

    def __init__(self, base_url: str, options: ClientOptions | None = None, **overrides: Any) -> None:
        opts = options if options is not None else ClientOptions()
        if not isinstance(opts, ClientOptions):
            raise InvalidOptionsError("options must be a badbatch.ClientOptions")
        if overrides:
            opts = opts.replace(**overrides)
        self.options: ClientOptions = opts
        self._b = w.Builder(base_url, opts)
        self._t = AsyncTransport(opts.connect_timeout, opts.max_connections)

    @property
    def base_url(self) -> str:
        return self._b.base_url

    async def aclose(self) -> None:
        """Close the pooled connections (open tails are not affected)."""
        await self._t.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ plumbing

    async def _once(self, req: w.Request, deadline: float | None) -> w.Answer:
        url, headers = self._b.url(req), self._b.headers(req)
        for _ in range(w.MAX_REDIRECTS + 1):
            timeout = self.options.request_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise RequestTimeoutError(f"{req.method} {req.path}: the call's timeout passed")
            ans = await self._t.send(req.method, url, headers, req.body, timeout)
            if ans.status in (307, 308):
                nxt = w.redirect_target(url, ans, headers)
                if nxt is None:
                    break
                url, headers = nxt
                continue
            return ans
        raise NotLeaderError(f"{req.method} {req.path}: redirect not followed (last answer {ans.status})",
                             status=ans.status)

    async def _call(self, req: w.Request, decode: Callable[[w.Answer], T], timeout: float | None) -> T:
        deadline = _deadline(timeout)
        attempt = 0
        while True:
            try:
                ans = await self._once(req, deadline)
                w.raise_for_answer(ans)
                return decode(ans)
            except BadBatchError as err:
                delay = w.retry_delay(err, attempt, self.options, req)
                if delay is None:
                    raise
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    # ------------------------------------------------------------ the API

    async def append(self, stream: str, record: Record, *, expected_last_offset: int | None = None,
                     idempotency_key: str | None = None, producer: Producer | None = None, close: bool = False,
                     stream_seq: str | None = None, timeout: float | None = None) -> AppendResult:
        """Append one record (see :meth:`badbatch.Client.append`)."""
        return await self.append_batch(stream, [record], expected_last_offset=expected_last_offset,
                                       idempotency_key=idempotency_key, producer=producer, close=close,
                                       stream_seq=stream_seq, timeout=timeout)

    async def append_batch(self, stream: str, records: Sequence[Record], *, expected_last_offset: int | None = None,
                           idempotency_key: str | None = None, producer: Producer | None = None,
                           close: bool = False, stream_seq: str | None = None,
                           timeout: float | None = None) -> AppendResult:
        """Append records atomically: they get consecutive offsets, or none is stored."""
        req = self._b.append(stream, list(records), expected_last_offset, idempotency_key, producer, close, stream_seq)
        return await self._call(req, w.decode_append, timeout)

    async def create_stream(self, stream: str, config: StreamConfig | None = None, *,
                            timeout: float | None = None) -> bool:
        """Create a stream: True when created, False when it existed alike (see
        :meth:`badbatch.Client.create_stream`)."""
        return await self._call(self._b.create_stream(stream, config), w.decode_created, timeout)

    async def fork_stream(self, stream: str, source: str, offset: int, config: StreamConfig | None = None, *,
                          timeout: float | None = None) -> None:
        """Create a fork of ``source`` at ``offset`` (see :meth:`badbatch.Client.fork_stream`)."""
        await self._call(self._b.fork_stream(stream, source, offset, config), w.decode_nothing, timeout)

    async def close_stream(self, stream: str, *, timeout: float | None = None) -> None:
        """Close a stream (see :meth:`badbatch.Client.close_stream`)."""
        await self._call(self._b.close_stream(stream), w.decode_nothing, timeout)

    async def delete_stream(self, stream: str, *, timeout: float | None = None) -> None:
        """Delete a stream (see :meth:`badbatch.Client.delete_stream`)."""
        await self._call(self._b.delete_stream(stream), w.decode_nothing, timeout)

    async def read(self, stream: str, from_: Position = "earliest", limit: int | None = None, *,
                   timeout: float | None = None) -> Page:
        """Read one page from ``from_`` ("earliest", "latest", an offset or a datetime)."""
        return await self._call(self._b.read(stream, from_, limit), w.page_decoder(stream), timeout)

    async def read_global(self, from_seq: int = 0, limit: int | None = None, *,
                          timeout: float | None = None) -> GlobalPage:
        """Read one page of the global log from ``from_seq``."""
        return await self._call(self._b.read_global(from_seq, limit), w.decode_global, timeout)

    async def streams(self, *, timeout: float | None = None) -> list[StreamInfo]:
        """The streams the token may read."""
        return await self._call(self._b.streams(), w.decode_streams, timeout)

    async def stream_info(self, stream: str, *, timeout: float | None = None) -> StreamInfo:
        """One stream's description."""
        return await self._call(self._b.stream_info(stream), w.decode_info, timeout)

    async def set_cursor(self, stream: str, name: str, offset: int, *, timeout: float | None = None) -> None:
        """Store a named consumer cursor."""
        await self._call(self._b.set_cursor(stream, name, offset), w.decode_nothing, timeout)

    async def cursor(self, stream: str, name: str, *, timeout: float | None = None) -> int:
        """A cursor's offset (:class:`NotFoundError` when it was never set)."""
        return await self._call(self._b.cursor(stream, name), w.decode_cursor, timeout)

    def tail(self, stream: str, from_: Position = "earliest") -> "AsyncTail":
        """Follow ``stream`` live: an async iterator (see :meth:`badbatch.Client.tail`).

        ``async for rec in client.tail(s)`` connects on the first record;
        ``t = await client.tail(s)`` connects at once, like the sync client: then
        ``"latest"`` means the end of the stream now, and a permanent error is
        raised by the ``await``.
        """
        return AsyncTail(self, stream, from_)


class AsyncTail(AsyncIterator[StoredRecord]):
    """A live tail (see :meth:`AsyncClient.tail`): ``async for``; ``await aclose()`` to stop."""

    def __init__(self, client: AsyncClient, stream: str, from_: Position) -> None:
        self._c = client
        self._state = w.TailState(stream, from_)
        self._parser = w.SSEParser()
        self._pending: list[StoredRecord] = []
        self._idx = 0
        self._stream: AsyncStream | None = None
        self._closed = False

    @property
    def last_offset(self) -> int | None:
        """The offset of the last record yielded (``None`` before the first)."""
        return self._state.last

    def __aiter__(self) -> "AsyncTail":
        return self

    async def __aenter__(self) -> "AsyncTail":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the tail; an ``anext`` waiting in another task ends with StopAsyncIteration."""
        self._closed = True
        s, self._stream = self._stream, None
        if s is not None:
            s.close()

    def __await__(self) -> Generator[Any, None, "AsyncTail"]:
        return self.open().__await__()

    async def open(self) -> "AsyncTail":
        """Connect now (see :meth:`AsyncClient.tail`); returns this tail."""
        if self._stream is None and not self._closed:
            try:
                self._stream = await self._connect()
            except BadBatchError as err:
                if w.tail_retry_delay(err, self._state, self._c.options) is None:
                    self._closed = True
                    raise
        return self

    async def _connect(self) -> AsyncStream:
        c = self._c
        req = c._b.tail(self._state.stream, self._state.from_, self._state.last)
        url, headers = c._b.url(req), c._b.headers(req)
        for _ in range(w.MAX_REDIRECTS + 1):
            s = await c._t.open_stream(url, headers, c.options.connect_timeout, c.options.tail_idle_timeout)
            if s.status in (307, 308):
                body = await s.read_all()
                s.close()
                nxt = w.redirect_target(url, w.Answer(s.status, s.headers, body), headers)
                if nxt is None:
                    raise NotLeaderError("tail: redirect not followed", status=s.status)
                url, headers = nxt
                continue
            if s.status != 200:
                body = await s.read_all()
                s.close()
                w.raise_for_answer(w.Answer(s.status, s.headers, body))
            self._state.connected(s.headers)
            self._parser = w.SSEParser()
            return s
        raise NotLeaderError("tail: too many redirects", status=307)

    async def __anext__(self) -> StoredRecord:
        while True:
            if self._idx < len(self._pending):
                rec = self._pending[self._idx]
                self._idx += 1
                return rec
            if self._closed:
                raise StopAsyncIteration
            try:
                s = self._stream
                if s is None:
                    s = await self._connect()
                    if self._closed:
                        s.close()
                        raise StopAsyncIteration
                    self._stream = s
                chunk = await s.read_chunk()
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
                    s, self._stream = self._stream, None
                    if s is not None:
                        s.close()
            except BadBatchError as err:
                s, self._stream = self._stream, None
                if s is not None:
                    s.close()
                if self._closed:
                    raise StopAsyncIteration from None
                delay = w.tail_retry_delay(err, self._state, self._c.options)
                if delay is None:
                    self._closed = True
                    raise
                await asyncio.sleep(delay)
