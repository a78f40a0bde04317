"""A scripted HTTP server for unit tests: each request takes the next scripted answer."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # bytes, or JSON-able
    headers: dict[str, str] = field(default_factory=dict)
    sse: list[bytes] | None = None  # raw SSE chunks, then the connection closes
    delay: float = 0.0
    hold: float = 0.0  # after the SSE chunks, keep the connection open (silent) this long


class FakeServer:
    def __init__(self) -> None:
        self.script: list[Reply | Callable[[Seen], Reply]] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def handle_any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.lock:
                    outer.seen.append(seen)
                    r = outer.script.pop(0) if outer.script else Reply(500, {"error": {"code": "internal", "message": "script ended"}})
                if callable(r):
                    r = r(seen)
                if r.delay:
                    import time

                    time.sleep(r.delay)
                if r.sse is not None:
                    self.send_response(r.status)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    for k, v in r.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    for chunk in r.sse:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    if r.hold:
                        import time

                        time.sleep(r.hold)
                    self.close_connection = True
                    return
                data = r.body if isinstance(r.body, bytes) else json.dumps(r.body).encode() if r.body is not None else b""
                self.send_response(r.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in r.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        class Srv(ThreadingHTTPServer):
            request_queue_size = 256

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up (tails closed mid-answer): not a test failure

        self.httpd = Srv(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def add(self, *replies: Reply | Callable[[Seen], Reply]) -> None:
        with self.lock:
            self.script.extend(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def err(status: int, code: str, msg: str = "m", headers: dict[str, str] | None = None, **extra: Any) -> Reply:
    return Reply(status, {"error": {"code": code, "message": msg, **extra}}, headers or {})


APPEND_OK = {"stream": "s", "first_offset": 0, "last_offset": 0, "count": 1, "first_seq": 5, "last_seq": 5,
             "durability": "fsynced", "replayed": False}


def sse_record(offset: int, value: Any = None) -> bytes:
    rec = {"offset": offset, "seq": offset, "timestamp": "2026-01-01T00:00:00Z", "value": value if value is not None else offset}
    return f"id: {offset}\ndata: {json.dumps(rec)}\n\n".encode()
