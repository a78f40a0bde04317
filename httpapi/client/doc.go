// Package client is the Go client of the BadBatch HTTP API v1 (see
// docs/http-api.md): Append, AppendBatch, Read, ReadGlobal, Tail (an
// iterator over Server-Sent Events that reconnects and resumes), stream
// information and cursors.
//
// Invariants:
//   - Every append carries an Idempotency-Key (a random one unless the
//     caller gives one), and a retry reuses it, so a retried append never
//     stores a record twice within the server's dedupe window.
//   - Retries happen only for network errors and for 429, 502, 503 and 504,
//     with exponential backoff, honouring Retry-After.
//   - Errors from the server are *Error values; errors.Is matches them with
//     the sentinels (ErrConflict, ErrNotFound, ...) by their API code.
//   - Connections are reused (keep-alive) through one http.Client.
//
// A Client is safe for concurrent use.
package client
