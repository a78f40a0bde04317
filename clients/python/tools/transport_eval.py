"""Transport evidence for docs/decisions/0013-python-client-transport.md (not part of the package).

Run against a local `badbatch serve` (--sync always) with Debian's python3-httpx installed:
    /usr/bin/python3 tools/transport_eval.py PORT [SSE_RECORDS]
It compares http.client, httpx (sync) and httpx.AsyncClient: per-request overhead (GET /healthz),
appends of 100 x 100 B from 4 callers for 3 s, and SSE read+parse of SSE_RECORDS records.
"""
import http.client, time, json, base64, os, sys, threading, asyncio
import httpx
HOST, PORT = "127.0.0.1", int(sys.argv[1])
BASE = f"http://{HOST}:{PORT}"
N = 2000
def t_stdlib_get():
    c = http.client.HTTPConnection(HOST, PORT)
    t = time.perf_counter()
    for _ in range(N):
        c.request("GET", "/healthz"); r = c.getresponse(); r.read()
    return (time.perf_counter() - t) / N * 1e6
def t_httpx_get():
    c = httpx.Client()
    t = time.perf_counter()
    for _ in range(N):
        c.get(BASE + "/healthz").read()
    return (time.perf_counter() - t) / N * 1e6
async def _a():
    async with httpx.AsyncClient() as c:
        t = time.perf_counter()
        for _ in range(N):
            r = await c.get(BASE + "/healthz")
        return (time.perf_counter() - t) / N * 1e6
body = "\n".join(json.dumps({"value_base64": base64.b64encode(os.urandom(100)).decode()}) for _ in range(100)).encode()
H = {"Content-Type": "application/x-ndjson"}
def appends_stdlib(secs=3, threads=4):
    cnt = [0]; stop = time.time() + secs
    def w():
        c = http.client.HTTPConnection(HOST, PORT)
        while time.time() < stop:
            c.request("POST", "/v1/streams/bstd/records", body=body, headers=H); r = c.getresponse(); r.read()
            assert r.status == 201; cnt[0] += 100
    ts = [threading.Thread(target=w) for _ in range(threads)]; [x.start() for x in ts]; [x.join() for x in ts]
    return cnt[0] / secs
def appends_httpx(secs=3, threads=4):
    cnt = [0]; stop = time.time() + secs; c = httpx.Client()
    def w():
        while time.time() < stop:
            r = c.post(BASE + "/v1/streams/bhx/records", content=body, headers=H)
            assert r.status_code == 201; cnt[0] += 100
    ts = [threading.Thread(target=w) for _ in range(threads)]; [x.start() for x in ts]; [x.join() for x in ts]
    return cnt[0] / secs
async def appends_httpx_async(secs=3, tasks=4):
    cnt = [0]; stop = time.time() + secs
    async with httpx.AsyncClient() as c:
        async def w():
            while time.time() < stop:
                r = await c.post(BASE + "/v1/streams/bhxa/records", content=body, headers=H)
                assert r.status_code == 201; cnt[0] += 100
        await asyncio.gather(*[w() for _ in range(tasks)])
    return cnt[0] / secs
def sse_stdlib(stream, n):
    c = http.client.HTTPConnection(HOST, PORT)
    c.request("GET", f"/v1/streams/{stream}/records?from=earliest", headers={"Accept": "text/event-stream"})
    r = c.getresponse(); got = 0; buf = b""; t = time.perf_counter()
    while got < n:
        chunk = r.read1(65536)
        buf += chunk
        *events, buf = buf.split(b"\n\n")
        for e in events:
            for line in e.split(b"\n"):
                if line.startswith(b"data:"):
                    json.loads(line[5:]); got += 1
    return n / (time.perf_counter() - t)
def sse_httpx(stream, n):
    with httpx.Client(timeout=None) as c:
        with c.stream("GET", f"{BASE}/v1/streams/{stream}/records?from=earliest", headers={"Accept": "text/event-stream"}) as r:
            got = 0; buf = b""; t = time.perf_counter()
            for chunk in r.iter_raw():
                buf += chunk
                *events, buf = buf.split(b"\n\n")
                for e in events:
                    for line in e.split(b"\n"):
                        if line.startswith(b"data:"):
                            json.loads(line[5:]); got += 1
                if got >= n: break
    return n / (time.perf_counter() - t)
async def sse_httpx_async(stream, n):
    async with httpx.AsyncClient(timeout=None) as c:
        async with c.stream("GET", f"{BASE}/v1/streams/{stream}/records?from=earliest", headers={"Accept": "text/event-stream"}) as r:
            got = 0; buf = b""; t = time.perf_counter()
            async for chunk in r.aiter_raw():
                buf += chunk
                *events, buf = buf.split(b"\n\n")
                for e in events:
                    for line in e.split(b"\n"):
                        if line.startswith(b"data:"):
                            json.loads(line[5:]); got += 1
                if got >= n: break
    return n / (time.perf_counter() - t)
print("GET /healthz us/req stdlib", round(t_stdlib_get()), "httpx", round(t_httpx_get()), "httpx-async", round(asyncio.run(_a())))
print("append rec/s stdlib", round(appends_stdlib()), "httpx", round(appends_httpx()), "httpx-async", round(asyncio.run(appends_httpx_async())))
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
print("sse rec/s stdlib", round(sse_stdlib("bstd", n)), "httpx", round(sse_httpx("bstd", n)), "httpx-async", round(asyncio.run(sse_httpx_async("bstd", n))))
