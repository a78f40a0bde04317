// Unit tests: options, encoding, the SSE parser, and the retry, redirect and
// tail logic against small fake servers (node:http).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import {
  BadBatchError,
  Client,
  ConnectionError,
  DEFAULTS,
  InvalidOptionsError,
  InvalidStreamError,
  NoLeaderError,
  NotLeaderError,
  NotFoundError,
  OffsetMismatchError,
  ProducerFencedError,
  ProducerSeqGapError,
  RateLimitedError,
  StreamClosedError,
  StreamExistsError,
  StreamSeqError,
  TimeoutError,
  UnavailableError,
  decodeBase64,
  encodeBase64,
} from "../src/index.js";
import { SSEParser } from "../src/sse.js";
import { encodeBase64Portable } from "../src/base64.js";
import { backoff } from "../src/client.js";
import type { AppendRecord } from "../src/types.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

interface Fake {
  url: string;
  requests: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

async function fake(handler: Handler): Promise<Fake> {
  const requests: Fake["requests"] = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

const appended = { stream: "s", first_offset: 0, last_offset: 0, count: 1, first_seq: 1, last_seq: 1, durability: "fsynced", replayed: false };
const errBody = (code: string, message = code) => ({ error: { code, message } });
const fast = { retryBackoffMs: 1, maxBackoffMs: 5 };

describe("options", () => {
  test("defaults fill in, the caller's object is not modified, the result is frozen", () => {
    const mine = { token: "secret-token-0123456789", maxRetries: 2 };
    const before = JSON.stringify(mine);
    const c = new Client("http://127.0.0.1:1/", mine);
    assert.equal(JSON.stringify(mine), before);
    assert.equal(c.options.maxRetries, 2);
    assert.equal(c.options.retryBackoffMs, DEFAULTS.retryBackoffMs);
    assert.equal(c.options.requestTimeoutMs, 30_000);
    assert.equal(c.options.generateIdempotencyKeys, true);
    assert.equal(c.options.userAgent, DEFAULTS.userAgent);
    assert.ok(Object.isFrozen(c.options));
    assert.equal(c.baseUrl, "http://127.0.0.1:1");
  });

  for (const [name, opts] of [
    ["negative retries", { maxRetries: -1 }],
    ["fractional retries", { maxRetries: 1.5 }],
    ["zero timeout", { requestTimeoutMs: 0 }],
    ["NaN backoff", { retryBackoffMs: NaN }],
    ["max below base", { retryBackoffMs: 100, maxBackoffMs: 10 }],
    ["token with a space", { token: "a b" }],
    ["empty token", { token: "" }],
    ["unknown option", { maxRetry: 3 }],
    ["not a boolean", { generateIdempotencyKeys: "yes" }],
  ] as const) {
    test(`invalid: ${name}`, () => {
      assert.throws(() => new Client("http://x", opts as never), (e: unknown) => e instanceof InvalidOptionsError && e.kind === "invalid_options");
    });
  }
  test("invalid base URL", () => {
    assert.throws(() => new Client("ftp://x"), InvalidOptionsError);
    assert.throws(() => new Client("not a url"), InvalidOptionsError);
  });
  test("bad stream names fail before any request", async () => {
    const c = new Client("http://127.0.0.1:1");
    await assert.rejects(c.append("../x", { value: 1 }), (e: unknown) => e instanceof InvalidStreamError && e.status === 400);
    assert.throws(() => c.tail(""), InvalidStreamError);
  });
});

describe("encoding", () => {
  test("base64 round-trips every length", () => {
    for (let n = 0; n < 70; n++) {
      const b = new Uint8Array(n * (n > 60 ? 1000 : 1)).map((_, i) => (i * 37 + n) & 255);
      const s = encodeBase64(b);
      assert.equal(s, Buffer.from(b).toString("base64"));
      assert.equal(encodeBase64Portable(b), s);
      assert.deepEqual(decodeBase64(s), b);
    }
    assert.throws(() => decodeBase64("a$=="));
  });

  test("an append's body is the JSON of the wire records, on the node:http path and through fetch", async () => {
    const f = await fake((_q, _b, res) => json(res, 200, appended));
    try {
      const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253]);
      const view = new DataView(bytes.buffer, 1, 3);
      const recs: AppendRecord[] = [
        { value: bytes },
        { key: 'k "quoted" \u2028 é', value: bytes.subarray(2, 5) },
        { value: new Uint8Array(0) },
        { value: bytes.buffer },
        { value: view },
        { key: "j", value: { a: [1, "x"] }, headers: { h: "v" }, timestamp: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) },
        { value: null },
        { value: "text" },
        {},
        { value: bytes, headers: { a: "b" } },
        { value: bytes, timestamp: "2026-01-02T00:00:00Z" },
      ];
      const b64 = (u: Uint8Array) => Buffer.from(u).toString("base64");
      const want = JSON.stringify({
        records: [
          { value_base64: b64(bytes) },
          { key: 'k "quoted" \u2028 é', value_base64: b64(bytes.subarray(2, 5)) },
          { value_base64: "" },
          { value_base64: b64(bytes) },
          { value_base64: b64(bytes.subarray(1, 4)) },
          { key: "j", value: { a: [1, "x"] }, headers: { h: "v" }, timestamp: "2026-01-02T03:04:05.006Z" },
          { value: null },
          { value: "text" },
          {},
          { value_base64: b64(bytes), headers: { a: "b" } },
          { value_base64: b64(bytes), timestamp: "2026-01-02T00:00:00Z" },
        ],
      });
      for (const c of [new Client(f.url), new Client(f.url, { fetch: globalThis.fetch })]) {
        await c.appendBatch("s", recs);
        await c.append("s", recs[1]!);
      }
      assert.equal(f.requests.length, 4);
      for (const r of f.requests) assert.equal(r.headers["content-type"], "application/json");
      assert.equal(f.requests[0]!.body, want);
      assert.equal(f.requests[2]!.body, want);
      assert.equal(f.requests[1]!.body, JSON.stringify({ key: 'k "quoted" \u2028 é', value_base64: b64(bytes.subarray(2, 5)) }));
      assert.equal(f.requests[3]!.body, f.requests[1]!.body);
      // A hole in the array is null, as JSON.stringify writes it (the server refuses it).
      await new Client(f.url).appendBatch("s", [{ value: bytes }, , { value: bytes }] as never);
      assert.equal(f.requests[4]!.body, `{"records":[{"value_base64":"${b64(bytes)}"},null,{"value_base64":"${b64(bytes)}"}]}`);
    } finally {
      await f.close();
    }
  });

