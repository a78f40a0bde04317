"""The asyncio transport: a small HTTP/1.1 client on asyncio streams, with a pool.

The standard library has no asyncio HTTP client, so this is one: keep-alive
connections per (scheme, host, port), requests written in one write (asyncio
sets TCP_NODELAY), answers with Content-Length, chunked, or up to EOF.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from ._sync_transport import IDLE_REUSE_LIMIT, _Key, connection_failed, split_url
from ._wire import Answer
from .errors import RequestTimeoutError

_MAX_HEADER_LINES = 200


class _Conn:
    __slots__ = ("reader", "writer", "key")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: _Key) -> None:
        self.reader = reader
        self.writer = writer
        self.key = key

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass


class _ProtocolError(Exception):
    pass


def _host_header(key: _Key) -> str:
    scheme, host, port = key
    h = f"[{host}]" if ":" in host else host
    return h if port == (443 if scheme == "https" else 80) else f"{h}:{port}"


def _head(method: str, path: str, key: _Key, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {_host_header(key)}"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    while True:
        line = await reader.readline()
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise _ProtocolError(f"bad status line {line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADER_LINES):
            h = await reader.readline()
            if h in (b"\r\n", b"\n"):
                break
            if not h:
                raise _ProtocolError("the connection ended inside the answer's headers")
            name, _, value = h.decode("latin-1").partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        else:
            raise _ProtocolError("too many header lines")
        if 100 <= status < 200:
            continue  # 100 Continue and friends
        return status, headers


def _chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _keep_alive(headers: dict[str, str]) -> bool:
    return "close" not in headers.get("connection", "").lower()


async def _read_body(reader: asyncio.StreamReader, method: str, status: int,
                     headers: dict[str, str]) -> tuple[bytes, bool]:
    """The body, and whether the connection may be reused."""
    if method == "HEAD" or status in (204, 304):
        return b"", _keep_alive(headers)
    if _chunked(headers):
        parts: list[bytes] = []
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts), _keep_alive(headers)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    cl = headers.get("content-length")
    if cl is not None:
        return await reader.readexactly(int(cl)), _keep_alive(headers)
    return await reader.read(), False


# A body above this is drained while watching for an early answer.
LARGE_BODY = 64 << 10


async def _drain_watching(c: _Conn) -> tuple[int, dict[str, str], bool]:
    """Drain a large request while reading the answer's head: a server that answers before it
    took the whole body (413 for a body over its limit) and then closes would otherwise fail
    the drain with a reset, and the reader would lose the answer. Returns the head and
    whether it came early (the connection is then not reusable)."""
    drain = asyncio.ensure_future(c.writer.drain())
    head = asyncio.ensure_future(_read_head(c.reader))
    try:
        done, _ = await asyncio.wait({drain, head}, return_when=asyncio.FIRST_COMPLETED)
        if head in done:
            status, hdrs = head.result()
            return status, hdrs, not drain.done()
        try:
            drain.result()
        except (BrokenPipeError, ConnectionResetError) as e:
            try:
                status, hdrs = await head
            except Exception:
                raise e from None
            return status, hdrs, True
        status, hdrs = await head
        return status, hdrs, False
    finally:
        for t in (drain, head):
            if not t.done():
                t.cancel()
        for t in (drain, head):
            if t.done() and not t.cancelled():
                t.exception()  # retrieved: no "never retrieved" warning


class AsyncTransport:
    """A pool of keep-alive connections; for the tasks of one event loop."""

    def __init__(self, connect_timeout: float, max_idle: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._ssl = ssl_context
        self._idle: dict[_Key, list[tuple[_Conn, float]]] = {}
        self._closed = False

    async def _new(self, key: _Key, connect_timeout: float) -> _Conn:
        scheme, host, port = key
        ctx = (self._ssl or ssl.create_default_context()) if scheme == "https" else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx, limit=1 << 20), connect_timeout)
        except asyncio.TimeoutError as e:
            raise RequestTimeoutError(f"connect to {host}:{port} timed out") from e
        except OSError as e:
            raise connection_failed(f"cannot connect to {host}:{port}: {e}", sent=False) from e
        return _Conn(reader, writer, key)

    def _get_idle(self, key: _Key) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn, since = idle.pop()
            if now - since < IDLE_REUSE_LIMIT and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    def _put(self, conn: _Conn) -> None:
        if not self._closed:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < self._max_idle:
                idle.append((conn, time.monotonic()))
                return
        conn.close()

    async def aclose(self) -> None:
        self._closed = True
        conns = [c for lst in self._idle.values() for c, _ in lst]
        self._idle.clear()
        for c in conns:
            c.close()

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                   timeout: float) -> Answer:
        """One attempt, the whole answer read, within ``timeout``."""
        key, path = split_url(url)
        head = _head(method, path, key, headers, body)
        deadline = time.monotonic() + timeout
        for _ in range(2):
            conn = self._get_idle(key)
            reused = conn is not None
            if conn is None:
                conn = await self._new(key, min(self._connect_timeout, max(deadline - time.monotonic(), 0.001)))
            got_answer = False
            c: _Conn = conn
            try:
                async def exchange() -> tuple[int, dict[str, str], bytes, bool]:
                    nonlocal got_answer
                    c.writer.write(head + body if body else head)
                    early = False
                    if body is not None and len(body) > LARGE_BODY:
                        status, hdrs, early = await _drain_watching(c)
                    else:
                        await c.writer.drain()
                        status, hdrs = await _read_head(c.reader)
                    got_answer = True
                    data, keep = await _read_body(c.reader, method, status, hdrs)
                    return status, hdrs, data, keep and not early

                async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                    status, hdrs, data, keep = await exchange()
            except asyncio.TimeoutError as e:
                conn.close()
                raise RequestTimeoutError(f"{method} {path}: no answer within {timeout:.3g} s") from e
            except BaseException as e:
                conn.close()
                if not isinstance(e, (OSError, asyncio.IncompleteReadError, _ProtocolError, ValueError)):
                    raise  # cancellation
                if reused and not got_answer and isinstance(
                        e, (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError)):
                    continue  # a keep-alive connection the server had closed: retry once, fresh
                raise connection_failed(f"{method} {path}: {type(e).__name__}: {e}", sent=True) from e
            if keep:
                self._put(conn)
            else:
                conn.close()
            return Answer(status, hdrs, data)
        raise AssertionError("unreachable")

    async def open_stream(self, url: str, headers: dict[str, str], connect_timeout: float,
                          idle_timeout: float) -> "AsyncStream":
        key, path = split_url(url)
        conn = await self._new(key, connect_timeout)
        try:
            conn.writer.write(_head("GET", path, key, headers, None))
            await conn.writer.drain()
            status, hdrs = await asyncio.wait_for(_read_head(conn.reader), idle_timeout)
        except asyncio.TimeoutError as e:
            conn.close()
            raise RequestTimeoutError(f"GET {path}: no answer within {idle_timeout:.3g} s") from e
        except BaseException as e:
            conn.close()
            if not isinstance(e, (OSError, asyncio.IncompleteReadError, _ProtocolError, ValueError)):
                raise
            raise connection_failed(f"GET {path}: {type(e).__name__}: {e}", sent=True) from e
        return AsyncStream(conn, status, hdrs, idle_timeout)


class AsyncStream:
    """An open streaming answer (chunked or up to EOF)."""

    def __init__(self, conn: _Conn, status: int, headers: dict[str, str], idle_timeout: float) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self._idle = idle_timeout
        self._chunked = _chunked(headers)
        self._left = 0  # bytes left in the current chunk
        self._first = True
        self._done = False
        cl = headers.get("content-length")
        self._length: int | None = int(cl) if cl is not None and not self._chunked else None

    async def read_all(self) -> bytes:
        try:
            data, _ = await asyncio.wait_for(
                _read_body(self._conn.reader, "GET", self.status, self.headers), self._idle)
            return data
        except Exception:
            return b""

    async def _next(self) -> bytes:
        r = self._conn.reader
        if self._done:
            return b""
        if not self._chunked:
            if self._length is not None:
                if self._length == 0:
                    return b""
                data = await r.read(min(self._length, 65536))
                self._length -= len(data)
                return data
            return await r.read(65536)
        if self._left == 0:
            if not self._first:
                await r.readexactly(2)  # the previous chunk's CRLF
            self._first = False
            line = await r.readline()
            if not line:
                return b""
            self._left = int(line.split(b";", 1)[0].strip() or b"x", 16)
            if self._left == 0:
                self._done = True
                return b""
        data = await r.read(min(self._left, 65536))
        if not data:
            return b""
        self._left -= len(data)
        return data

    async def read_chunk(self) -> bytes:
        try:
            async with asyncio.timeout(self._idle):  # no task per read, unlike wait_for
                return await self._next()
        except asyncio.TimeoutError as e:
            raise RequestTimeoutError("tail connection idle: reconnecting") from e
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            raise connection_failed(f"tail connection broke: {type(e).__name__}: {e}", sent=True) from e

    def close(self) -> None:
        self._conn.close()
