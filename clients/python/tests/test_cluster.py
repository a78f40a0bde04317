"""Both clients against a real 3-node cluster: appends and cursor writes sent to a follower
follow its 307 to the leader with the bearer token, and a leader's death (503 no_leader, then a
new leader) is retried away."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import time
from pathlib import Path
import urllib.request
from typing import Iterator

import pytest

import badbatch as bb
from conftest import CONF, Server, Servers, free_port

TOKEN = json.loads((CONF / "tokens.json").read_text())["admin"]


def cluster_view(node: Server) -> dict[str, object]:
    req = urllib.request.Request(node.url + "/v1/cluster", headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=2) as r:
        return dict(json.loads(r.read()))


@pytest.fixture(scope="module")
def cluster(servers: Servers) -> Iterator[list[Server]]:
    http_ports = [free_port() for _ in range(3)]
    cluster_ports = [free_port() for _ in range(3)]
    peers = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(cluster_ports))
    secret_dir = Path(tempfile.mkdtemp(prefix="badbatch-py-cluster-"))
    secret = secret_dir / "cluster.secret"
    secret.write_text("python-client-cluster-secret-0123456789\n")
    nodes = [
        Server(servers.binary(), f"node{i + 1}",
               ["--node-id", str(i + 1), "--cluster-addr", f"127.0.0.1:{cluster_ports[i]}", "--peers", peers,
                "--cluster-secret-file", str(secret)],
               True, port=http_ports[i], wait=False)
        for i in range(3)
    ]
    for node in nodes:
        assert node._wait_ready(30.0), (node.dir / "server.log").read_text()[-2000:]
    yield nodes
    for node in nodes:
        node.close()
    shutil.rmtree(secret_dir, ignore_errors=True)


def roles(nodes: list[Server]) -> tuple[Server, list[Server]]:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            views = {n.port: cluster_view(n) for n in nodes if n.proc and n.proc.poll() is None}
            leaders = [n for n in nodes if n.port in views and views[n.port].get("role") == "leader"]
            if len(leaders) == 1:
                return leaders[0], [n for n in nodes if n is not leaders[0] and n.port in views]
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("no leader")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_follower_redirects_to_leader_with_token(cluster: list[Server], mode: str) -> None:
    _, followers = roles(cluster)
    url = followers[0].url
    stream = "cl-" + secrets.token_hex(4)
    if mode == "sync":
        with bb.Client(url, token=TOKEN) as c:
            r = c.append_batch(stream, [bb.Record(b"a"), bb.Record.json({"b": 1})])
            c.set_cursor(stream, "c", 1)
            assert c.cursor(stream, "c") == 1
            assert [x.offset for x in c.read(stream).records] == [0, 1]
    else:
        async def go() -> bb.AppendResult:
            async with bb.AsyncClient(url, token=TOKEN) as c:
                r = await c.append_batch(stream, [bb.Record(b"a"), bb.Record.json({"b": 1})])
                await c.set_cursor(stream, "c", 1)
                assert await c.cursor(stream, "c") == 1
                return r
        r = asyncio.run(go())
    assert (r.first_offset, r.count, r.durability) == (0, 2, "fsynced")


def test_leader_death_is_retried(cluster: list[Server]) -> None:
    leader, followers = roles(cluster)
    stream = "fail-" + secrets.token_hex(4)
    with bb.Client(followers[0].url, token=TOKEN, max_retries=30, retry_backoff=0.1, max_backoff=1.0) as c:
        c.append(stream, bb.Record(b"before"))
        leader.kill()
        t = time.monotonic()
        r = c.append(stream, bb.Record(b"after"), timeout=30)  # 503 no_leader, then a 307 to the new leader
        assert r.first_offset == 1, r
        assert [x.value for x in c.read(stream).records] == [b"before", b"after"]
    print(f"append across the leader's death took {time.monotonic() - t:.2f} s")