  test("SSE parser: fields, comments, CRLF, split chunks, multi-line data", () => {
    const p = new SSEParser();
    const text = "retry: 1000\n\n: keep-alive\n\nid: 7\ndata: {\"a\":1}\n\nevent: error\r\ndata: x\r\ndata: y\r\n\r\nid: 8\ndata:z\n\n";
    const all = [];
    for (let i = 0; i < text.length; i += 3) all.push(...p.push(text.slice(i, i + 3)));
    assert.deepEqual(all, [
      { event: "message", data: '{"a":1}', id: "7" },
      { event: "error", data: "x\ny", id: undefined },
      { event: "message", data: "z", id: "8" },
    ]);
  });

  test("backoff is full jitter under the cap", () => {
    for (let a = 0; a < 20; a++) {
      const d = backoff(100, 5000, a);
      assert.ok(d >= 0 && d <= Math.min(5000, 100 * 2 ** a));
    }
  });
});

describe("retries", () => {
  test("429 with Retry-After is retried under the same idempotency key", async () => {
    let n = 0;
    const f = await fake((_req, _body, res) => {
      if (n++ === 0) return json(res, 429, errBody("rate_limited"), { "Retry-After": "1" });
      json(res, 201, appended);
    });
    try {
      const c = new Client(f.url, fast);
      const t0 = Date.now();
      const r = await c.append("s", { value: { a: 1 } });
      assert.ok(Date.now() - t0 >= 950, "Retry-After was honoured");
      assert.equal(r.firstOffset, 0);
      assert.equal(f.requests.length, 2);
      const k = f.requests[0]!.headers["idempotency-key"];
      assert.match(String(k), /^[0-9a-f]{32}$/);
      assert.equal(f.requests[1]!.headers["idempotency-key"], k);
      assert.deepEqual(JSON.parse(f.requests[0]!.body), { value: { a: 1 } });
    } finally {
      await f.close();
    }
  });

  test("Retry-After above maxRetryAfterMs is not waited for", async () => {
    const f = await fake((_q, _b, res) => json(res, 503, errBody("no_leader"), { "Retry-After": "60" }));
    try {
      const c = new Client(f.url, { ...fast, maxRetryAfterMs: 1000 });
      await assert.rejects(c.append("s", { value: 1 }), (e: unknown) => e instanceof NoLeaderError && e.retryAfterMs === 60_000 && e.status === 503);
      assert.equal(f.requests.length, 1);
    } finally {
      await f.close();
    }
  });

  test("503 no_leader is retried, then succeeds", async () => {
    let n = 0;
    const f = await fake((_q, _b, res) => (n++ < 2 ? json(res, 503, errBody("no_leader"), { "Retry-After": "0" }) : json(res, 201, appended)));
    try {
      const r = await new Client(f.url, fast).appendBatch("s", [{ value: 1 }]);
      assert.equal(r.count, 1);
      assert.equal(f.requests.length, 3);
    } finally {
      await f.close();
    }
  });

  test("without a key, 503 no_leader is retried and 503 unavailable is not (its outcome is unknown)", async () => {
    let n = 0;
    const f = await fake((req, _b, res) => {
      if (req.url!.includes("unavail")) return json(res, 503, errBody("unavailable"));
      return n++ < 1 ? json(res, 503, errBody("no_leader"), { "Retry-After": "0" }) : json(res, 201, appended);
    });
    try {
      const c = new Client(f.url, { ...fast, generateIdempotencyKeys: false });
      assert.equal((await c.appendBatch("s", [{ value: 1 }])).count, 1);
      assert.equal(f.requests.length, 2);
      await assert.rejects(c.appendBatch("unavail", [{ value: 1 }]), (e: unknown) => e instanceof UnavailableError);
      assert.equal(f.requests.length, 3);
    } finally {
      await f.close();
    }
  });

  test("maxRetries bounds the attempts; the error is typed", async () => {
    const f = await fake((_q, _b, res) => json(res, 503, errBody("unavailable", "journal failed")));
    try {
      const c = new Client(f.url, { ...fast, maxRetries: 2 });
      await assert.rejects(c.read("s"), (e: unknown) => e instanceof UnavailableError && e.message === "journal failed" && e.code === "unavailable");
      assert.equal(f.requests.length, 3);
    } finally {
      await f.close();
    }
  });

  test("without a key, an append is not retried after a 502 or a broken connection", async () => {
    const f = await fake((req, _b, res) => {
      if (req.url!.includes("broken")) return res.socket!.destroy();
      json(res, 502, errBody("bad_gateway"));
    });
    try {
      const c = new Client(f.url, { ...fast, generateIdempotencyKeys: false });
      await assert.rejects(c.append("s", { value: 1 }), (e: unknown) => e instanceof BadBatchError && e.status === 502);
      assert.equal(f.requests.length, 1);
      assert.equal(f.requests[0]!.headers["idempotency-key"], undefined);
      await assert.rejects(c.append("broken", { value: 1 }), ConnectionError);
      assert.equal(f.requests.length, 2);
      // With a key of the caller's, the broken connection is retried.
      await assert.rejects(c.append("broken", { value: 1 }, { idempotencyKey: "mine" }), ConnectionError);
      assert.equal(f.requests.length, 2 + 6);
      assert.equal(f.requests.at(-1)!.headers["idempotency-key"], "mine");
    } finally {
      await f.close();
    }
  });

  test("connection refused is retried even without a key", async () => {
    const f = await fake(() => {});
    const url = f.url;
    await f.close();
    const c = new Client(url, { ...fast, maxRetries: 2, generateIdempotencyKeys: false });
    await assert.rejects(c.append("s", { value: 1 }), (e: unknown) => e instanceof ConnectionError && /ECONNREFUSED/.test(e.message));
  });

  test("409 carries currentLastOffset and is not retried", async () => {
    const f = await fake((_q, _b, res) => json(res, 409, { error: { code: "offset_mismatch", message: "m", current_last_offset: 4 } }, { "Stream-Next-Offset": "5" }));
    try {
      await assert.rejects(new Client(f.url).append("s", { value: 1 }, { expectedLastOffset: 2 }), (e: unknown) => {
        assert.ok(e instanceof OffsetMismatchError);
        assert.equal(e.currentLastOffset, 4);
        assert.equal(e.status, 409);
        assert.equal(e.kind, "offset_mismatch");
        return true;
      });
      assert.equal(f.requests.length, 1);
      assert.equal(f.requests[0]!.headers["expected-last-offset"], "2");
    } finally {
      await f.close();
    }
  });

  test("requestTimeoutMs cuts an attempt; timeoutMs cuts the call; the signal cancels", async () => {
    const f = await fake(() => {}); // never answers
    try {
      const c = new Client(f.url, { ...fast, requestTimeoutMs: 50, maxRetries: 1 });
      await assert.rejects(c.read("s"), TimeoutError);
      assert.equal(f.requests.length, 2);
      const c2 = new Client(f.url, fast);
      const t0 = Date.now();
      await assert.rejects(c2.read("s", "earliest", { timeoutMs: 100 }), TimeoutError);
      assert.ok(Date.now() - t0 < 2000);
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error("stop")), 50);
      await assert.rejects(c2.streams({ signal: ac.signal }), /stop/);
    } finally {
      await f.close();
    }
  });

  test("an unknown code falls back on the status; 404 is NotFoundError", async () => {
    const f = await fake((req, _b, res) => (req.url!.includes("x") ? json(res, 404, errBody("not_found")) : json(res, 418, errBody("teapot"))));
    try {
      const c = new Client(f.url);
      await assert.rejects(c.streamInfo("x"), NotFoundError);
      await assert.rejects(c.streamInfo("y"), (e: unknown) => e instanceof BadBatchError && e.code === "teapot" && e.status === 418);
    } finally {
      await f.close();
    }
  });
});

