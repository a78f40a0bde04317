"""The sync transport: http.client connections in a thread-safe pool."""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ._wire import Answer
from .errors import ConnectionFailedError, RequestTimeoutError

# A pooled connection idle longer than this is closed rather than reused
# (the server closes idle connections after 120 s).
IDLE_REUSE_LIMIT = 50.0

_Key = tuple[str, str, int]


def split_url(url: str) -> tuple[_Key, str]:
    p = urlsplit(url)
    port = p.port or (443 if p.scheme == "https" else 80)
    path = p.path or "/"
    if p.query:
        path += "?" + p.query
    return (p.scheme, p.hostname or "", port), path


def connection_failed(msg: str, *, sent: bool) -> ConnectionFailedError:
    return ConnectionFailedError(msg, sent=sent)


class _Conn(http.client.HTTPConnection):
    """An HTTPConnection with TCP_NODELAY (a request's head and body never wait for Nagle)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TLSConn(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# A body above this is sent piece by piece while watching for an early answer.
LARGE_BODY = 64 << 10


def _send_watching(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
                   body: bytes, timeout: float) -> bool:
    """Send a large request, stopping if the server answers before it took the whole body
    (for example 413 for a body over its limit, after which it closes the connection: a
    client that kept writing would meet a reset and lose the answer). Returns whether it
    stopped early (the connection is then not reusable)."""
    conn.putrequest(method, path, skip_accept_encoding=any(k.lower() == "accept-encoding" for k in headers))
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    sock = conn.sock
    assert sock is not None
    view = memoryview(body)
    sent = 0
    while sent < len(view):
        readable, writable, _ = select.select([sock], [sock], [], timeout)
        if readable:
            return True
        if not writable:
            raise socket.timeout("the server took no more of the request body")
        sent += sock.send(view[sent:sent + (256 << 10)])
    return False


class SyncTransport:
    """A pool of keep-alive connections per (scheme, host, port); safe for concurrent use."""

    def __init__(self, connect_timeout: float, max_idle: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._ssl = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[tuple[http.client.HTTPConnection, float]]] = {}
        self._closed = False

    def _new(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            return _TLSConn(host, port, timeout=self._connect_timeout,
                            context=self._ssl or ssl.create_default_context())
        return _Conn(host, port, timeout=self._connect_timeout)

    def _get(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn, since = idle.pop()
                if now - since < IDLE_REUSE_LIMIT:
                    return conn, True
                conn.close()
        return self._new(key), False

    def _put(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                idle = self._idle.setdefault(key, [])
                if len(idle) < self._max_idle:
                    idle.append((conn, time.monotonic()))
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for lst in self._idle.values() for c, _ in lst]
            self._idle.clear()
        for c in conns:
            c.close()

    def _connect(self, conn: http.client.HTTPConnection, timeout: float) -> None:
        if conn.sock is None:
            try:
                conn.connect()
            except (socket.timeout, TimeoutError) as e:
                conn.close()
                raise RequestTimeoutError(f"connect to {conn.host}:{conn.port} timed out") from e
            except OSError as e:
                conn.close()
                raise connection_failed(f"cannot connect to {conn.host}:{conn.port}: {e}", sent=False) from e
        assert conn.sock is not None
        conn.sock.settimeout(timeout)

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float) -> Answer:
        """One attempt: send the request and read the whole answer."""
        key, path = split_url(url)
        for _ in range(2):
            conn, reused = self._get(key)
            self._connect(conn, timeout)
            got_answer = False
            early = False
            try:
                if body is not None and len(body) > LARGE_BODY:
                    early = _send_watching(conn, method, path, headers, body, timeout)
                else:
                    conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                got_answer = True
                data = resp.read()
            except (socket.timeout, TimeoutError) as e:
                conn.close()
                raise RequestTimeoutError(f"{method} {path}: no answer within {timeout:.3g} s") from e
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                if reused and not got_answer and isinstance(
                        e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    # A keep-alive connection the server had closed: the
                    # request never reached a handler. Retry once, fresh.
                    continue
                raise connection_failed(f"{method} {path}: {type(e).__name__}: {e}", sent=True) from e
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close or early:
                conn.close()
            else:
                self._put(key, conn)
            return Answer(resp.status, hdrs, data)
        raise AssertionError("unreachable")

    def open_stream(self, url: str, headers: dict[str, str], connect_timeout: float,
                    idle_timeout: float) -> "SyncStream":
        """A streaming GET (a tail) on a fresh connection of its own, never pooled; call start()."""
        key, path = split_url(url)
        return SyncStream(self, self._new(key), path, headers, connect_timeout, idle_timeout)


class SyncStream:
    """A streaming answer; close() may be called from another thread, at any time."""

    def __init__(self, transport: SyncTransport, conn: http.client.HTTPConnection, path: str,
                 headers: dict[str, str], connect_timeout: float, idle_timeout: float) -> None:
        self._t = transport
        self.conn = conn
        self._path, self._headers = path, headers
        self._connect_timeout, self._idle_timeout = connect_timeout, idle_timeout
        self.status = 0
        self.headers: dict[str, str] = {}
        self.closed = False

    def start(self) -> None:
        """Connect, send the request and read the answer's head."""
        conn = self.conn
        self._t._connect(conn, self._connect_timeout)
        try:
            if self.closed:
                raise OSError("closed")
            conn.request("GET", self._path, headers=self._headers)
            conn.sock.settimeout(self._idle_timeout)
            self.resp = conn.getresponse()
        except (socket.timeout, TimeoutError) as e:
            conn.close()
            raise RequestTimeoutError(f"GET {self._path}: no answer within {self._idle_timeout:.3g} s") from e
        except (http.client.HTTPException, OSError, AttributeError) as e:
            conn.close()
            raise connection_failed(f"GET {self._path}: {type(e).__name__}: {e}", sent=True) from e
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def read_all(self) -> bytes:
        try:
            return self.resp.read()
        except Exception:
            return b""

    def read_chunk(self) -> bytes:
        """The next bytes (b"" at the end); raises on failure or idle timeout."""
        try:
            return self.resp.read1(65536)
        except (socket.timeout, TimeoutError) as e:
            raise RequestTimeoutError("tail connection idle: reconnecting") from e
        except (http.client.HTTPException, OSError, ValueError, AttributeError) as e:
            raise connection_failed(f"tail connection broke: {type(e).__name__}: {e}", sent=True) from e

    def close(self) -> None:
        self.closed = True
        sock: Any = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conn.close()
