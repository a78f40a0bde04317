/**
 * Typed errors. Every failure of a client call is a {@link BadBatchError}
 * (or, when the caller's AbortSignal fired, the signal's reason). Each error
 * kind of docs/clients/README.md has its own subclass, so both
 * `err instanceof OffsetMismatchError` and `err.kind === "offset_mismatch"`
 * work.
 */

/** Every error kind: the server's wire codes plus three made on the client's side. */
export type ErrorKind =
  | "bad_request"
  | "invalid_stream"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "offset_mismatch"
  | "stream_closed"
  | "stream_exists"
  | "stream_seq"
  | "producer_seq_gap"
  | "producer_fenced"
  | "membership_conflict"
  | "gone"
  | "too_large"
  | "unsupported_type"
  | "rate_limited"
  | "internal"
  | "unavailable"
  | "no_leader"
  | "not_leader"
  | "not_cluster"
  | "invalid_options"
  | "connection"
  | "timeout";

export interface ErrorDetails {
  /** The server's wire code (equal to kind for errors made by the client). */
  code?: string;
  /** HTTP status; 0 for errors made on the client's side without an answer. */
  status?: number;
  /** The server's request id (X-Request-Id), when there was an answer. */
  requestId?: string;
  /** Retry-After of the answer, in milliseconds. */
  retryAfterMs?: number;
  /** The underlying error (a network error, for example). */
  cause?: unknown;
  /** offset_mismatch: the stream's last offset (-1: empty). */
  currentLastOffset?: number;
  /** producer_seq_gap and producer_fenced: the producer's current epoch (Producer-Epoch). */
  producerEpoch?: number;
  /** producer_seq_gap: the seq the server expected (Producer-Expected-Seq). */
  expectedSeq?: number;
  /** producer_seq_gap: the seq it received (Producer-Received-Seq). */
  receivedSeq?: number;
}

/** The base of every error the client throws. */
export class BadBatchError extends Error {
  /** The error kind (docs/clients/README.md, Errors). */
  readonly kind: ErrorKind;
  /** The server's wire code; equal to kind unless the server sent a code this client does not know. */
  readonly code: string;
  /** HTTP status of the answer; 0 when there was none. */
  readonly status: number;
  readonly requestId: string | undefined;
  /** Retry-After of the answer in milliseconds, if it had one. */
  readonly retryAfterMs: number | undefined;

  constructor(kind: ErrorKind, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = details.code ?? kind;
    this.status = details.status ?? 0;
    this.requestId = details.requestId;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export class BadRequestError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("bad_request", m, d); }
}
export class InvalidStreamError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("invalid_stream", m, d); }
}
export class UnauthorizedError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("unauthorized", m, d); }
}
export class ForbiddenError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("forbidden", m, d); }
}
export class NotFoundError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("not_found", m, d); }
}
export class MethodNotAllowedError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("method_not_allowed", m, d); }
}
/** `expectedLastOffset` did not hold; nothing was stored. */
export class OffsetMismatchError extends BadBatchError {
  /** The stream's last offset when the append was refused (-1: empty). */
  readonly currentLastOffset: number | undefined;
  constructor(m: string, d?: ErrorDetails) {
    super("offset_mismatch", m, d);
    this.currentLastOffset = d?.currentLastOffset;
  }
}
/** An append to a closed stream; nothing was stored. */
export class StreamClosedError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("stream_closed", m, d); }
}
/** A create with another configuration, or a fork onto an existing stream. */
export class StreamExistsError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("stream_exists", m, d); }
}
/** A writer's Stream-Seq label that does not sort after the stream's last one; nothing was stored. */
export class StreamSeqError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("stream_seq", m, d); }
}
/** A producer seq that skips one; nothing was stored. */
export class ProducerSeqGapError extends BadBatchError {
  /** The seq the server expected next. */
  readonly expectedSeq: number | undefined;
  /** The seq the append carried. */
  readonly receivedSeq: number | undefined;
  /** The producer's current epoch. */
  readonly producerEpoch: number | undefined;
  constructor(m: string, d?: ErrorDetails) {
    super("producer_seq_gap", m, d);
    this.expectedSeq = d?.expectedSeq;
    this.receivedSeq = d?.receivedSeq;
    this.producerEpoch = d?.producerEpoch;
  }
}
/** A producer epoch older than the producer's current one (a newer incarnation fenced this one). */
export class ProducerFencedError extends BadBatchError {
  /** The producer's current epoch. */
  readonly producerEpoch: number | undefined;
  constructor(m: string, d?: ErrorDetails) {
    super("producer_fenced", m, d);
    this.producerEpoch = d?.producerEpoch;
  }
}
export class MembershipConflictError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("membership_conflict", m, d); }
}
/** An offset below retention, or a stream deleted while forks still read it. */
export class GoneError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("gone", m, d); }
}
export class TooLargeError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("too_large", m, d); }
}
export class UnsupportedTypeError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("unsupported_type", m, d); }
}
export class RateLimitedError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("rate_limited", m, d); }
}
export class InternalError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("internal", m, d); }
}
export class UnavailableError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("unavailable", m, d); }
}
export class NoLeaderError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("no_leader", m, d); }
}
/** A follower's redirect that could not be followed (too many hops, or a browser: see the docs). */
export class NotLeaderError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("not_leader", m, d); }
}
export class NotClusterError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("not_cluster", m, d); }
}
/** A bad option or argument, reported before any request. */
export class InvalidOptionsError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("invalid_options", m, d); }
}
/** The server could not be reached, or the connection broke, after the retries. */
export class ConnectionError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("connection", m, d); }
}
/** A per-attempt or per-call deadline passed. */
export class TimeoutError extends BadBatchError {
  constructor(m: string, d?: ErrorDetails) { super("timeout", m, d); }
}

