package badbatch

// Error codes: the "code" of every error answer of the HTTP API, and the
// error kinds of every client (docs/clients/README.md, Errors). They never
// change meaning.
const (
	CodeBadRequest         = "bad_request"         // 400 malformed input
	CodeInvalidStream      = "invalid_stream"      // 400 bad stream or cursor name
	CodeUnauthorized       = "unauthorized"        // 401 no or unknown token
	CodeForbidden          = "forbidden"           // 403 the token lacks the permission or the stream
	CodeNotFound           = "not_found"           // 404 stream or cursor never written, unknown route
	CodeMethodNotAllowed   = "method_not_allowed"  // 405
	CodeOffsetMismatch     = "offset_mismatch"     // 409 expected last offset did not hold
	CodeMembershipConflict = "membership_conflict" // 409 cluster membership change refused
	CodeStreamClosed       = "stream_closed"       // 409 append to a closed stream
	CodeStreamExists       = "stream_exists"       // 409 create with another configuration
	CodeProducerSeqGap     = "producer_seq_gap"    // 409 a producer seq that skips one
	CodeProducerFenced     = "producer_fenced"     // 403 a producer epoch older than the stream's
	CodeStreamSeq          = "stream_seq"          // 409 a Stream-Seq not above the stream's last
	CodeGone               = "gone"                // 410 offset below retention
	CodeTooLarge           = "too_large"           // 413 record or request too large
	CodeUnsupportedType    = "unsupported_type"    // 415 unsupported content type
	CodeRateLimited        = "rate_limited"        // 429, with Retry-After
	CodeInternal           = "internal"            // 500 a server bug
	CodeUnavailable        = "unavailable"         // 503 journal failed, closed or shutting down
	CodeNoLeader           = "no_leader"           // 503 cluster without a leader, with Retry-After
	CodeNotLeader          = "not_leader"          // 307 a follower's redirect to the leader
	CodeNotCluster         = "not_cluster"         // 404 a cluster route on a standalone server

	// Kinds made on a client's side, never sent by the server.
	CodeInvalidOptions = "invalid_options" // a bad option value, before any request
	CodeConnection     = "connection"      // the server could not be reached, after the retries
	CodeTimeout        = "timeout"         // a per-call or overall deadline passed
)
