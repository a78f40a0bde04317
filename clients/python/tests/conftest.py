"""Shared fixtures: a real `badbatch serve` per conformance profile."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the repository
# BADBATCH_CONFORMANCE_DIR: another copy of clients/conformance (e.g. a branch's cases).
CONF = Path(os.environ.get("BADBATCH_CONFORMANCE_DIR") or ROOT / "clients" / "conformance").resolve()
sys.path.insert(0, str(HERE.parent / "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_server() -> str:
    """BADBATCH_BIN, or `go build` into a temporary directory (once per session)."""
    given = os.environ.get("BADBATCH_BIN")
    if given:
        return given
    out = Path(tempfile.mkdtemp(prefix="badbatch-py-bin-")) / "badbatch"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/badbatch"], cwd=ROOT, check=True)
    return str(out)


class Server:
    """One `badbatch serve` on a fresh data directory and a fixed port (kept across restarts)."""

    def __init__(self, binary: str, name: str, args: list[str], tokens: bool, port: int | None = None,
                 wait: bool = True) -> None:
        self.binary, self.name = binary, name
        self.args = list(args)
        if tokens:
            self.args += ["--tokens-file", str(CONF / "tokens.txt")]
        self.dir = Path(tempfile.mkdtemp(prefix=f"badbatch-py-{name}-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(self.dir / "server.log", "ab")
        self.start(wait)

    def start(self, wait: bool = True) -> None:
        cmd = [self.binary, "serve", "--addr", f"127.0.0.1:{self.port}", "--data-dir", str(self.dir / "data"),
               "--shutdown-timeout", "5s", *self.args]
        for attempt in range(50):
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
            if not wait or self._wait_ready(20.0):
                return
            if self.proc.poll() is None:
                break
            time.sleep(0.1)  # e.g. the port not yet free after a restart
        raise RuntimeError(f"server {self.name} not ready: {(self.dir / 'server.log').read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _wait_ready(self, secs: float) -> bool:
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return True
            except Exception:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Servers:
    def __init__(self) -> None:
        self.profiles: dict[str, Any] = json.loads((CONF / "servers.json").read_text())
        self._binary: str | None = None
        self.running: dict[str, Server] = {}

    def binary(self) -> str:
        if self._binary is None:
            self._binary = build_server()
        return self._binary

    def get(self, profile: str, flavour: str = "sync") -> Server:
        """The server of a profile (one per flavour: the sync and the async runs never share one)."""
        key = f"{profile}-{flavour}"
        if key not in self.running:
            if profile not in self.profiles:
                raise KeyError(f"unknown profile {profile!r} (servers.json)")
            spec = self.profiles[profile]
            self.running[key] = Server(self.binary(), key, spec.get("args", []), bool(spec.get("tokens")))
        return self.running[key]

    def close(self) -> None:
        for s in self.running.values():
            s.close()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    s.close()


@pytest.fixture(scope="session")
def server_url(servers: Servers) -> str:
    """A server of the default profile (with tokens: use the admin token)."""
    return servers.get("default").url


@pytest.fixture(scope="session")
def admin_token() -> str:
    return str(json.loads((CONF / "tokens.json").read_text())["admin"])


@pytest.fixture(scope="session")
def plain_server(servers: Servers) -> Iterator[Server]:
    """A server without tokens (for the documentation's examples)."""
    s = Server(servers.binary(), "plain", [], False)
    yield s
    s.close()
