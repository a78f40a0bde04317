// Package peers holds the benchmarks of BadBatch's heavy peers, the ones that
// library users must never download: an embedded NATS server with JetStream.
//
// It is a separate Go module (bench/peers/go.mod) so that nats-server and its
// dependencies stay out of the main module's go.sum. The package itself has no
// exported API; everything lives in its _test.go files:
//
//	BenchmarkNATSPublish/sync=always/producers={1,4,16}/size=100B   durable: fsync per write
//	BenchmarkNATSPublish/sync=default/producers={1,4,16}/size=100B  NOT DURABLE: fsync every 2 minutes
//	BenchmarkNATSAtomicBatch/sync=always/batch=100/producers={1,4,16}/size=100B
//	                                                                durable, 100 records per commit
//	BenchmarkNATSReplay/size=100B                                   ordered consumer over a filled stream
//
// NATS runs in the benchmark's process with JetStream file storage in
// b.TempDir(), one stream, one replica, no compression. Each producer has its
// own client connection and publishes asynchronously with a bounded window of
// pending acknowledgements (32 with sync=always, 256 with sync=default; see
// natsSyncs); the latency of a record is from its PublishAsync call to its
// PubAck, so it includes the time queued behind the window. The server option behind sync=always is
// server.Options.SyncAlways (the configuration file's
// `jetstream { sync_interval: always }`); sync=default leaves SyncInterval
// at NATS's default of two minutes, so an acknowledged record may be lost on
// power failure. The report shows it labelled as such and never compares it
// with a durable contender. BenchmarkNATSAtomicBatch is NATS's answer to an
// append of 100 records: a JetStream atomic batch (AllowAtomicPublish on the
// stream), which nats-server v2.15 commits with one flush and fsync of the
// stream under SyncAlways, after staging the batch in a temporary file store.
//
// Run them on their own with
//
//	cd bench/peers && go test -run '^$' -bench . -benchtime 200ms -benchmem
//
// or, with everything else, through `go run ./bench/cmd/bbbench` from the
// repository root. Benchmarks write into $TMPDIR.
package peers
