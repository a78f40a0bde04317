import { decodeBase64, encodeBase64 } from "./base64.js";
import {
  BadBatchError,
  ConnectionError,
  InternalError,
  InvalidOptionsError,
  InvalidStreamError,
  NotLeaderError,
  TimeoutError,
  isPermanent,
  makeError,
} from "./errors.js";
import { checkCallTimeout, resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import { SSEParser } from "./sse.js";
import { isNode, nodeSender, type Answerish, type SendInit, type Sender } from "./transport.js";
import type {
  AppendOptions,
  AppendRecord,
  AppendResult,
  CallOptions,
  GlobalPage,
  Page,
  Position,
  Producer,
  ReadOptions,
  StoredRecord,
  StreamConfig,
  StreamInfo,
  TailOptions,
} from "./types.js";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const MAX_REDIRECTS = 10;

/**
 * How a request may be retried.
 * - read: safe to repeat (GET, PUT of a cursor): any transient failure;
 * - keyed: an append under an idempotency key: any transient failure except a 500;
 * - unkeyed: an append without a key: only when it surely never reached the
 *   store (connection refused, 429, 503 no_leader).
 */
type RetryMode = "read" | "write" | "keyed" | "unkeyed";

interface Req {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  mode: RetryMode;
}

interface Answer {
  status: number;
  headers: Answerish["headers"];
  data: unknown;
}

/**
 * A BadBatch client. Safe for concurrent use: make one per server and share
 * it (fetch pools the connections).
 *
 * Offsets and seqs are JavaScript numbers (exact up to 2^53 - 1); an answer
 * with a larger one is an `internal` error rather than a silently wrong number.
 */
export class Client {
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** The options in force: the caller's, defaults filled in (frozen). */
  readonly options: ResolvedOptions;
  private readonly fetchFn: typeof fetch;
  /** Sends through fetch (tails always; other requests in browsers or with options.fetch). */
  private readonly fetchSend: (url: string, init: SendInit) => Promise<Response>;
  /** What sends the other requests, once known (under Node without options.fetch: node:http). */
  private sender: Sender | undefined;
  private senderLoading: Promise<Sender> | undefined;

  constructor(baseUrl: string | URL, options?: ClientOptions) {
    let u: URL;
    try {
      u = new URL(String(baseUrl));
    } catch {
      throw new InvalidOptionsError(`baseUrl ${JSON.stringify(String(baseUrl))} is not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new InvalidOptionsError(`baseUrl: want http or https, not ${u.protocol}`);
    }
    if (u.search || u.hash) throw new InvalidOptionsError("baseUrl: no query or fragment");
    this.baseUrl = u.toString().replace(/\/+$/, "");
    this.options = resolveOptions(options);
    const f = this.options.fetch;
    // A detached window.fetch throws "Illegal invocation" in browsers.
    this.fetchFn = f === globalThis.fetch ? (input, init) => globalThis.fetch(input, init) : f;
    this.fetchSend = (url, init) => this.fetchFn(url, { ...init, redirect: "manual" });
    if (!isNode || options?.fetch !== undefined) this.sender = this.fetchSend;
  }

  /** The sender of ordinary requests: node:http under Node (loaded at the first call), else fetch. */
  private getSender(): Promise<Sender> {
    this.senderLoading ??= nodeSender().then(
      (s) => (this.sender = s ?? this.fetchSend),
      () => (this.sender = this.fetchSend),
    );
    return this.senderLoading;
  }

  // ---- appending ----------------------------------------------------------

  /** Appends one record. */
  append(stream: string, record: AppendRecord, options?: AppendOptions): Promise<AppendResult> {
    return this.doAppend(stream, () => encodeRecordText(record), options);
  }

  /** Appends several records atomically: consecutive offsets, or nothing stored. */
  appendBatch(stream: string, records: readonly AppendRecord[], options?: AppendOptions): Promise<AppendResult> {
    return this.doAppend(
      stream,
      () => {
        if (!Array.isArray(records)) throw new InvalidOptionsError("records: want an array");
        return encodeBatchText(records);
      },
      options,
    );
  }

  private async doAppend(stream: string, body: () => string, options: AppendOptions | undefined): Promise<AppendResult> {
    const o = options ?? {};
    checkName("stream", stream);
    checkCallTimeout(o.timeoutMs);
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (o.expectedLastOffset !== undefined) {
      checkInt("expectedLastOffset", o.expectedLastOffset);
      headers["Expected-Last-Offset"] = String(o.expectedLastOffset);
    }
    let key = o.idempotencyKey;
    if (key !== undefined && (typeof key !== "string" || !/^[\x20-\x7e]{1,256}$/.test(key))) {
      throw new InvalidOptionsError("idempotencyKey: want 1 to 256 printable ASCII characters");
    }
    if (o.producer !== undefined) producerHeaders(o.producer, headers);
    if (o.close !== undefined && typeof o.close !== "boolean") throw new InvalidOptionsError("close: want a boolean");
    if (o.close === true) headers["Stream-Closed"] = "true";
    if (o.streamSeq !== undefined) {
      if (typeof o.streamSeq !== "string" || !/^[\x20-\x7e]{1,256}$/.test(o.streamSeq)) {
        throw new InvalidOptionsError("streamSeq: want 1 to 256 printable ASCII characters");
      }
      headers["Stream-Seq"] = o.streamSeq;
    }
    if (key === undefined && this.options.generateIdempotencyKeys) key = newIdempotencyKey();
    if (key !== undefined) headers["Idempotency-Key"] = key;
    let text: string;
    try {
      text = body();
    } catch (e) {
      if (e instanceof BadBatchError) throw e;
      throw new InvalidOptionsError(`records cannot be encoded: ${(e as Error).message}`, { cause: e });
    }
    const a = await this.call(
      // A producer's seq makes a repeat harmless too: the server answers it with the first result.
      { method: "POST", path: `/v1/streams/${stream}/records`, headers, body: text, mode: key !== undefined || o.producer !== undefined ? "keyed" : "unkeyed" },
      o,
    );
    return decodeAppendResult(a.data);
  }

  // ---- stream lifecycle ---------------------------------------------------

  /**
   * Creates a stream with a configuration. Resolves true when it created it, false when the
   * stream existed with the same configuration (nothing changed); another configuration is
   * StreamExistsError. Safe to retry.
   */
  async createStream(stream: string, config?: StreamConfig, options?: CallOptions): Promise<boolean> {
    const o = options ?? {};
    checkName("stream", stream);
    const body = streamConfigBody(config ?? {});
    checkCallTimeout(o.timeoutMs);
    const a = await this.putStream(stream, body, o);
    return a.status === 201;
  }

  /**
   * Creates `stream` as a fork of `source` at `offset`: it reads the source's records below
   * `offset`, then its own. Without a config it takes the source's. A fork onto an existing
   * stream is StreamExistsError; a missing source NotFoundError.
   */
  async forkStream(stream: string, source: string, offset: number, config?: StreamConfig, options?: CallOptions): Promise<void> {
    const o = options ?? {};
    checkName("stream", stream);
    checkName("source", source);
    checkInt("offset", offset);
    const body: Record<string, unknown> = { fork: { stream: source, offset }, ...streamConfigBody(config ?? {}) };
    checkCallTimeout(o.timeoutMs);
    await this.putStream(stream, body, o);
  }

  private putStream(stream: string, body: Record<string, unknown>, o: CallOptions): Promise<Answer> {
    // Safe to retry: an equal configuration again changes nothing.
    return this.call(
      { method: "PUT", path: `/v1/streams/${stream}`, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), mode: "write" },
      o,
    );
  }

  /**
   * Closes a stream: appends are refused (StreamClosedError) and tails end after its last
   * record. Closing a closed stream again succeeds; safe to retry. To close with a final
   * append atomically, append with `close: true`.
   */
  async closeStream(stream: string, options?: CallOptions): Promise<void> {
    const o = options ?? {};
    checkName("stream", stream);
    checkCallTimeout(o.timeoutMs);
    await this.call({ method: "POST", path: `/v1/streams/${stream}/close`, mode: "write" }, o);
  }

  /**
   * Deletes a stream (NotFoundError when there is none). A stream that forks still read is
   * soft-deleted: it answers GoneError until its last fork is deleted. Not retried after an
   * unknown outcome: a repeat of a delete that took effect would answer NotFoundError.
   */
  async deleteStream(stream: string, options?: CallOptions): Promise<void> {
    const o = options ?? {};
    checkName("stream", stream);
    checkCallTimeout(o.timeoutMs);
    await this.call({ method: "DELETE", path: `/v1/streams/${stream}`, mode: "unkeyed" }, o);
  }

  // ---- reading ------------------------------------------------------------

  /** Reads one page of a stream from a position (default earliest). */
  async read(stream: string, from: Position = "earliest", options?: ReadOptions): Promise<Page> {
    const o = options ?? {};
    checkName("stream", stream);
    checkCallTimeout(o.timeoutMs);
    const query = positionQuery(from);
    if (o.limit !== undefined) {
      checkInt("limit", o.limit);
      query.limit = String(o.limit);
    }
    const a = await this.call({ method: "GET", path: `/v1/streams/${stream}/records`, query, mode: "read" }, o);
    const d = obj(a.data, "page");
    return {
      records: arr(d.records, "records").map((r) => decodeRecord(r, stream)),
      nextOffset: int(d.next_offset, "next_offset"),
    };
  }

  /**
   * Reads page after page from a position until a page comes back empty (the
   * live end at the time of that read). Each page is fetched when the loop
   * asks for it.
   */
  async *pages(stream: string, from: Position = "earliest", options?: ReadOptions): AsyncGenerator<Page, void, undefined> {
    let pos: Position = from;
    for (;;) {
      const page = await this.read(stream, pos, options);
      if (page.records.length === 0) return;
      yield page;
      pos = page.nextOffset;
    }
  }

  /** Reads one page of the global log (all streams, commit order) from a seq. */
  async readGlobal(fromSeq = 0, options?: ReadOptions): Promise<GlobalPage> {
    const o = options ?? {};
    checkInt("fromSeq", fromSeq);
    checkCallTimeout(o.timeoutMs);
    const query: Record<string, string> = { from_seq: String(fromSeq) };
    if (o.limit !== undefined) {
      checkInt("limit", o.limit);
      query.limit = String(o.limit);
    }
    const a = await this.call({ method: "GET", path: "/v1/records", query, mode: "read" }, o);
    const d = obj(a.data, "page");
    return {
      records: arr(d.records, "records").map((r) => decodeRecord(r, undefined)),
      nextSeq: int(d.next_seq, "next_seq"),
    };
  }

  // ---- streams and cursors -----------------------------------------------

  /** The streams the token may read. */
  async streams(options?: CallOptions): Promise<StreamInfo[]> {
    const o = options ?? {};
    checkCallTimeout(o.timeoutMs);
    const a = await this.call({ method: "GET", path: "/v1/streams", mode: "read" }, o);
    return arr(obj(a.data, "streams").streams, "streams").map(decodeInfo);
  }

  /** One stream's information. */
  async streamInfo(stream: string, options?: CallOptions): Promise<StreamInfo> {
    const o = options ?? {};
    checkName("stream", stream);
    checkCallTimeout(o.timeoutMs);
    const a = await this.call({ method: "GET", path: `/v1/streams/${stream}`, mode: "read" }, o);
    return decodeInfo(a.data);
  }

  /** Stores a named consumer cursor. */
  async setCursor(stream: string, name: string, offset: number, options?: CallOptions): Promise<void> {
    const o = options ?? {};
    checkName("stream", stream);
    checkName("cursor name", name);
    checkInt("offset", offset);
    checkCallTimeout(o.timeoutMs);
    await this.call(
      {
        method: "PUT",
        path: `/v1/streams/${stream}/cursors/${name}`,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ offset }),
        mode: "write",
      },
      o,
    );
  }

  /** Reads a named cursor's offset (NotFoundError when it was never set). */
  async cursor(stream: string, name: string, options?: CallOptions): Promise<number> {
    const o = options ?? {};
    checkName("stream", stream);
    checkName("cursor name", name);
    checkCallTimeout(o.timeoutMs);
    const a = await this.call({ method: "GET", path: `/v1/streams/${stream}/cursors/${name}`, mode: "read" }, o);
    return int(obj(a.data, "cursor").offset, "offset");
  }

  // ---- tailing ------------------------------------------------------------

  /**
   * Tails a stream live from a position (default earliest), over SSE. The
   * iterator connects at its first `next()`; use {@link openTail} to connect
   * first (so that "latest" means the end at that moment, and a missing
   * stream fails at once).
   *
   * The iterator reconnects after any failure (a server restart included)
   * with `Last-Event-ID` and skips anything it already yielded: no gap, no
   * duplicate. It ends when the caller breaks out of the loop or calls
   * `return()`, or when the stream is closed (after its last record), throws the signal's reason when `options.signal` aborts, and
   * throws the error when a retry cannot fix it (not_found, gone, forbidden,
   * unauthorized, ...).
   */
  tail(stream: string, from: Position = "earliest", options?: TailOptions): Tail {
    checkName("stream", stream);
    const query = positionQuery(from); // validates now, not at the first next()
    return new Tail(this.tailLoop(stream, query, options?.signal, undefined), undefined);
  }

  /**
   * Like {@link tail}, but resolves once the first connection is open (after
   * retrying transient failures): "latest" is then fixed, and not_found,
   * forbidden and the like reject here. Close the tail (`break`, `return()`
   * or the signal) when done with it.
   */
  async openTail(stream: string, from: Position = "earliest", options?: TailOptions): Promise<Tail> {
    checkName("stream", stream);
    const query = positionQuery(from);
    const signal = options?.signal;
    for (let failures = 0; ; failures++) {
      try {
        const conn = await this.connectTail(stream, query, undefined, signal);
        return new Tail(this.tailLoop(stream, query, signal, conn), conn);
      } catch (e) {
        const err = this.tailFailure(e, signal);
        await sleep(this.tailWait(err, failures), signal);
      }
    }
  }

  /** Opens one SSE connection; throws the answer's error when it is not 200. */
  private async connectTail(stream: string, startQuery: Record<string, string>, next: number | undefined, signal: AbortSignal | undefined): Promise<TailConn> {
    signal?.throwIfAborted();
    const conn = new TailConn(signal);
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      let query = startQuery;
      if (next !== undefined) {
        if (next > 0) {
          headers["Last-Event-ID"] = String(next - 1);
          query = {};
        } else query = { from: "0" };
      }
      conn.arm(this.options.connectTimeoutMs, "tail connection not answered");
      const res = await this.fetchFollowing(this.fetchSend, this.url(`/v1/streams/${stream}/records`, query), { method: "GET", headers: this.headers(headers) }, conn.ac.signal);
      if (res.status !== 200) throw errorFromAnswer(res, await res.text());
      if (!res.body) throw new InternalError("tail: the answer has no body");
      const h = res.headers.get("Stream-Next-Offset");
      if (h !== null && /^\d+$/.test(h)) conn.start = int(Number(h), "Stream-Next-Offset");
      conn.reader = res.body.getReader();
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /** The error a failed tail connection stands for; rethrows what ends the tail. */
  private tailFailure(e: unknown, signal: AbortSignal | undefined): BadBatchError {
    if (signal?.aborted) throw signal.reason;
    if (e instanceof BadBatchError) {
      if (isPermanent(e)) throw e;
      return e;
    }
    return new ConnectionError(`tail: ${describeNetworkError(e)}`, { cause: e });
  }

  /** How long to wait before reconnecting: Retry-After when the server gave one, else backoff. */
  private tailWait(err: BadBatchError, failures: number): number {
    const o = this.options;
    if (err.retryAfterMs !== undefined && err.retryAfterMs <= o.maxRetryAfterMs) return err.retryAfterMs;
    return backoff(o.retryBackoffMs, o.maxBackoffMs, failures);
  }

  private async *tailLoop(
    stream: string,
    startQuery: Record<string, string>,
    signal: AbortSignal | undefined,
    initial: TailConn | undefined,
  ): AsyncGenerator<StoredRecord, void, undefined> {
    const idleMs = this.options.tailIdleTimeoutMs;
    let next: number | undefined = initial?.start; // the next offset to yield, once known
    let failures = 0;
    let conn = initial;
    for (;;) {
      let failure: BadBatchError;
      try {
        if (conn === undefined) conn = await this.connectTail(stream, startQuery, next, signal);
        if (next === undefined) next = conn.start;
        const reader = conn.reader!;
        const decoder = new TextDecoder();
        const parser = new SSEParser();
        conn.arm(idleMs, `tail connection silent for ${idleMs} ms`);
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          failures = 0;
          const events = parser.push(decoder.decode(value, { stream: true }));
          if (events.length === 0) {
            conn.arm(idleMs, `tail connection silent for ${idleMs} ms`);
            continue;
          }
          conn.disarm(); // a slow consumer is not an idle connection
          for (const ev of events) {
            if (ev.event === "error") {
              let data: unknown;
              try {
                data = JSON.parse(ev.data);
              } catch {
                data = undefined;
              }
              throw errorFromBody(data, 0, ev.data, undefined, undefined);
            }
            if (ev.event === "closed") return; // the stream is closed: every record was sent
            if (ev.event !== "message") continue;
            let raw: unknown;
            try {
              raw = JSON.parse(ev.data);
            } catch (e) {
              throw new InternalError(`tail: an event is not JSON: ${(e as Error).message}`);
            }
            const rec = decodeRecord(raw, stream);
            if (next !== undefined && rec.offset < next) continue; // already yielded
            next = rec.offset + 1;
            yield rec;
            signal?.throwIfAborted();
          }
          conn.arm(idleMs, `tail connection silent for ${idleMs} ms`);
        }
        // The server ended the stream (a shutdown): reconnect.
        failure = new ConnectionError("tail: the server ended the stream");
      } catch (e) {
        failure = this.tailFailure(conn?.timeout ?? e, signal);
      } finally {
        conn?.close();
        conn = undefined;
      }
      await sleep(this.tailWait(failure, failures), signal);
      failures++;
    }
  }

  // ---- transport ----------------------------------------------------------

  private url(path: string, query?: Record<string, string>): string {
    let u = this.baseUrl + path;
    if (query) {
      const q = new URLSearchParams(query).toString();
      if (q) u += "?" + q;
    }
    return u;
  }

  private headers(extra?: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { Accept: "application/json", ...extra };
    if (this.options.token !== undefined) h.Authorization = `Bearer ${this.options.token}`;
    if (isNode) h["User-Agent"] = this.options.userAgent;
    return h;
  }

  /**
   * fetch with redirects handled here (redirect: "manual"): fetch itself
   * drops Authorization on a cross-origin redirect, and a cluster follower
   * redirects to the leader, another origin. The token is kept only when the
   * answer names its leader (Leader-Id) and never from https to http. In a
   * browser a manual redirect is opaque (no Location): that is a
   * NotLeaderError; point browser pages at the leader.
   */
  private async fetchFollowing<R extends Answerish>(
    send: (url: string, init: SendInit) => Promise<R>,
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
    signal: AbortSignal,
  ): Promise<R> {
    let cur = url;
    const headers = { ...init.headers };
    for (let hop = 0; ; hop++) {
      const res = await send(cur, { ...init, headers, signal });
      if (res.type === "opaqueredirect") {
        throw new NotLeaderError(
          "the server redirected (a cluster follower?) and this runtime does not expose redirects (a browser): send requests to the leader",
          { status: 307 },
        );
      }
      if (res.status !== 301 && res.status !== 302 && res.status !== 303 && res.status !== 307 && res.status !== 308) return res;
      const loc = res.headers.get("Location");
      if (loc === null) return res;
      if (hop >= MAX_REDIRECTS) {
        await res.body?.cancel().catch(() => {});
        throw new NotLeaderError(`stopped after ${MAX_REDIRECTS} redirects`, { status: res.status, requestId: res.headers.get("X-Request-Id") ?? undefined });
      }
      const from = new URL(cur);
      const to = new URL(loc, cur);
      await res.body?.cancel().catch(() => {});
      const sameOrigin = from.origin === to.origin;
      const keepToken = sameOrigin || (res.headers.has("Leader-Id") && !(from.protocol === "https:" && to.protocol === "http:"));
      if (!keepToken) delete headers.Authorization;
      cur = to.toString();
    }
  }

  /** One call: attempts, retries with backoff (Retry-After honoured), deadlines. */
  private async call(req: Req, call: CallOptions): Promise<Answer> {
    const opts = this.options;
    const callSignal = call.signal;
    callSignal?.throwIfAborted();
    // The whole call's deadline, retries included (only when there is a signal or a timeout).
    const deadline = callSignal !== undefined || call.timeoutMs !== undefined ? new AbortController() : undefined;
    const onCallAbort = () => deadline!.abort(callSignal!.reason);
    callSignal?.addEventListener("abort", onCallAbort, { once: true });
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
    if (call.timeoutMs !== undefined) {
      const ms = call.timeoutMs;
      deadlineTimer = setTimeout(() => deadline!.abort(new TimeoutError(`call timed out after ${ms} ms`)), ms);
    }
    const url = this.url(req.path, req.query);
    const init: { method: string; headers: Record<string, string>; body?: string } = { method: req.method, headers: this.headers(req.headers) };
    if (req.body !== undefined) init.body = req.body;
    try {
      const send = this.sender ?? (await this.getSender());
      for (let attempt = 0; ; attempt++) {
        const ac = new AbortController();
        const onDeadline = () => ac.abort(deadline!.signal.reason);
        deadline?.signal.addEventListener("abort", onDeadline, { once: true });
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          ac.abort(new TimeoutError(`request timed out after ${opts.requestTimeoutMs} ms`));
        }, opts.requestTimeoutMs);
        let err: BadBatchError;
        let retryable: boolean;
        try {
          const res = await this.fetchFollowing(send, url, init, ac.signal);
          const text = await res.text();
          if (res.status >= 200 && res.status < 300) {
            let data: unknown = undefined;
            if (text.length > 0) {
              try {
                data = JSON.parse(text);
              } catch (e) {
                throw new InternalError(`the answer is not JSON: ${(e as Error).message}`, { status: res.status });
              }
            }
            return { status: res.status, headers: res.headers, data };
          }
          err = errorFromAnswer(res, text);
          retryable = retryableStatus(res.status, req.mode, err.code);
        } catch (e) {
          if (deadline?.signal.aborted) throw deadline.signal.reason;
          if (timedOut) {
            err = new TimeoutError(`request timed out after ${opts.requestTimeoutMs} ms`, { cause: e });
            retryable = req.mode !== "unkeyed";
          } else if (e instanceof BadBatchError) {
            throw e; // an answer that cannot be decoded, too many redirects
          } else {
            const msg = describeNetworkError(e);
            err = new ConnectionError(`${req.method} ${url}: ${msg}`, { cause: e });
            retryable = req.mode !== "unkeyed" || connectionRefused(e);
          }
        } finally {
          clearTimeout(timer);
          deadline?.signal.removeEventListener("abort", onDeadline);
        }
        if (!retryable || attempt >= opts.maxRetries) throw err;
        let wait: number;
        if (err.retryAfterMs !== undefined) {
          if (err.retryAfterMs > opts.maxRetryAfterMs) throw err;
          wait = err.retryAfterMs;
        } else {
          wait = backoff(opts.retryBackoffMs, opts.maxBackoffMs, attempt);
        }
        await sleep(wait, deadline?.signal);
      }
    } finally {
      clearTimeout(deadlineTimer);
      callSignal?.removeEventListener("abort", onCallAbort);
    }
  }
}

/** One SSE connection of a tail. */
class TailConn {
  readonly ac = new AbortController();
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Stream-Next-Offset of the answer: where this connection starts. */
  start: number | undefined;
  /** Set when a timer cut the connection. */
  timeout: TimeoutError | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: () => void;

  constructor(signal: AbortSignal | undefined) {
    this.signal = signal;
    this.onAbort = () => this.ac.abort(signal!.reason);
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  arm(ms: number, why: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timeout = new TimeoutError(why);
      this.ac.abort(this.timeout);
    }, ms);
  }

  disarm(): void {
    clearTimeout(this.timer);
  }

  close(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this.onAbort);
    this.reader?.cancel().catch(() => {});
    this.ac.abort();
  }
}

/**
 * A live tail: an async iterator of records (`for await (const r of tail)`).
 * `return()` (or `break`) closes it.
 */
export class Tail implements AsyncIterableIterator<StoredRecord> {
  private readonly gen: AsyncGenerator<StoredRecord, void, undefined>;
  private initial: TailConn | undefined;

  /** @internal */
  constructor(gen: AsyncGenerator<StoredRecord, void, undefined>, initial: TailConn | undefined) {
    this.gen = gen;
    this.initial = initial;
  }

  next(): Promise<IteratorResult<StoredRecord, undefined>> {
    this.initial = undefined; // the generator owns it now
    return this.gen.next() as Promise<IteratorResult<StoredRecord, undefined>>;
  }

  /** Closes the tail. */
  async return(): Promise<IteratorResult<StoredRecord, undefined>> {
    // A generator that never started does not run its finally: close the first connection here.
    this.initial?.close();
    this.initial = undefined;
    await this.gen.return(undefined);
    return { done: true, value: undefined };
  }

  /** Closes the tail. */
  close(): Promise<void> {
    return this.return().then(() => undefined);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

function retryableStatus(status: number, mode: RetryMode, code: string): boolean {
  switch (status) {
    case 429:
      return true; // nothing was stored
    case 503:
      // no_leader stores nothing; unavailable (a journal failed mid-write,
      // a store closed under the append) leaves the outcome unknown.
      return code === "no_leader" || mode !== "unkeyed";
    case 502:
    case 504:
      return mode !== "unkeyed";
    case 500:
      return mode === "read";
  }
  return false;
}

/** Full jitter: uniform in [0, min(max, base * 2^attempt)]. */
export function backoff(baseMs: number, maxMs: number, attempt: number): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.random() * cap;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function describeNetworkError(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    const c = cur as { message?: string; code?: string; cause?: unknown };
    parts.push(c.code ? `${c.message ?? ""} (${c.code})` : String(c.message ?? cur));
    cur = c.cause;
  }
  return parts.join(": ");
}

/** Whether a fetch failure is a refused connection (Node exposes the cause; browsers do not). */
function connectionRefused(e: unknown): boolean {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    const c = cur as { code?: string; cause?: unknown; errors?: unknown[] };
    if (c.code === "ECONNREFUSED") return true;
    if (Array.isArray(c.errors) && c.errors.length > 0 && c.errors.every((x) => (x as { code?: string })?.code === "ECONNREFUSED")) return true;
    cur = c.cause;
  }
  return false;
}

function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const d = Date.parse(t);
  if (!Number.isNaN(d)) return Math.max(0, d - Date.now());
  return undefined;
}

function errorFromAnswer(res: Answerish, text: string): BadBatchError {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const counter = (name: string): number | undefined => {
    const v = res.headers.get(name);
    return v !== null && /^\d{1,16}$/.test(v.trim()) ? Number(v.trim()) : undefined;
  };
  return errorFromBody(data, res.status, text, res.headers.get("X-Request-Id") ?? undefined, parseRetryAfter(res.headers.get("Retry-After")), {
    producerEpoch: counter("Producer-Epoch"),
    expectedSeq: counter("Producer-Expected-Seq"),
    receivedSeq: counter("Producer-Received-Seq"),
  });
}

function errorFromBody(
  data: unknown,
  status: number,
  text: string,
  requestId: string | undefined,
  retryAfterMs: number | undefined,
  producer: { producerEpoch?: number | undefined; expectedSeq?: number | undefined; receivedSeq?: number | undefined } = {},
): BadBatchError {
  const e = (data as { error?: { code?: unknown; message?: unknown; current_last_offset?: unknown } } | undefined)?.error;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const message = typeof e?.message === "string" ? e.message : text.slice(0, 200) || `HTTP ${status}`;
  const clo = e?.current_last_offset;
  if (status === 0 && code === undefined) return new InternalError(`an error event could not be decoded: ${text.slice(0, 200)}`);
  return makeError(code, message, {
    status: status || statusOfCode(code),
    requestId,
    retryAfterMs,
    currentLastOffset: typeof clo === "number" ? clo : undefined,
    ...producer,
  });
}

// The status an error event (SSE, no HTTP status of its own) stands for.
function statusOfCode(code: string | undefined): number {
  switch (code) {
    case "gone": return 410;
    case "not_found": return 404;
    case "forbidden": case "producer_fenced": return 403;
    case "offset_mismatch": case "stream_closed": case "stream_exists": case "stream_seq": case "producer_seq_gap": case "membership_conflict": return 409;
    case "unauthorized": return 401;
    case "unavailable": case "no_leader": return 503;
    case "bad_request": case "invalid_stream": return 400;
  }
  return 500;
}

// Random bytes for idempotency keys, drawn 4 KiB at a time: one
// getRandomValues per key cost more than the rest of the key.
const keyPool = new Uint8Array(4096);
let keyPoolAt = keyPool.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 128 random bits (crypto.getRandomValues), as 32 hex digits. */
function newIdempotencyKey(): string {
  if (keyPoolAt + 16 > keyPool.length) {
    globalThis.crypto.getRandomValues(keyPool);
    keyPoolAt = 0;
  }
  let s = "";
  for (let i = keyPoolAt; i < keyPoolAt + 16; i++) s += HEX[keyPool[i]!]!;
  keyPool.fill(0, keyPoolAt, keyPoolAt + 16); // a used key's bytes are not kept
  keyPoolAt += 16;
  return s;
}

const MAX_COUNTER = 2 ** 53 - 1;

/** Sets an idempotent producer's Producer-Id, Producer-Epoch and Producer-Seq headers. */
function producerHeaders(p: Producer, headers: Record<string, string>): void {
  if (p === null || typeof p !== "object") throw new InvalidOptionsError("producer: want { id, epoch, seq }");
  if (typeof p.id !== "string" || p.id.length === 0) throw new InvalidOptionsError("producer: a producer needs an id");
  if (!/^[\x20-\x7e]{1,256}$/.test(p.id)) throw new InvalidOptionsError("producer id: want 1 to 256 printable ASCII characters");
  for (const [name, v] of [["epoch", p.epoch], ["seq", p.seq]] as const) {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_COUNTER) throw new InvalidOptionsError(`producer ${name}: want an integer from 0 to 2^53-1`);
  }
  headers["Producer-Id"] = p.id;
  headers["Producer-Epoch"] = String(p.epoch);
  headers["Producer-Seq"] = String(p.seq);
}

/** The JSON fields of a stream's configuration (only those set). */
function streamConfigBody(c: StreamConfig): Record<string, unknown> {
  if (c === null || typeof c !== "object") throw new InvalidOptionsError("config: want an object");
  const body: Record<string, unknown> = {};
  if (c.contentType !== undefined) {
    if (typeof c.contentType !== "string" || c.contentType.length === 0) throw new InvalidOptionsError("contentType: want a non-empty string");
    body.content_type = c.contentType;
  }
  if (c.ttlSeconds !== undefined) {
    if (!Number.isSafeInteger(c.ttlSeconds) || c.ttlSeconds <= 0) {
      throw new InvalidOptionsError(`ttlSeconds: ${String(c.ttlSeconds)} is not a whole number of seconds > 0 (the HTTP API has no sub-second TTL)`);
    }
    body.ttl_seconds = c.ttlSeconds;
  }
  if (c.expiresAt !== undefined) {
    const d = c.expiresAt instanceof Date ? c.expiresAt : new Date(String(c.expiresAt));
    if (Number.isNaN(d.getTime())) throw new InvalidOptionsError("expiresAt: want a Date or an RFC 3339 time");
    body.expires_at = c.expiresAt instanceof Date ? isoTime(c.expiresAt) : String(c.expiresAt);
  }
  if (c.closed !== undefined && typeof c.closed !== "boolean") throw new InvalidOptionsError("closed: want a boolean");
  if (c.closed === true) body.closed = true;
  return body;
}

function checkName(what: string, name: string): void {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new InvalidStreamError(`${what} ${JSON.stringify(name)}: want [A-Za-z0-9][A-Za-z0-9._-]{0,199}`, { status: 400 });
  }
}

function checkInt(what: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new InvalidOptionsError(`${what}: ${String(v)} is not an integer`);
  }
}

function positionQuery(from: Position): Record<string, string> {
  if (from === "earliest" || from === "latest") return { from };
  if (typeof from === "number") {
    checkInt("from", from);
    return { from: String(from) };
  }
  if (from instanceof Date) return { from_time: isoTime(from) };
  if (from !== null && typeof from === "object") {
    if ("time" in from) {
      const t = from.time;
      return { from_time: t instanceof Date ? isoTime(t) : String(t) };
    }
    if ("offset" in from) {
      checkInt("from.offset", from.offset);
      return { from: String(from.offset) };
    }
  }
  throw new InvalidOptionsError(`from: ${String(from)} is not a position ("earliest", "latest", an offset, a Date or {time})`);
}

function isoTime(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new InvalidOptionsError("invalid Date");
  return d.toISOString();
}

interface WireRecord {
  key?: string;
  value?: unknown;
  value_base64?: string;
  headers?: Record<string, string>;
  timestamp?: string;
}

/**
 * JSON.stringify({ records: records.map(encodeRecord) }), built as one string
 * without the intermediate objects (a hole in the array is null, as there).
 */
function encodeBatchText(records: readonly AppendRecord[]): string {
  let s = '{"records":[';
  for (let i = 0; i < records.length; i++) {
    if (i > 0) s += ",";
    s += i in records ? encodeRecordText(records[i]!) : "null";
  }
  return s + "]}";
}

/** JSON.stringify(encodeRecord(r)), with a fast path for the common binary record. */
function encodeRecordText(r: AppendRecord): string {
  if (r !== null && typeof r === "object" && r.headers === undefined && r.timestamp === undefined) {
    const v = r.value;
    if (v instanceof Uint8Array) {
      // Base64 needs no JSON escaping.
      const k = r.key;
      if (k === undefined) return '{"value_base64":"' + encodeBase64(v) + '"}';
      if (typeof k === "string") return '{"key":' + JSON.stringify(k) + ',"value_base64":"' + encodeBase64(v) + '"}';
    }
  }
  return JSON.stringify(encodeRecord(r));
}

function encodeRecord(r: AppendRecord): WireRecord {
  if (r === null || typeof r !== "object") throw new InvalidOptionsError("a record must be an object");
  const w: WireRecord = {};
  if (r.key !== undefined) {
    if (typeof r.key !== "string") throw new InvalidOptionsError("record key: want a string");
    w.key = r.key;
  }
  const v = r.value;
  if (v instanceof Uint8Array) w.value_base64 = encodeBase64(v);
  else if (v instanceof ArrayBuffer) w.value_base64 = encodeBase64(new Uint8Array(v));
  else if (ArrayBuffer.isView(v)) w.value_base64 = encodeBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  else if (v !== undefined) {
    if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") {
      throw new InvalidOptionsError(`record value: a ${typeof v} is not JSON`);
    }
    w.value = v;
  }
  if (r.headers !== undefined) {
    if (r.headers === null || typeof r.headers !== "object") throw new InvalidOptionsError("record headers: want an object of strings");
    for (const [k, hv] of Object.entries(r.headers)) {
      if (typeof hv !== "string") throw new InvalidOptionsError(`record header ${JSON.stringify(k)}: want a string value`);
    }
    w.headers = r.headers;
  }
  if (r.timestamp !== undefined) w.timestamp = r.timestamp instanceof Date ? isoTime(r.timestamp) : String(r.timestamp);
  return w;
}

function bad(what: string): never {
  throw new InternalError(`the answer could not be decoded: ${what}`);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) bad(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) bad(`${what} is not an array`);
  return v;
}

function int(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) bad(`${what} ${String(v)} is not an integer below 2^53`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") bad(`${what} is not a string`);
  return v;
}

function time(v: unknown, what: string): Date {
  const d = new Date(str(v, what));
  if (Number.isNaN(d.getTime())) bad(`${what} is not RFC 3339`);
  return d;
}

function decodeAppendResult(v: unknown): AppendResult {
  const d = obj(v, "append result");
  return {
    stream: str(d.stream, "stream"),
    firstOffset: int(d.first_offset, "first_offset"),
    lastOffset: int(d.last_offset, "last_offset"),
    count: int(d.count, "count"),
    firstSeq: int(d.first_seq, "first_seq"),
    lastSeq: int(d.last_seq, "last_seq"),
    durability: str(d.durability, "durability"),
    replayed: d.replayed === true,
  };
}

function decodeInfo(v: unknown): StreamInfo {
  const d = obj(v, "stream info");
  const info: StreamInfo = {
    stream: str(d.stream, "stream"),
    firstOffset: int(d.first_offset, "first_offset"),
    nextOffset: int(d.next_offset, "next_offset"),
    records: int(d.records, "records"),
    bytes: int(d.bytes, "bytes"),
    closed: d.closed === true,
  };
  if (d.last_timestamp !== undefined && d.last_timestamp !== null) info.lastTimestamp = time(d.last_timestamp, "last_timestamp");
  if (typeof d.content_type === "string" && d.content_type !== "") info.contentType = d.content_type;
  if (d.ttl_seconds !== undefined && d.ttl_seconds !== null && d.ttl_seconds !== 0) info.ttlSeconds = int(d.ttl_seconds, "ttl_seconds");
  if (d.expires_at !== undefined && d.expires_at !== null) info.expiresAt = time(d.expires_at, "expires_at");
  if (typeof d.forked_from === "string" && d.forked_from !== "") {
    info.forkedFrom = d.forked_from;
    // fork_offset is left out at 0.
    info.forkOffset = d.fork_offset === undefined || d.fork_offset === null ? 0 : int(d.fork_offset, "fork_offset");
  }
  return info;
}

/** A record of the wire (read page, global log, SSE event) as a StoredRecord. */
export function decodeRecord(v: unknown, stream: string | undefined): StoredRecord {
  const d = obj(v, "record");
  const ts = str(d.timestamp, "timestamp");
  const rec: StoredRecord = {
    stream: stream ?? str(d.stream, "stream"),
    offset: int(d.offset, "offset"),
    seq: int(d.seq, "seq"),
    timestamp: time(ts, "timestamp"),
    timestampText: ts,
    headers: d.headers === undefined || d.headers === null ? {} : (obj(d.headers, "headers") as Record<string, string>),
    value: undefined,
    isJson: false,
  };
  if (typeof d.key === "string") rec.key = d.key;
  else if (typeof d.key_base64 === "string") rec.keyBytes = b64(d.key_base64, "key_base64");
  if (Object.prototype.hasOwnProperty.call(d, "value")) {
    rec.value = d.value;
    rec.isJson = true;
  } else if (typeof d.value_base64 === "string" && d.value_base64.length > 0) {
    rec.value = b64(d.value_base64, "value_base64");
  } else {
    rec.value = new Uint8Array(0);
  }
  return rec;
}

function b64(s: string, what: string): Uint8Array {
  try {
    return decodeBase64(s);
  } catch (e) {
    bad(`${what}: ${(e as Error).message}`);
  }
}
