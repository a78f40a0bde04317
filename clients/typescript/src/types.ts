/** A JSON value, as JSON.parse returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A record to append.
 *
 * `value` is the record's value: a `Uint8Array` (or `ArrayBuffer`) is a
 * binary value; anything else that is not `undefined` is a JSON value (it is
 * sent as JSON and reads back as parsed JSON, `isJson: true`); `undefined`
 * means an empty binary value. A JSON `null` is a JSON value, not "none".
 */
export interface AppendRecord {
  /** A UTF-8 string key; absent: no key. */
  key?: string;
  value?: Uint8Array | ArrayBuffer | unknown;
  /** String to string; absent: none. */
  headers?: { [name: string]: string };
  /** When the record happened; absent: the server's time at append. A string must be RFC 3339. */
  timestamp?: Date | string;
}

/** A record as read back. */
export interface StoredRecord {
  stream: string;
  /** The record's position in its stream. */
  offset: number;
  /** The record's position in the global log. */
  seq: number;
  /** Millisecond precision; `timestampText` has the server's full (nanosecond) text. */
  timestamp: Date;
  /** The RFC 3339 timestamp exactly as the server sent it. */
  timestampText: string;
  /** Absent when the record has no key. */
  key?: string;
  /** A key that is not UTF-8 (possible from Go library callers only). */
  keyBytes?: Uint8Array;
  headers: { [name: string]: string };
  /** Parsed JSON when `isJson`, else the bytes (`Uint8Array`, empty for an empty value). */
  value: unknown;
  /** Whether the value was appended as JSON. */
  isJson: boolean;
}

/** The result of an append (one type for append and appendBatch). */
export interface AppendResult {
  stream: string;
  firstOffset: number;
  lastOffset: number;
  count: number;
  firstSeq: number;
  lastSeq: number;
  /** What the acknowledgement means: "fsynced" under the default sync policy. */
  durability: string;
  /** True when an idempotency key repeated and nothing was appended. */
  replayed: boolean;
}

/** One page of a stream. */
export interface Page {
  records: StoredRecord[];
  /** Where the next page starts. */
  nextOffset: number;
}

/** One page of the global log. */
export interface GlobalPage {
  /** Each record names its stream. */
  records: StoredRecord[];
  /** Where the next page starts. */
  nextSeq: number;
}

export interface StreamInfo {
  stream: string;
  firstOffset: number;
  nextOffset: number;
  records: number;
  bytes: number;
  /** Absent for an empty stream. */
  lastTimestamp?: Date;
  /** The stream's content type (absent from a server without the stream lifecycle). */
  contentType?: string;
  /** The stream takes no more appends. */
  closed: boolean;
  /** A sliding lifetime, in seconds; absent: none. */
  ttlSeconds?: number;
  /** When the stream expires; absent: never. */
  expiresAt?: Date;
  /** A fork's source stream; absent for a stream that is not a fork. */
  forkedFrom?: string;
  /** A fork's offsets below this are its source's records (set with forkedFrom). */
  forkOffset?: number;
}

/** A stream's configuration, for createStream and forkStream; every field is optional. */
export interface StreamConfig {
  /** The records' content type. Absent: the server's default, application/octet-stream. */
  contentType?: string;
  /** A sliding lifetime in whole seconds (reads and appends extend it); a fraction is InvalidOptionsError. */
  ttlSeconds?: number;
  /** When the stream expires (a Date, or an RFC 3339 string); not with ttlSeconds. */
  expiresAt?: Date | string;
  /** Create the stream closed. */
  closed?: boolean;
}

/** An idempotent producer's append: its id, its epoch (incarnation) and the append's seq in the epoch, from 0. */
export interface Producer {
  /** Not empty. */
  id: string;
  epoch: number;
  seq: number;
}

/**
 * Where a read or a tail starts: `"earliest"` (the first retained record),
 * `"latest"` (the next offset to be written: only new records), an offset,
 * or a time (a `Date`, or `{ time }` with a Date or an RFC 3339 string): the
 * first record whose timestamp is at or after it.
 */
export type Position = "earliest" | "latest" | number | Date | { time: Date | string } | { offset: number };

/** Per-call cancellation and deadline, taken by every call that does I/O. */
export interface CallOptions {
  /** Cancels the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** A deadline for the whole call, retries included (TimeoutError). Absent: only the client's per-attempt timeouts. */
  timeoutMs?: number;
}

export interface AppendOptions extends CallOptions {
  /** Append only if the stream's last offset is this; -1: the stream must be empty. */
  expectedLastOffset?: number;
  /**
   * A repeat within the server's window appends nothing and answers the first result (replayed).
   * 1 to 256 printable ASCII characters, else InvalidOptionsError, before any request.
   */
  idempotencyKey?: string;
  /**
   * An idempotent producer: a repeat of an accepted seq appends nothing (replayed), a gap is
   * ProducerSeqGapError, an older epoch ProducerFencedError. Such an append is safe to retry.
   */
  producer?: Producer;
  /** Close the stream atomically with this append. */
  close?: boolean;
  /**
   * A writer's sequence label (Stream-Seq), 1 to 256 printable ASCII characters (else
   * InvalidOptionsError, before any request): it must sort after the stream's last one, byte by
   * byte, else StreamSeqError (409) and nothing is stored.
   */
  streamSeq?: string;
}

export interface ReadOptions extends CallOptions {
  /** Page size (server default 100, at most 10,000). */
  limit?: number;
}

export interface TailOptions {
  /** Stops the tail: the iterator then throws the signal's reason. `break` out of the loop also stops it. */
  signal?: AbortSignal;
}
