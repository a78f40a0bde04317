// The stream lifecycle against a real `badbatch serve`: create, idempotent producers,
// forks, close, tails of a closed stream, delete (docs/http-api.md, Stream lifecycle).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import {
  Client,
  GoneError,
  InvalidOptionsError,
  NotFoundError,
  ProducerFencedError,
  ProducerSeqGapError,
  StreamClosedError,
  StreamExistsError,
  StreamSeqError,
} from "../src/index.js";
import type { Position, StoredRecord } from "../src/index.js";
import { ServerProc } from "./server.js";

let srv: ServerProc;
let c: Client;

before(async () => {
  srv = await ServerProc.start();
  c = new Client(srv.url);
});

after(async () => {
  await srv.close();
});

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (r: StoredRecord) => new TextDecoder().decode(r.value as Uint8Array);

/** Every record of a tail, which must end by itself within limitMs. */
async function tailAll(stream: string, from: Position = "earliest", limitMs = 10_000): Promise<StoredRecord[]> {
  const signal = AbortSignal.timeout(limitMs);
  const out: StoredRecord[] = [];
  for await (const r of c.tail(stream, from, { signal })) out.push(r);
  return out;
}

test("create: created, exists alike, conflict", async () => {
  const cfg = { contentType: "text/plain", ttlSeconds: 3600 };
  assert.equal(await c.createStream("lc-create", cfg), true);
  assert.equal(await c.createStream("lc-create", cfg), false);
  await assert.rejects(c.createStream("lc-create", {}), (e: unknown) => e instanceof StreamExistsError && e.status === 409);
  const info = await c.streamInfo("lc-create");
  assert.deepEqual([info.contentType, info.ttlSeconds, info.closed, info.forkedFrom], ["text/plain", 3600, false, undefined]);
  assert.equal(await c.createStream("lc-create-plain"), true);
  assert.equal((await c.streamInfo("lc-create-plain")).contentType, "application/octet-stream");
  await assert.rejects(c.createStream("lc-create-x", { ttlSeconds: 0.5 }), InvalidOptionsError);
});

test("producer: a repeat is replayed, a gap and an older epoch are refused with what the server carried", async () => {
  const s = "lc-producer";
  const first = await c.append(s, { value: bytes("a") }, { producer: { id: "p", epoch: 0, seq: 0 } });
  const again = await c.append(s, { value: bytes("a") }, { producer: { id: "p", epoch: 0, seq: 0 } });
  assert.equal(again.replayed, true);
  assert.equal(again.firstOffset, first.firstOffset);
  const gap = await c.append(s, { value: bytes("x") }, { producer: { id: "p", epoch: 0, seq: 5 } }).catch((e: unknown) => e);
  assert.ok(gap instanceof ProducerSeqGapError, String(gap));
  assert.deepEqual([gap.status, gap.expectedSeq, gap.receivedSeq, gap.producerEpoch], [409, 1, 5, 0]);
  await c.append(s, { value: bytes("b") }, { producer: { id: "p", epoch: 2, seq: 0 } });
  const fenced = await c.append(s, { value: bytes("x") }, { producer: { id: "p", epoch: 1, seq: 0 } }).catch((e: unknown) => e);
  assert.ok(fenced instanceof ProducerFencedError, String(fenced));
  assert.deepEqual([fenced.status, fenced.producerEpoch], [403, 2]);
  assert.deepEqual((await c.read(s)).records.map(text), ["a", "b"]);
});

test("streamSeq: a label must sort after the stream's last one, else StreamSeqError and nothing stored", async () => {
  const s = "lc-stream-seq";
  await c.append(s, { value: bytes("1") }, { streamSeq: "a" });
  await c.appendBatch(s, [{ value: bytes("2") }, { value: bytes("3") }], { streamSeq: "b" });
  const e = await c.append(s, { value: bytes("x") }, { streamSeq: "a" }).catch((e: unknown) => e);
  assert.ok(e instanceof StreamSeqError, String(e));
  assert.deepEqual([e.status, e.code, e.kind], [409, "stream_seq", "stream_seq"]);
  await assert.rejects(c.append(s, { value: bytes("x") }, { streamSeq: "b" }), StreamSeqError); // equal is not above
  assert.deepEqual((await c.read(s)).records.map(text), ["1", "2", "3"]);
  await c.append(s, { value: bytes("4") }); // no label: no condition
  await assert.rejects(c.append(s, { value: bytes("x") }, { streamSeq: "" }), InvalidOptionsError);
});

test("streamSeq: 256 printable ASCII characters are a label", async () => {
  const s = "lc-stream-seq-256";
  const first = "!".repeat(256);
  const second = "~" + " ".repeat(254) + "~";
  await c.append(s, { value: bytes("1") }, { streamSeq: first });
  await c.append(s, { value: bytes("2") }, { streamSeq: second });
  await assert.rejects(c.append(s, { value: bytes("x") }, { streamSeq: second }), StreamSeqError); // equal is not above
  assert.deepEqual((await c.read(s)).records.map(text), ["1", "2"]);
});

test("fork: reads the source below the fork offset, then its own", async () => {
  await c.appendBatch("lc-src", [{ value: bytes("s0") }, { value: bytes("s1") }, { value: bytes("s2") }]);
  await c.forkStream("lc-fork", "lc-src", 2);
  await c.append("lc-fork", { value: bytes("f2") });
  await c.append("lc-src", { value: bytes("s3") });
  const page = await c.read("lc-fork");
  assert.deepEqual(page.records.map((r) => [r.offset, text(r)]), [[0, "s0"], [1, "s1"], [2, "f2"]]);
  const info = await c.streamInfo("lc-fork");
  assert.deepEqual([info.forkedFrom, info.forkOffset], ["lc-src", 2]);
  await assert.rejects(c.forkStream("lc-fork", "lc-src", 1), StreamExistsError);
  await assert.rejects(c.forkStream("lc-fork-2", "lc-no-such-stream", 0), NotFoundError);
});

test("close: a final append closes, later appends are refused, tails end", async () => {
  const s = "lc-close";
  await c.append(s, { value: bytes("one") });
  await c.append(s, { value: bytes("last") }, { close: true });
  await assert.rejects(c.append(s, { value: bytes("more") }), (e: unknown) => e instanceof StreamClosedError && e.status === 409);
  await c.closeStream(s); // again: no error
  assert.equal((await c.streamInfo(s)).closed, true);
  assert.deepEqual((await tailAll(s)).map(text), ["one", "last"]);
  assert.deepEqual(await tailAll(s, "latest"), []);

  await c.append("lc-close-live", { value: bytes("x") });
  setTimeout(() => void c.closeStream("lc-close-live"), 300);
  assert.deepEqual((await tailAll("lc-close-live")).map(text), ["x"], "a live tail ends at the close");
});

test("delete: soft while a fork reads it (gone), then cascades (not_found)", async () => {
  await c.append("lc-del", { value: bytes("a") });
  await c.forkStream("lc-del-fork", "lc-del", 1);
  await c.deleteStream("lc-del");
  await assert.rejects(c.streamInfo("lc-del"), (e: unknown) => e instanceof GoneError && e.status === 410);
  assert.deepEqual((await c.read("lc-del-fork")).records.map(text), ["a"]);
  await c.deleteStream("lc-del-fork");
  await assert.rejects(c.streamInfo("lc-del"), NotFoundError);
  await assert.rejects(c.deleteStream("lc-del"), NotFoundError);
  assert.equal(await c.createStream("lc-del"), true);
  assert.equal((await c.streamInfo("lc-del")).nextOffset, 0);
});
