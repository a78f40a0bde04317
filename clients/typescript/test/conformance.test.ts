// The conformance runner (clients/conformance/README.md): every case in
// clients/conformance/cases/ against real servers, through the public API.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

import { BadBatchError, Client, OffsetMismatchError, Tail, decodeBase64 } from "../src/index.js";
import type { AppendRecord, ClientOptions, Position, StoredRecord } from "../src/index.js";
import { ServerProc, repoRoot } from "./server.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const confDir = join(repoRoot(), "clients", "conformance");
const profiles = JSON.parse(readFileSync(join(confDir, "servers.json"), "utf8")) as Record<
  string,
  { tokens?: boolean; args?: string[]; client_options?: Obj }
>;
const tokens = JSON.parse(readFileSync(join(confDir, "tokens.json"), "utf8")) as Record<string, string>;
// CONFORMANCE_CASES_DIR: run the cases of another directory (drafting new cases).
const casesDir = process.env.CONFORMANCE_CASES_DIR ?? join(confDir, "cases");
const caseFiles = readdirSync(casesDir).filter((f) => f.endsWith(".json")).sort();
const only = process.env.CONFORMANCE_CASE; // run one case by name (debugging)

// One server per profile, started when a case first needs it.
const servers = new Map<string, Promise<ServerProc>>();
function server(profile: string): Promise<ServerProc> {
  let s = servers.get(profile);
  if (!s) {
    const p = profiles[profile];
    if (!p) throw new Error(`unknown profile ${profile}`);
    const args = [...(p.args ?? [])];
    if (p.tokens) args.push("--tokens-file", join(confDir, "tokens.txt"));
    s = ServerProc.start(args);
    servers.set(profile, s);
  }
  return s;
}

after(async () => {
  for (const s of servers.values()) await (await s).close();
});

// client_options (a case's or a step's; an extension for cases that need,
// say, no retries): the vocabulary's snake_case names, durations in ms.
function clientOptions(o: Obj | undefined): ClientOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o ?? {})) {
    const base = k.replace(/_ms$/, "");
    const camel = base.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const ms = ["retryBackoff", "maxBackoff", "maxRetryAfter", "requestTimeout", "connectTimeout", "tailIdleTimeout"];
    out[ms.includes(camel) ? camel + "Ms" : camel] = v;
  }
  return out as ClientOptions;
}

class Run {
  readonly runId = randomBytes(4).toString("hex");
  readonly saved = new Map<string, unknown>();
  readonly tails = new Map<string, { iter?: Tail; ac: AbortController; err?: unknown }>();
  private readonly clients = new Map<string, Client>();

  constructor(readonly c: Obj, readonly srv: ServerProc, readonly profile: string) {}

  client(step: Obj): Client {
    const tokenName = (step.token as string | undefined) ?? (profiles[this.profile]!.tokens ? "admin" : undefined);
    const opts = {
      ...clientOptions(profiles[this.profile]!.client_options),
      ...clientOptions(this.c.client_options as Obj),
      ...clientOptions(step.client_options as Obj),
    };
    const key = `${tokenName ?? ""} ${JSON.stringify(opts)}`;
    let cl = this.clients.get(key);
    if (!cl) {
      if (tokenName !== undefined && tokens[tokenName] === undefined) throw new Error(`unknown token name ${tokenName}`);
      cl = new Client(this.srv.url, { ...opts, ...(tokenName !== undefined ? { token: tokens[tokenName]! } : {}) });
      this.clients.set(key, cl);
    }
    return cl;
  }

  stream(name: Json | undefined, step: Obj): string {
    if (typeof name !== "string") throw new Error(`step ${JSON.stringify(step)}: no stream`);
    return step.raw_stream === true ? name : `${name}-${this.runId}`;
  }

  /** Resolves {"ref": "ID.field", "plus": N} anywhere in v. */
  resolve(v: Json | undefined): Json | undefined {
    if (Array.isArray(v)) return v.map((x) => this.resolve(x) as Json);
    if (v !== null && typeof v === "object") {
      if (typeof v.ref === "string") {
        const [id, ...path] = v.ref.split(".");
        if (!this.saved.has(id!)) throw new Error(`reference to unknown id ${id}`);
        let cur: unknown = this.saved.get(id!);
        for (const p of path) {
          if (cur === null || typeof cur !== "object") throw new Error(`reference ${v.ref}: no ${p}`);
          cur = (cur as Record<string, unknown>)[p];
        }
        if (cur === undefined) throw new Error(`reference ${v.ref} is undefined`);
        if (v.plus !== undefined) {
          if (typeof cur !== "number") throw new Error(`reference ${v.ref} + plus: not a number`);
          return cur + (v.plus as number);
        }
        return cur as Json;
      }
      const out: Obj = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.resolve(x) as Json;
      return out;
    }
    return v;
  }
}