describe("redirects", () => {
  test("a follower's 307 with Leader-Id is followed to another origin with the token", async () => {
    const leader = await fake((_q, _b, res) => json(res, 201, appended));
    const follower = await fake((req, _b, res) => {
      res.writeHead(307, { Location: leader.url + req.url, "Leader-Id": "1" });
      res.end();
    });
    try {
      const c = new Client(follower.url, { token: "tok-0123456789abcdef" });
      await c.append("s", { value: 1 }, { idempotencyKey: "k" });
      assert.equal(leader.requests.length, 1);
      const r = leader.requests[0]!;
      assert.equal(r.method, "POST");
      assert.equal(r.headers.authorization, "Bearer tok-0123456789abcdef");
      assert.equal(r.headers["idempotency-key"], "k");
      assert.deepEqual(JSON.parse(r.body), { value: 1 });
    } finally {
      await leader.close();
      await follower.close();
    }
  });

  test("a browser's opaque redirect is a NotLeaderError (fetch option, as a browser answers redirect: manual)", async () => {
    const seen: RequestInit[] = [];
    const browserLike = (async (_url: string, init: RequestInit) => {
      seen.push(init);
      return { type: "opaqueredirect", status: 0, headers: new Headers(), body: null, text: async () => "" } as unknown as Response;
    }) as typeof fetch;
    const c = new Client("http://127.0.0.1:1", { fetch: browserLike, token: "tok-0123456789abcdef" });
    await assert.rejects(c.append("s", { value: 1 }), (e: unknown) => e instanceof NotLeaderError && e.kind === "not_leader" && e.status === 307);
    assert.equal(seen.length, 1, "not retried");
    assert.equal(seen[0]!.redirect, "manual");
    const h = seen[0]!.headers as Record<string, string>;
    assert.equal(h.Authorization, "Bearer tok-0123456789abcdef");
    assert.match(h["User-Agent"]!, /^badbatch-typescript-client\//);
  });

  test("a redirect without Leader-Id to another origin drops the token", async () => {
    const other = await fake((_q, _b, res) => json(res, 200, { streams: [] }));
    const first = await fake((req, _b, res) => {
      res.writeHead(307, { Location: other.url + req.url });
      res.end();
    });
    try {
      await new Client(first.url, { token: "tok-0123456789abcdef" }).streams();
      assert.equal(other.requests[0]!.headers.authorization, undefined);
    } finally {
      await other.close();
      await first.close();
    }
  });
});

describe("tail", () => {
  const rec = (o: number) => JSON.stringify({ offset: o, seq: o + 10, timestamp: "2026-01-01T00:00:00.123456789Z", value: o });

  test("reconnects with Last-Event-ID after a cut and skips duplicates", async () => {
    let conn = 0;
    const f = await fake((req, _b, res) => {
      conn++;
      res.writeHead(200, { "Content-Type": "text/event-stream", "Stream-Next-Offset": "0" });
      res.write("retry: 1000\n\n");
      if (conn === 1) {
        res.write(`id: 0\ndata: ${rec(0)}\n\nid: 1\ndata: ${rec(1)}\n\n`);
        setTimeout(() => res.socket!.destroy(), 50); // cut mid-stream
        return;
      }
      assert.equal(req.headers["last-event-id"], "1");
      // A server that repeats a record must not cause a duplicate.
      res.write(`id: 1\ndata: ${rec(1)}\n\nid: 2\ndata: ${rec(2)}\n\n`);
    });
    try {
      const c = new Client(f.url, fast);
      const got: number[] = [];
      for await (const r of c.tail("s", "earliest")) {
        got.push(r.offset);
        assert.equal(r.value, r.offset);
        assert.equal(r.isJson, true);
        assert.equal(r.stream, "s");
        assert.equal(r.timestampText, "2026-01-01T00:00:00.123456789Z");
        if (got.length === 3) break;
      }
      assert.deepEqual(got, [0, 1, 2]);
      assert.equal(conn, 2);
      assert.equal(f.requests[0]!.url, "/v1/streams/s/records?from=earliest");
    } finally {
      await f.close();
    }
  });

  test("an idle connection is reopened; an error event that retries cannot fix ends the tail", async () => {
    let conn = 0;
    const f = await fake((req, _b, res) => {
      conn++;
      res.writeHead(200, { "Content-Type": "text/event-stream", "Stream-Next-Offset": "5" });
      if (conn === 1) return void res.write(": silent from here\n\n");
      assert.equal(req.headers["last-event-id"], "4", "resumes at the answer's Stream-Next-Offset");
      res.write(`event: error\ndata: ${JSON.stringify(errBody("gone", "below retention"))}\n\n`);
    });
    try {
      const c = new Client(f.url, { ...fast, tailIdleTimeoutMs: 100 });
      const t = await c.openTail("s", "latest");
      await assert.rejects(t.next(), (e: unknown) => e instanceof BadBatchError && e.kind === "gone" && e.status === 410);
      assert.equal(conn, 2);
    } finally {
      await f.close();
    }
  });

  test("openTail rejects a missing stream; the signal stops a tail", async () => {
    const f = await fake((req, _b, res) => {
      if (req.url!.includes("/missing/")) return json(res, 404, errBody("not_found"));
      res.writeHead(200, { "Content-Type": "text/event-stream", "Stream-Next-Offset": "0" });
      res.write("retry: 1000\n\n");
    });
    try {
      const c = new Client(f.url, fast);
      await assert.rejects(c.openTail("missing"), NotFoundError);
      const ac = new AbortController();
      const t = await c.openTail("s", 0, { signal: ac.signal });
      setTimeout(() => ac.abort(new Error("enough")), 50);
      await assert.rejects(t.next(), /enough/);
      const t2 = await c.openTail("s");
      await t2.close(); // never iterated: closes its connection
    } finally {
      await f.close();
    }
  });

  test("429 on connect waits Retry-After and retries", async () => {
    let conn = 0;
    const f = await fake((_q, _b, res) => {
      if (conn++ === 0) return json(res, 429, errBody("rate_limited"), { "Retry-After": "0" });
      res.writeHead(200, { "Content-Type": "text/event-stream", "Stream-Next-Offset": "0" });
      res.write(`id: 0\ndata: ${rec(0)}\n\n`);
    });
    try {
      const t = new Client(f.url, fast).tail("s");
      const r = await t.next();
      assert.equal(r.value?.offset, 0);
      await t.return();
    } finally {
      await f.close();
    }
  });

  test("RateLimitedError is exported and typed", () => {
    const e = new RateLimitedError("x", { status: 429, retryAfterMs: 1000 });
    assert.equal(e.kind, "rate_limited");
    assert.ok(e instanceof BadBatchError);
    assert.equal(e.name, "RateLimitedError");
  });
});

describe("stream lifecycle", () => {
  test("requests, retries and the lifecycle error kinds", async () => {
    const script: ((req: IncomingMessage, res: ServerResponse) => void)[] = [];
    const f = await fake((req, _b, res) => script.shift()!(req, res));
    const ok = (status: number, body: unknown = {}) => (_q: IncomingMessage, res: ServerResponse) => json(res, status, body);
    const fail = (status: number, code: string, headers: Record<string, string> = {}) => (_q: IncomingMessage, res: ServerResponse) =>
      json(res, status, errBody(code), headers);
    try {
      const c = new Client(f.url, { ...fast, generateIdempotencyKeys: false });
      script.push(fail(503, "unavailable"), ok(201, { stream: "s", first_offset: 0, next_offset: 0, records: 0, bytes: 0 }));
      assert.equal(await c.createStream("s", { contentType: "a/b", expiresAt: new Date("2030-01-02T03:04:05Z"), closed: true }), true);
      assert.equal(f.requests.length, 2, "a create is retried");
      assert.equal(f.requests[1]!.method, "PUT");
      assert.equal(f.requests[1]!.url, "/v1/streams/s");
      assert.deepEqual(JSON.parse(f.requests[1]!.body), { content_type: "a/b", expires_at: "2030-01-02T03:04:05.000Z", closed: true });
      script.push(ok(200));
      assert.equal(await c.createStream("s"), false);
      assert.deepEqual(JSON.parse(f.requests[2]!.body), {});
      await assert.rejects(c.createStream("s", { ttlSeconds: 1.5 }), InvalidOptionsError);

      script.push(ok(201));
      await c.forkStream("f", "s", 3, { ttlSeconds: 60 });
      assert.deepEqual(JSON.parse(f.requests[3]!.body), { fork: { stream: "s", offset: 3 }, ttl_seconds: 60 });

      script.push(fail(503, "unavailable"), ok(200));
      await c.closeStream("s");
      assert.deepEqual(f.requests.slice(4).map((r) => `${r.method} ${r.url}`), ["POST /v1/streams/s/close", "POST /v1/streams/s/close"]);

      script.push(fail(503, "unavailable"));
      await assert.rejects(c.deleteStream("s"), UnavailableError);
      assert.equal(f.requests.length, 7, "a delete is not retried after an unknown outcome");
      assert.equal(f.requests[6]!.method, "DELETE");

      script.push(fail(502, "bad_gateway"), ok(201, appended));
      await c.append("s", { value: 1 }, { producer: { id: "p", epoch: 1, seq: 2 }, close: true, streamSeq: "s-7" });
      const h = f.requests[8]!.headers;
      assert.deepEqual([h["producer-id"], h["producer-epoch"], h["producer-seq"], h["stream-closed"]], ["p", "1", "2", "true"]);
      assert.deepEqual([f.requests[7]!.headers["stream-seq"], h["stream-seq"]], ["s-7", "s-7"], "Stream-Seq on every attempt");
      assert.equal(h["idempotency-key"], undefined);
      assert.equal(f.requests.length, 9, "a producer's append is retried");
      await assert.rejects(c.append("s", { value: 1 }, { producer: { id: "", epoch: 0, seq: 0 } }), InvalidOptionsError);

      const carried = { "Producer-Epoch": "4", "Producer-Expected-Seq": "8", "Producer-Received-Seq": "9" };
      for (const [code, status, Cls] of [
        ["stream_closed", 409, StreamClosedError],
        ["stream_exists", 409, StreamExistsError],
        ["producer_seq_gap", 409, ProducerSeqGapError],
        ["producer_fenced", 403, ProducerFencedError],
        ["stream_seq", 409, StreamSeqError],
      ] as const) {
        const sent: number = f.requests.length;
        script.push(fail(status, code, carried));
        const e = await c.append("s", { value: 1 }, { producer: { id: "p", epoch: 4, seq: 9 } }).then(
          () => assert.fail("no error"),
          (e: unknown) => e,
        );
        assert.ok(e instanceof Cls && e.kind === code && e.status === status, `${code}: ${String(e)}`);
        assert.equal(f.requests.length, sent + 1, `${code} is not retried`);
        if (e instanceof ProducerSeqGapError) assert.deepEqual([e.expectedSeq, e.receivedSeq, e.producerEpoch], [8, 9, 4]);
        if (e instanceof ProducerFencedError) assert.equal(e.producerEpoch, 4);
      }
    } finally {
      await f.close();
    }
  });

  test("a streamSeq that is not 1 to 256 printable ASCII characters is refused before any request", async () => {
    const f = await fake((_q, _b, res) => json(res, 201, appended));
    try {
      const c = new Client(f.url, fast);
      for (const [name, label] of [
        ["257 bytes", "s".repeat(257)],
        ["a newline", "s-\n7"],
        ["non-ASCII", "s-\u00e9"],
        ["empty", ""],
      ] as const) {
        await assert.rejects(
          c.append("s", { value: 1 }, { streamSeq: label }),
          (e: unknown) => e instanceof InvalidOptionsError && e.kind === "invalid_options",
          name,
        );
      }
      assert.equal(f.requests.length, 0, "a bad label sends nothing");
      await c.append("s", { value: 1 }, { streamSeq: "~".repeat(256) });
      assert.equal(f.requests[0]!.headers["stream-seq"], "~".repeat(256));
    } finally {
      await f.close();
    }
  });

  test("an idempotencyKey that is not 1 to 256 printable ASCII characters is refused before any request", async () => {
    const f = await fake((_q, _b, res) => json(res, 201, appended));
    try {
      const c = new Client(f.url, fast);
      for (const [name, key] of [
        ["257 bytes", "k".repeat(257)],
        ["a newline", "k-\n7"],
        ["non-ASCII", "k-\u00e9"],
        ["empty", ""],
      ] as const) {
        await assert.rejects(
          c.append("s", { value: 1 }, { idempotencyKey: key }),
          (e: unknown) => e instanceof InvalidOptionsError && e.kind === "invalid_options",
          name,
        );
      }
      assert.equal(f.requests.length, 0, "a bad key sends nothing");
      await c.appendBatch("s", [{ value: 1 }], { idempotencyKey: "~".repeat(256) });
      assert.equal(f.requests[0]!.headers["idempotency-key"], "~".repeat(256));
    } finally {
      await f.close();
    }
  });

  test("a tail ends at the closed event instead of reconnecting", async () => {
    let conn = 0;
    const rec = (o: number) => JSON.stringify({ offset: o, seq: o, timestamp: "2026-01-01T00:00:00Z", value: o });
    const f = await fake((_req, _b, res) => {
      conn++;
      res.writeHead(200, { "Content-Type": "text/event-stream", "Stream-Next-Offset": "0" });
      res.write(`id: 0\ndata: ${rec(0)}\n\nid: 1\ndata: ${rec(1)}\n\nevent: closed\ndata: {}\n\n`);
      // The connection stays open: only the event ends the tail.
    });
    try {
      const c = new Client(f.url, fast);
      const got: number[] = [];
      for await (const r of c.tail("s")) got.push(r.offset);
      assert.deepEqual(got, [0, 1]);
      assert.equal(conn, 1);
    } finally {
      await f.close();
    }
  });
});
