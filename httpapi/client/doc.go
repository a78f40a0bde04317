// Package client is the Go client of the BadBatch HTTP API v1
// (docs/http-api.md), in the vocabulary every BadBatch client shares
// (docs/clients/README.md): Append, AppendBatch, Read, ReadGlobal, Tail (an
// iterator over Server-Sent Events that reconnects and resumes), Streams,
// StreamInfo, SetCursor and Cursor; and append sessions (OpenSession), which
// pipeline batches over a WebSocket and resend unanswered ones after a drop.
//
// It imports the standard library, the module root's value types
// (package badbatch: AppendOptions, AppendResult, StreamInfo, the error
// codes) and the binary record format (package httpapi/wire), and nothing
// of the server, so a client build never pulls in the storage engine. Its
// WebSocket (websocket.go) is a small RFC 6455 client of its own.
//
// Invariants:
//   - Options are filled in from DefaultOptions, validated by New
//     (ErrInvalidOptions), and never written to.
//   - Retries never duplicate: an append is retried only under an
//     idempotency key (the caller's, or one generated per call and sent on
//     every attempt unless Options.GenerateIdempotencyKeys is off), or when
//     it surely never reached the server (dial failure, 429, 503 no_leader). Reads
//     are retried after network errors, timeouts, 429 and 5xx. Backoff is
//     exponential with full jitter; Retry-After is honoured up to
//     Options.MaxRetryAfter.
//   - Every error is an *Error whose Code is one error kind, matched by
//     errors.Is against one sentinel per kind (ErrOffsetMismatch,
//     ErrNotFound, ErrConnection, ErrTimeout, ...), except the caller's
//     own cancellation, which is context.Canceled.
//   - Connections are reused (keep-alive) through one http.Client.
//
// A Client is safe for concurrent use; make one per server and share it.
package client
