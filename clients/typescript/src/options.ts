import { InvalidOptionsError } from "./errors.js";

export const VERSION = "0.1.0";

/** Client options. Set only what you want; defaults fill in the rest (docs/clients/README.md). */
export interface ClientOptions {
  /** Bearer token. Absent: no Authorization header. */
  token?: string;
  /** Retries of a retryable failure (0: never). Default 5. */
  maxRetries?: number;
  /** The first retry's delay in ms; doubled each time, with full jitter. Default 100. */
  retryBackoffMs?: number;
  /** Cap on one backoff, in ms. Default 5,000. */
  maxBackoffMs?: number;
  /** A longer Retry-After is not waited for: the error is thrown. Default 30,000. */
  maxRetryAfterMs?: number;
  /** One attempt of one request, whole answer included (not tails), in ms. Default 30,000. */
  requestTimeoutMs?: number;
  /**
   * How long a tail connection may take to answer (its headers), in ms. fetch does not expose
   * the TCP connect, so for other requests the connect is bounded by requestTimeoutMs. Default 5,000.
   */
  connectTimeoutMs?: number;
  /** A tail connection silent this long is reopened (the server sends a comment every 15 s). Default 60,000. */
  tailIdleTimeoutMs?: number;
  /** Generate an idempotency key per append call when the caller gives none, so retries never duplicate. Default true. */
  generateIdempotencyKeys?: boolean;
  /** Sent as User-Agent under Node (browsers set their own). Default `badbatch-typescript-client/VERSION`. */
  userAgent?: string;
  /** The fetch to use (for example undici's, with a dispatcher). Default: globalThis.fetch. */
  fetch?: typeof fetch;
}

/** Options with every default filled in. */
export type ResolvedOptions = Readonly<Required<Omit<ClientOptions, "token">>> & { readonly token: string | undefined };

export const DEFAULTS: Readonly<Omit<ResolvedOptions, "fetch" | "token">> = Object.freeze({
  maxRetries: 5,
  retryBackoffMs: 100,
  maxBackoffMs: 5_000,
  maxRetryAfterMs: 30_000,
  requestTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  tailIdleTimeoutMs: 60_000,
  generateIdempotencyKeys: true,
  userAgent: `badbatch-typescript-client/${VERSION}`,
});

const KNOWN = new Set<string>([...Object.keys(DEFAULTS), "token", "fetch"]);

// setTimeout's largest delay; a longer one fires at once.
const MAX_TIMER_MS = 2_147_483_647;

function bad(msg: string): never {
  throw new InvalidOptionsError(msg);
}

function checkMs(name: string, v: number, allowZero: boolean): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0) || v > MAX_TIMER_MS) {
    bad(`${name}: ${String(v)} is not a ${allowZero ? "non-negative" : "positive"} number of milliseconds (at most ${MAX_TIMER_MS})`);
  }
}

/**
 * Fills in defaults and validates. The caller's object is only read, never
 * modified; the result is a new frozen object.
 */
export function resolveOptions(opts: ClientOptions | undefined): ResolvedOptions {
  if (opts !== undefined && (opts === null || typeof opts !== "object")) bad("options must be an object");
  const given: ClientOptions = opts ?? {};
  for (const k of Object.keys(given)) {
    if (!KNOWN.has(k)) bad(`unknown option ${JSON.stringify(k)}`);
  }
  const pick = <K extends keyof typeof DEFAULTS>(k: K): (typeof DEFAULTS)[K] =>
    given[k] === undefined ? DEFAULTS[k] : (given[k] as (typeof DEFAULTS)[K]);
  const o = {
    token: given.token,
    maxRetries: pick("maxRetries"),
    retryBackoffMs: pick("retryBackoffMs"),
    maxBackoffMs: pick("maxBackoffMs"),
    maxRetryAfterMs: pick("maxRetryAfterMs"),
    requestTimeoutMs: pick("requestTimeoutMs"),
    connectTimeoutMs: pick("connectTimeoutMs"),
    tailIdleTimeoutMs: pick("tailIdleTimeoutMs"),
    generateIdempotencyKeys: pick("generateIdempotencyKeys"),
    userAgent: pick("userAgent"),
    fetch: given.fetch ?? (globalThis.fetch as typeof fetch | undefined),
  };
  if (o.token !== undefined) {
    if (typeof o.token !== "string" || o.token.length === 0 || !/^[\x21-\x7e]+$/.test(o.token)) {
      bad("token: want a non-empty string of printable ASCII without spaces");
    }
  }
  if (!Number.isSafeInteger(o.maxRetries) || o.maxRetries < 0 || o.maxRetries > 1000) {
    bad(`maxRetries: ${String(o.maxRetries)} is not an integer in [0, 1000]`);
  }
  checkMs("retryBackoffMs", o.retryBackoffMs, false);
  checkMs("maxBackoffMs", o.maxBackoffMs, false);
  if (o.maxBackoffMs < o.retryBackoffMs) bad(`maxBackoffMs ${o.maxBackoffMs} is below retryBackoffMs ${o.retryBackoffMs}`);
  checkMs("maxRetryAfterMs", o.maxRetryAfterMs, true);
  checkMs("requestTimeoutMs", o.requestTimeoutMs, false);
  checkMs("connectTimeoutMs", o.connectTimeoutMs, false);
  checkMs("tailIdleTimeoutMs", o.tailIdleTimeoutMs, false);
  if (typeof o.generateIdempotencyKeys !== "boolean") bad("generateIdempotencyKeys: want a boolean");
  if (typeof o.userAgent !== "string" || !/^[\x20-\x7e]*$/.test(o.userAgent)) bad("userAgent: want a printable ASCII string");
  if (typeof o.fetch !== "function") bad("fetch: no fetch function (Node 20+ or a browser has one; or pass options.fetch)");
  return Object.freeze(o) as ResolvedOptions;
}

/** Validates a per-call timeout. */
export function checkCallTimeout(v: number | undefined): void {
  if (v !== undefined) checkMs("timeoutMs", v, false);
}
