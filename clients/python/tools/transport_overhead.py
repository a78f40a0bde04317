"""Per-request overhead of this package's own transports against httpx.AsyncClient (GET /healthz).

    /usr/bin/python3 tools/transport_overhead.py PORT
"""
import asyncio, time, sys
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "src"))
from badbatch._async_transport import AsyncTransport
from badbatch._sync_transport import SyncTransport
import httpx
URL = "http://127.0.0.1:%s/healthz" % sys.argv[1]
N = 2000
async def ours():
    t = AsyncTransport(5, 8); s = time.perf_counter()
    for _ in range(N): await t.send("GET", URL, {}, None, 5)
    return (time.perf_counter() - s) / N * 1e6
async def hx():
    async with httpx.AsyncClient() as c:
        s = time.perf_counter()
        for _ in range(N): await c.get(URL)
        return (time.perf_counter() - s) / N * 1e6
def sync_ours():
    t = SyncTransport(5, 8); s = time.perf_counter()
    for _ in range(N): t.send("GET", URL, {}, None, 5)
    return (time.perf_counter() - s) / N * 1e6
for r in range(2):
    print("us/req: ours-async", round(asyncio.run(ours())), "httpx-async", round(asyncio.run(hx())), "ours-sync", round(sync_ours()))
