// Package httpapi serves a storage.Store over HTTP: the v1 API described in
// docs/http-api.md and, as an OpenAPI 3 document, in openapi.yaml (served at
// GET /v1/openapi.yaml).
//
// It is the only package of the module that imports echo. A Server wires:
//
//	request ──► recover ─► request ID ─► access log (slog) ─► gzip (JSON, NDJSON only)
//	        ──► rate limit (per token, else per client IP) ─► bearer auth ─► route
//
// Routes (all bodies and errors are JSON unless said otherwise):
//
//	POST /v1/streams/{stream}/records        append (JSON, NDJSON, binary or raw body), atomically
//	GET  /v1/streams/{stream}/records        read a page (JSON or binary), NDJSON, SSE tail, long-poll
//	GET  /v1/streams/{stream}/ws             WebSocket tail, one JSON record per text message
//	GET  /v1/streams/{stream}/append         append session (WebSocket): batches pipelined, answered in order
//	GET  /v1/records                         the global log, all streams in commit order
//	HEAD /v1/streams/{stream}                Stream-Next-Offset only
//	GET  /v1/streams, /v1/streams/{stream}   stream listing and information
//	PUT, GET /v1/streams/{stream}/cursors/{name}
//	GET  /healthz, /readyz, /metrics, /v1/openapi.yaml
//
// Invariants:
//   - Bad input never reaches the store: a request body is parsed and
//     checked in full (JSON, base64, sizes, stream name) before Append is
//     called, and an append is one atomic Store.AppendWith call.
//   - A 201 is written only after the store acknowledged the append, so its
//     offsets are final and its Durability header names what the ack means.
//   - Every error answer has the shape {"error":{"code","message"}}.
//   - Every tailing handler (SSE, WebSocket, long-poll) reads through one
//     function, Server.nextBatch (package replay's Reader.Poll), and ends
//     when its client goes away or the server shuts down; Shutdown waits for
//     all of them. Append sessions (session.go) register the same way.
//   - An append session answers its batches in the order received, each
//     only once the store acknowledged it, and frees a batch's window bytes
//     before it writes the answer.
//
// The Go client for this API is the subpackage client.
package httpapi