type Ctor = new (m: string, d?: ErrorDetails) => BadBatchError;

const byKind: { [K in ErrorKind]: Ctor } = {
  bad_request: BadRequestError,
  invalid_stream: InvalidStreamError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  method_not_allowed: MethodNotAllowedError,
  offset_mismatch: OffsetMismatchError,
  stream_closed: StreamClosedError,
  stream_exists: StreamExistsError,
  stream_seq: StreamSeqError,
  producer_seq_gap: ProducerSeqGapError,
  producer_fenced: ProducerFencedError,
  membership_conflict: MembershipConflictError,
  gone: GoneError,
  too_large: TooLargeError,
  unsupported_type: UnsupportedTypeError,
  rate_limited: RateLimitedError,
  internal: InternalError,
  unavailable: UnavailableError,
  no_leader: NoLeaderError,
  not_leader: NotLeaderError,
  not_cluster: NotClusterError,
  invalid_options: InvalidOptionsError,
  connection: ConnectionError,
  timeout: TimeoutError,
};

/** The kind an unknown code falls back to, by HTTP status. */
function kindOfStatus(status: number): ErrorKind {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "offset_mismatch";
    case 410: return "gone";
    case 413: return "too_large";
    case 415: return "unsupported_type";
    case 429: return "rate_limited";
    case 503: return "unavailable";
    case 307: case 308: return "not_leader";
  }
  return "internal";
}

/** Builds the error of a kind (or of a wire code, falling back on status). */
export function makeError(codeOrKind: string | undefined, message: string, details: ErrorDetails = {}): BadBatchError {
  const known = codeOrKind !== undefined && Object.prototype.hasOwnProperty.call(byKind, codeOrKind);
  const kind: ErrorKind = known ? (codeOrKind as ErrorKind) : kindOfStatus(details.status ?? 0);
  const Cls = byKind[kind];
  return new Cls(message, { ...details, code: codeOrKind ?? kind });
}

/** Kinds a tail (or any retrying loop) cannot fix by retrying. */
export function isPermanent(err: BadBatchError): boolean {
  switch (err.kind) {
    case "rate_limited":
    case "unavailable":
    case "no_leader":
    case "connection":
    case "timeout":
      return false;
    case "internal":
      // A 5xx or an answer that could not be decoded may pass; another 4xx will not.
      return err.status > 0 && err.status < 500;
  }
  return true;
}
