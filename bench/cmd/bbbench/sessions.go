package main

// Append sessions (issue 15): BenchmarkSessionAppend and
// BenchmarkRecordBatchCodec in bench/session_test.go and
// bench/wireformat_test.go.

const (
	sessionMatch     = "BenchmarkSessionAppend/impl="
	sessionLabel     = "BadBatch append session (fsync before every answer)"
	sessionNoopLabel = "coder/websocket no-op handler (stores nothing)"
	sessionPOSTLabel = "BadBatch single-record POST, 64 connections"
	sessionNDLabel   = "BadBatch NDJSON POST of 100 records, 1 connection"
	sessionConfig    = "GET /v1/streams/bench/append, one WebSocket connection, binary frames (application/vnd.badbatch.records) sent without waiting and answered in order, each after its fsync, through the Go client's session API with its default per-batch idempotency keys and 4 MiB window."
	sessionNoopNote  = "The no-op WebSocket handler is a yardstick: the same client and connection, a server that grants the window, reads each frame whole and answers it at once without parsing or storing anything."
	sessionLoadNote  = "The load generator (the Go client) runs in the benchmark's process, beside the server, on the same cores."
)

// sessionGroups are the append-session comparisons, each with its goal.
func sessionGroups() []*Group {
	return []*Group{
		{
			ID:       "session-noop",
			Title:    "Append session, one 100-byte record per frame, against a no-op WebSocket",
			Question: "How close does an append session come to a WebSocket server that does nothing, over one connection with one record per batch?",
			Unit:     "frames/s",
			Rows:     []string{"batch=1/size=100B", "batch=100/size=100B"},
			Series: []Series{
				{Label: sessionLabel, Package: pkgBench, Match: sessionMatch + "session", Base: true, Config: sessionConfig},
				{Label: sessionNoopLabel, Package: pkgBench, Match: sessionMatch + "ws-noop", Reference: true,
					Config: "net/http + coder/websocket: Accept, then Read and Write one small JSON answer per frame."},
			},
			Goal:  &Goal{Text: "at least 0.5x the no-op WebSocket's frames/s at batch=1 (issue 15)", Bound: 0.5, Aim: 0.5, Over: sessionNoopLabel},
			Notes: []string{sessionNoopNote, sessionLoadNote},
		},
		{
			ID:       "session-post",
			Title:    "Append session against single-record POSTs, one 100-byte record per batch",
			Question: "How many single-record appends per second does one append session carry, against POSTs from 64 concurrent connections?",
			Unit:     "frames/s",
			Rows:     []string{"batch=1/size=100B"},
			OnlyRows: true,
			Series: []Series{
				{Label: sessionLabel, Package: pkgBench, Match: sessionMatch + "session", Base: true, Config: sessionConfig},
				{Label: sessionPOSTLabel, Package: pkgBench, Match: sessionMatch + "post-64conns",
					Config: "POST /v1/streams/bench/records, one JSON record (value_base64) per request, 64 keep-alive connections, each waiting for its 201."},
			},
			Goal:  &Goal{Text: "at least 5x the 64-connection POST rate (issue 15)", Bound: 5, Aim: 5, Over: sessionPOSTLabel},
			Notes: []string{"One op is one acknowledged record in both: a frame of one record, or a request of one record.", sessionLoadNote},
		},
		{
			ID:       "session-batch100",
			Title:    "Append session frames of 100 records beside NDJSON batches of 100",
			Question: "What does an append session gain over HTTP batches of the same size on one connection?",
			Unit:     "records/s",
			Rows:     []string{"batch=100/size=100B"},
			OnlyRows: true,
			Series: []Series{
				{Label: sessionLabel, Package: pkgBench, Match: sessionMatch + "session", Base: true, Config: sessionConfig},
				{Label: sessionNDLabel, Package: pkgBench, Match: sessionMatch + "ndjson-1conn",
					Config: "POST /v1/streams/bench/records, application/x-ndjson, 100 records (value_base64) per request, one keep-alive connection waiting for each 201."},
			},
			Notes: []string{"The NDJSON producer waits for each answer (one fsync per request); the session sends without waiting, so several frames share an fsync.", sessionLoadNote},
		},
		{
			ID:       "record-codec",
			Title:    "Binary record format against protobuf, a batch of 100 records",
			Question: "Is the binary record format cheaper to encode and decode than protobuf for the same batch (decision 0019)?",
			Unit:     "ns/op",
			Rows:     []string{"records=100"},
			Series: []Series{
				{Label: "application/vnd.badbatch.records (httpapi/wire)", Package: pkgBench, Match: "BenchmarkRecordBatchCodec/format=binary", Base: true},
				{Label: "protobuf (protowire, the same fields)", Package: pkgBench, Match: "BenchmarkRecordBatchCodec/format=protobuf"},
			},
			Notes: []string{"Lower is better. One op encodes a batch of 100 records (8-byte key, 100-byte value, two headers, a timestamp) into a reused buffer and decodes it; protobuf is written with protowire, the least work any protobuf-go encoder does for that schema."},
		},
	}
}