/** JSON for a message, cut (a record may hold megabytes). */
function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 400 ? s.slice(0, 400) + `... (${s.length} chars)` : s;
}

function fillBytes(f: Obj): Uint8Array {
  const text = new TextEncoder().encode(String(f.text));
  const n = f.length as number;
  const out = new Uint8Array(n);
  if (text.length > 0) for (let i = 0; i < n; i++) out[i] = text[i % text.length]!;
  return out;
}

function inputRecord(r: Obj): AppendRecord {
  const rec: AppendRecord = {};
  if (r.key !== undefined && r.key !== null) rec.key = r.key as string;
  if (r.headers !== undefined) rec.headers = r.headers as Record<string, string>;
  if (r.timestamp !== undefined) rec.timestamp = r.timestamp as string;
  if (r.value !== undefined) rec.value = r.value;
  else if (r.value_base64 !== undefined) rec.value = decodeBase64(r.value_base64 as string);
  else if (r.value_fill !== undefined) rec.value = fillBytes(r.value_fill as Obj);
  return rec;
}

function position(v: Json | undefined): Position {
  if (v === undefined || v === null) return "earliest";
  if (v === "earliest" || v === "latest") return v;
  if (typeof v === "number") return v;
  if (typeof v === "object" && !Array.isArray(v) && typeof v.time === "string") return { time: v.time };
  if (typeof v === "object" && !Array.isArray(v) && typeof v.offset === "number") return v.offset;
  throw new Error(`bad position ${JSON.stringify(v)}`);
}

/** A stored record in the cases' (wire) shape, for references. */
function wireRecord(r: StoredRecord): Record<string, unknown> {
  const w: Record<string, unknown> = { stream: r.stream, offset: r.offset, seq: r.seq, timestamp: r.timestampText, headers: r.headers };
  if (r.key !== undefined) w.key = r.key;
  if (r.isJson) w.value = r.value;
  else w.value_base64 = Buffer.from(r.value as Uint8Array).toString("base64");
  return w;
}

function snake(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())] = v;
  return out;
}

const isTimeField = (k: string) => k === "timestamp" || k.endsWith("_timestamp") || k.endsWith("_time");

function eq(expected: unknown, actual: unknown, where: string, key = ""): void {
  if (isTimeField(key) && typeof expected === "string") {
    const a = actual instanceof Date ? actual.getTime() : typeof actual === "string" ? Date.parse(actual) : NaN;
    // Instants: compare to the millisecond unless the actual text has the full precision.
    if (typeof actual === "string") {
      assert.equal(nanos(actual), nanos(expected), `${where}: ${key} ${String(actual)} != ${expected}`);
    } else {
      assert.equal(a, Date.parse(expected), `${where}: ${key} ${String(actual)} != ${expected}`);
    }
    return;
  }
  if (expected === null && actual === undefined) return;
  assert.deepStrictEqual(actual, expected, `${where}: ${key}`);
}

/** An RFC 3339 time as nanoseconds since the epoch (a BigInt), for exact comparison. */
function nanos(t: string): bigint {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i.exec(t);
  if (!m) throw new Error(`not RFC 3339: ${t}`);
  const ms = Date.parse(m[1]! + m[3]!);
  const frac = (m[2] ?? "").padEnd(9, "0").slice(0, 9);
  return BigInt(ms) * 1_000_000n + BigInt(frac);
}

