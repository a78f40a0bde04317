"""The client benchmark (clients/BENCH.md): bench.sh MODE URL STREAM, one JSON line on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time

import badbatch as bb

CALLERS = 4
BATCH = 100
SIZE = 100


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def batch() -> list[bb.Record]:
    return [bb.Record(os.urandom(SIZE)) for _ in range(BATCH)]


def append_sync(url: str, stream: str, secs: float, token: str | None) -> int:
    total = [0] * CALLERS
    errors: list[BaseException] = []
    with bb.Client(url, token=token) as c:
        stop = time.monotonic() + secs

        def caller(i: int) -> None:
            recs = batch()
            try:
                while time.monotonic() < stop:
                    total[i] += c.append_batch(stream, recs).count
            except BaseException as e:  # reported below
                errors.append(e)
        ts = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    if errors:
        raise errors[0]
    return sum(total)


def append_async(url: str, stream: str, secs: float, token: str | None) -> int:
    async def go() -> int:
        async with bb.AsyncClient(url, token=token) as c:
            stop = time.monotonic() + secs

            async def caller() -> int:
                recs, n = batch(), 0
                while time.monotonic() < stop:
                    n += (await c.append_batch(stream, recs)).count
                return n
            return sum(await asyncio.gather(*[caller() for _ in range(CALLERS)]))
    return asyncio.run(go())


def tail_sync(url: str, stream: str, n: int, token: str | None) -> int:
    got = 0
    with bb.Client(url, token=token) as c, c.tail(stream, "earliest") as t:
        for _ in t:
            got += 1
            if got >= n:
                break
    return got


def tail_async(url: str, stream: str, n: int, token: str | None) -> int:
    async def go() -> int:
        got = 0
        async with bb.AsyncClient(url, token=token) as c:
            t = await c.tail(stream, "earliest")
            async for _ in t:
                got += 1
                if got >= n:
                    break
            await t.aclose()
        return got
    return asyncio.run(go())


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("append", "tail"):
        log("usage: bench.sh append|tail URL STREAM")
        return 2
    mode, url, stream = sys.argv[1:]
    flavour = os.environ.get("BENCH_PY_CLIENT", "sync")  # sync (threads) or async (tasks)
    token = os.environ.get("BADBATCH_TOKEN") or None
    t0 = time.monotonic()
    if mode == "append":
        secs = float(os.environ.get("BENCH_SECONDS", "5"))
        n = (append_async if flavour == "async" else append_sync)(url, stream, secs, token)
    else:
        want = int(os.environ.get("BENCH_RECORDS", "200000"))
        n = (tail_async if flavour == "async" else tail_sync)(url, stream, want, token)
        if n < want:
            raise SystemExit(f"tail ended after {n} of {want} records")
    secs = time.monotonic() - t0
    log(f"python {flavour} client, {mode}: {n} records in {secs:.2f} s")
    print(json.dumps({"client": "python", "mode": mode, "records": n, "seconds": round(secs, 2),
                      "records_per_sec": round(n / secs, 1)}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
