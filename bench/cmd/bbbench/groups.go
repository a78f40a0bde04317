package main

// The comparisons the report draws. Each names the benchmarks it pairs; a
// benchmark that does not exist (yet) shows as "not run (no such benchmark)"
// and every benchmark that ran appears in the report's full table whether or
// not a group pairs it. When a benchmark is renamed, change it here too.

// Package directories, relative to the repository root.
const (
	pkgBench     = "bench"
	pkgPeers     = "bench/peers"
	pkgDisruptor = "disruptor"
)

// Limits measured by bench/limits_test.go.
var (
	limitFsync = &Limit{
		Package: pkgBench, Name: "BenchmarkLimit/fsync", Unit: "fsyncs/s",
		Per: "records per fsync",
	}
)

// natsAlwaysConfig and natsDefaultConfig state NATS's configuration; they
// match bench/peers/nats_test.go.
const (
	natsAlwaysConfig = "nats-server v2.15.2 embedded in the benchmark process, JetStream file storage, " +
		"one stream, R1, no compression; `SyncAlways: true` (the configuration file's " +
		"`sync_interval: always`): every write is fsynced before its PubAck. One in-process client " +
		"connection per producer, async publish with at most 32 acks pending per producer " +
		"(throughput is fsync-bound from 32 up; more only queues)."
	natsDefaultConfig = "As above but with NATS's default `sync_interval` of 2 minutes and 256 acks " +
		"pending per producer. A PubAck only means the record reached the server's write buffer: " +
		"records acknowledged in the last 2 minutes can be lost on power failure. NOT DURABLE; " +
		"shown for honesty, never ranked against durable contenders."
)

// Groups returns the comparisons in report order: the headline first.
func Groups() []*Group {
	return []*Group{
		{
			ID:       "durable-append",
			Title:    "Durable append, 100-byte records",
			Question: "How many records per second does each store acknowledge as durable, by number of concurrent producers?",
			Unit:     "records/s",
			Rows:     []string{"producers=1/size=100B", "producers=4/size=100B", "producers=16/size=100B"},
			Series: []Series{
				{Label: "BadBatch (storage.Store)", Package: pkgBench, Match: "BenchmarkStoreAppend/impl=badbatch", Base: true},
				{Label: "NATS JetStream, sync=always", Package: pkgPeers, Match: "BenchmarkNATSPublish/sync=always", Config: natsAlwaysConfig},
				{Label: "NATS JetStream, sync=default (NOT DURABLE)", Package: pkgPeers, Match: "BenchmarkNATSPublish/sync=default", NotDurable: true, Config: natsDefaultConfig},
			},
			Limit: limitFsync,
			Notes: []string{
				"\"records per fsync\" divides the rate by the fsync limit of this disk (4 KiB append + fdatasync, one at a time): above 1 means several records share one fsync (group commit); a store that syncs each record alone cannot exceed 1.",
				"NATS with sync=always does no group commit: its file store writes and fsyncs each message on its own (server/filestore.go, SyncAlways), so its rate follows the disk's fsync rate whatever the number of producers. On a shared disk that rate moves between measurements, which is why its ratio to the limit is not exactly 1.",
			},
		},
		{
			ID:       "journal-append",
			Title:    "Journal append (the write-ahead log alone)",
			Question: "How fast does each log append and sync batches of records?",
			Unit:     "records/s",
			Series: []Series{
				{Label: "BadBatch journal", Package: pkgBench, Match: "BenchmarkJournalAppend/impl=badbatch", Base: true},
				{Label: "tidwall/wal", Package: pkgBench, Match: "BenchmarkJournalAppend/impl=tidwall"},
				{Label: "hashicorp/raft-wal", Package: pkgBench, Match: "BenchmarkJournalAppend/impl=raftwal"},
				{Label: "Pebble as a log", Package: pkgBench, Match: "BenchmarkJournalAppend/impl=pebble"},
			},
			Limit: limitFsync,
		},
		{
			ID:       "replay",
			Title:    "Replay from the start, 100-byte records",
			Question: "How many records per second does a reader get when it replays a stream from its first record?",
			Unit:     "records/s",
			Rows:     []string{"size=100B"},
			Series: []Series{
				{Label: "BadBatch (storage.Store)", Package: pkgBench, Match: "BenchmarkStoreReplay/impl=badbatch", Base: true},
				{Label: "NATS JetStream (ordered consumer)", Package: pkgPeers, Match: "BenchmarkNATSReplay",
					Config: "An ordered consumer (ephemeral, no acks, flow control by the client library) pulling 4096 messages at a time from a stream filled just before, so the stream is in the server's cache and the page cache."},
			},
		},
		{
			ID:       "http-append",
			Title:    "HTTP append",
			Question: "What does the HTTP layer cost on top of the store, compared with an echo server that does nothing?",
			Unit:     "records/s",
			Series: []Series{
				{Label: "BadBatch HTTP API", Package: pkgBench, Match: "BenchmarkHTTPAppend/impl=badbatch", Base: true},
				{Label: "echo no-op handler", Package: pkgBench, Match: "BenchmarkHTTPAppend/impl=echo-noop"},
			},
		},
		{
			ID:       "ring",
			Title:    "Disruptor ring vs Go channels (one event through the topology)",
			Question: "What does one event cost through the ring buffer, against the idiomatic channel pipeline of the same shape?",
			Unit:     "ns/op",
			Rows:     []string{"topology=spsc", "topology=mpsc4", "topology=pipeline3", "topology=diamond"},
			Series: []Series{
				{Label: "ring, claim 1", Package: pkgDisruptor, Match: "BenchmarkRing/claim=1", Base: true},
				{Label: "ring, claim 16", Package: pkgDisruptor, Match: "BenchmarkRing/claim=16", Variant: true, Rows: []string{"topology=spsc"}},
				{Label: "buffered channels", Package: pkgDisruptor, Match: "BenchmarkChannel"},
			},
			Notes: []string{
				"Lower is better. The ring with claim 16 publishes 16 events per claim (batching); only spsc has that variant.",
				"On a machine with few cores the producers, stages and consumers share them, so both designs pay for goroutine scheduling; the ring's busy-spin wait strategies suffer most when cores are oversubscribed.",
			},
		},
	}
}