function checkRecords(run: Run, expected: Obj[], actual: StoredRecord[], where: string): void {
  assert.equal(actual.length, expected.length, `${where}: got ${actual.length} records, want ${expected.length}: ${short(actual.map(wireRecord))}`);
  expected.forEach((raw, i) => {
    const e = run.resolve(raw) as Obj;
    const a = actual[i]!;
    const w = `${where}: record ${i}`;
    for (const [k, v] of Object.entries(e)) {
      switch (k) {
        case "value":
          assert.ok(a.isJson, `${w}: want a JSON value, got bytes`);
          assert.deepStrictEqual(a.value, v, `${w}: value`);
          break;
        case "value_base64":
          assert.ok(!a.isJson, `${w}: want bytes, got JSON ${JSON.stringify(a.value)}`);
          assert.deepStrictEqual(Buffer.from(a.value as Uint8Array), Buffer.from(decodeBase64(v as string)), `${w}: value_base64`);
          break;
        case "value_fill":
          assert.ok(!a.isJson, `${w}: want bytes, got JSON`);
          assert.ok(Buffer.from(a.value as Uint8Array).equals(Buffer.from(fillBytes(v as Obj))), `${w}: value_fill`);
          break;
        case "stream":
          assert.equal(a.stream, e.raw_stream === true ? v : `${v as string}-${run.runId}`, `${w}: stream`);
          break;
        case "timestamp":
          eq(v, a.timestampText, w, "timestamp");
          break;
        case "key":
          if (v === null) assert.equal(a.key, undefined, `${w}: key`);
          else assert.equal(a.key, v, `${w}: key`);
          break;
        case "headers":
          assert.deepStrictEqual(a.headers, v ?? {}, `${w}: headers`);
          break;
        case "raw_stream":
          break;
        default:
          eq(v, (wireRecord(a) as Record<string, unknown>)[k], w, k);
      }
    }
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

interface Outcome {
  result?: Record<string, unknown>; // in the wire's shape, for result and refs
  records?: StoredRecord[];
  streams?: string[];
  saved?: unknown;
}

async function perform(run: Run, step: Obj): Promise<Outcome> {
  const op = step.op as string;
  const cl = () => run.client(step);
  switch (op) {
    case "append": {
      const recs = (step.records as Obj[]).map(inputRecord);
      const opts: { expectedLastOffset?: number; idempotencyKey?: string; streamSeq?: string } = {};
      const elo = run.resolve(step.expected_last_offset);
      if (elo !== undefined && elo !== null) opts.expectedLastOffset = elo as number;
      if (step.idempotency_key !== undefined) opts.idempotencyKey = step.idempotency_key as string;
      if (step.stream_seq !== undefined) opts.streamSeq = step.stream_seq as string;
      const s = run.stream(step.stream, step);
      const res = recs.length === 1 ? await cl().append(s, recs[0]!, opts) : await cl().appendBatch(s, recs, opts);
      const w = snake(res);
      return { result: w, saved: w };
    }
    case "read": {
      const limit = run.resolve(step.limit) as number | undefined;
      const page = await cl().read(run.stream(step.stream, step), position(run.resolve(step.from)), limit !== undefined ? { limit } : {});
      const w = { next_offset: page.nextOffset, records: page.records.map(wireRecord) };
      return { result: w, records: page.records, saved: w };
    }
    case "read_all": {
      const limit = run.resolve(step.limit) as number | undefined;
      const all: StoredRecord[] = [];
      for await (const page of cl().pages(run.stream(step.stream, step), position(run.resolve(step.from)), limit !== undefined ? { limit } : {})) {
        all.push(...page.records);
      }
      const w = all.map(wireRecord);
      return { records: all, saved: w, result: { records: w } };
    }
    case "read_global": {
      const limit = run.resolve(step.limit) as number | undefined;
      const fromSeq = (run.resolve(step.from_seq) as number | undefined) ?? 0;
      const page = await cl().readGlobal(fromSeq, limit !== undefined ? { limit } : {});
      // A global read sees other cases' streams too: keep this run's, as the case names them.
      const w = { next_seq: page.nextSeq, records: page.records.map(wireRecord) };
      return { result: w, records: page.records.filter((r) => r.stream.endsWith(`-${run.runId}`)), saved: w };
    }
    case "streams": {
      const list = await cl().streams();
      const w = list.map(snake);
      return { streams: list.map((s) => s.stream), saved: w, result: { streams: w } };
    }
    case "stream_info": {
      const info = await cl().streamInfo(run.stream(step.stream, step));
      const w = snake(info);
      return { result: w, saved: w };
    }
    case "set_cursor": {
      await cl().setCursor(run.stream(step.stream, step), step.name as string, run.resolve(step.offset) as number);
      return {};
    }
    case "cursor": {
      const off = await cl().cursor(run.stream(step.stream, step), step.name as string);
      return { result: { offset: off }, saved: { offset: off } };
    }
    case "tail_open": {
      const name = step.tail as string;
      if (run.tails.has(name)) throw new Error(`tail ${name} is already open`);
      const ac = new AbortController();
      // openTail: the tail is connected (its position fixed) when the step ends.
      const iter = await withTimeout(
        cl().openTail(run.stream(step.stream, step), position(run.resolve(step.from)), { signal: ac.signal }),
        (step.timeout_ms as number | undefined) ?? 10_000,
        "tail_open",
      ).catch((e: unknown) => {
        ac.abort();
        // The case format: an error met at tail_open is the outcome of
        // the next tail_next (clients/conformance/README.md).
        if (!(e instanceof BadBatchError)) throw e;
        run.tails.set(name, { ac, err: e });
        return undefined;
      });
      if (iter) run.tails.set(name, { iter, ac });
      return {};
    }
    case "tail_next": {
      const t = run.tails.get(step.tail as string);
      if (!t) throw new Error(`no tail ${String(step.tail)}`);
      if (t.err !== undefined) throw t.err;
      const iter = t.iter!;
      const count = step.count as number;
      const ms = (step.timeout_ms as number | undefined) ?? 10_000;
      const got: StoredRecord[] = [];
      await withTimeout(
        (async () => {
          while (got.length < count) {
            const r = await iter.next();
            if (r.done) throw new Error("the tail ended");
            got.push(r.value);
          }
        })(),
        ms,
        `tail_next (${got.length} of ${count} records)`,
      ).catch((e) => {
        if (e instanceof Error && /timed out/.test(e.message)) e.message += ` (got ${got.length} of ${count})`;
        throw e;
      });
      const w = got.map(wireRecord);
      return { records: got, saved: w, result: { records: w } };
    }
    case "tail_close": {
      const t = run.tails.get(step.tail as string);
      if (!t) throw new Error(`no tail ${String(step.tail)}`);
      t.ac.abort();
      await t.iter?.return().catch(() => {});
      run.tails.delete(step.tail as string);
      return {};
    }
    case "restart": {
      await run.srv.restart();
      return {};
    }
  }
  throw new Error(`unknown op ${op}`);
}

async function runCase(c: Obj): Promise<void> {
  const profile = (c.profile as string | undefined) ?? "default";
  const run = new Run(c, await server(profile), profile);
  try {
    for (const [i, step] of (c.steps as Obj[]).entries()) {
      const where = `${c.name as string} step ${i} (${step.op as string})`;
      const expect = step.expect as Obj | undefined;
      let out: Outcome;
      try {
        out = await perform(run, step);
      } catch (e) {
        if (expect?.error === undefined) {
          throw Object.assign(new Error(`${where}: ${(e as Error).message}`), { cause: e });
        }
        assert.ok(e instanceof BadBatchError, `${where}: want a BadBatchError ${String(expect.error)}, got ${String(e)}`);
        assert.equal(e.kind, expect.error, `${where}: kind (${e.message})`);
        if (expect.status !== undefined) assert.equal(e.status, expect.status, `${where}: status`);
        if (expect.current_last_offset !== undefined) {
          assert.ok(e instanceof OffsetMismatchError, `${where}: want an OffsetMismatchError`);
          assert.equal(e.currentLastOffset, run.resolve(expect.current_last_offset), `${where}: current_last_offset`);
        }
        continue;
      }
      if (step.id !== undefined) run.saved.set(step.id as string, out.saved ?? out.result ?? {});
      if (!expect) continue;
      assert.equal(expect.error, undefined, `${where}: want error ${String(expect.error)}, the call succeeded: ${short(out.result)}`);
      if (expect.result !== undefined) {
        const want = run.resolve(expect.result) as Obj;
        assert.ok(out.result, `${where}: this op has no result`);
        for (const [k, v] of Object.entries(want)) {
          // The suffix rule applies to a stream named in a result, too.
          const e = k === "stream" && typeof v === "string" && step.raw_stream !== true ? `${v}-${run.runId}` : v;
          eq(e, out.result![k], where, k);
        }
      }
      if (expect.records !== undefined) {
        assert.ok(out.records, `${where}: this op returns no records`);
        checkRecords(run, expect.records as Obj[], out.records!, where);
      }
      if (expect.streams_include !== undefined) {
        assert.ok(out.streams, `${where}: this op lists no streams`);
        for (const n of expect.streams_include as Json[]) {
          const name = `${n as string}-${run.runId}`;
          assert.ok(out.streams!.includes(name), `${where}: ${name} not in ${JSON.stringify(out.streams)}`);
        }
      }
    }
  } finally {
    for (const t of run.tails.values()) {
      t.ac.abort();
      await t.iter?.return().catch(() => {});
    }
  }
}

function suite(title: string, dir: string, files: string[]): void {
  describe(title, () => {
    for (const f of files) {
      const c = JSON.parse(readFileSync(join(dir, f), "utf8")) as Obj;
      const name = (c.name as string | undefined) ?? f;
      if (only && name !== only && f !== only) continue;
      test(name, { timeout: 180_000 }, () => runCase(c));
    }
  });
}

suite("conformance", casesDir, caseFiles);

// The runner's own cases (test/runner-cases): every op and expectation of
// the format, so that a new shared case cannot find an untested path here.
const ownDir = join(repoRoot(), "clients", "typescript", "test", "runner-cases");
if (!process.env.CONFORMANCE_CASES_DIR) {
  suite("runner", ownDir, readdirSync(ownDir).filter((f) => f.endsWith(".json")).sort());
}
