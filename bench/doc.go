// Package bench holds BadBatch's comparison benchmarks and the evidence
// tests behind its design decisions. It has no API: everything is in its
// _test.go files and in the command bench/cmd/bbbench.
//
// # What lives where
//
//	bench/limits_test.go         the machine's physical limits, measured in the same run:
//	                             BenchmarkLimit/fsync, /seqwrite/size={64KiB,1MiB},
//	                             /memcopy/size={1KiB,64KiB,1MiB}
//	bench/journal_test.go        the journal against tidwall/wal, raft-wal and Pebble as a log
//	bench/storage_test.go        storage.Store against the same peers
//	bench/http_test.go           the HTTP API against an echo handler that does nothing
//	bench/durable_test.go        the Durable Streams protocol (/v1/stream/{name}) against the
//	                             protocol's reference server (@durable-streams/server 0.3.7, file
//	                             store, a node child process) and BadBatch's native API: appends,
//	                             catch-up reads, SSE fan-out. The reference needs node and
//	                             `npm ci` in conformance/durable-streams; without them its rows
//	                             print why they did not run (notRun) and the report says so
//	bench/replay_test.go         replay against Pebble iteration and raft-wal; first record; fan-out
//	bench/scaling_test.go        how cost grows: record size, stream count, open time and RSS
//	                             against log size
//	bench/cluster_failover_test.go  a 3-node cluster of real badbatch processes: the time from
//	                             kill -9 of the leader to the next acknowledged append
//	                             (BADBATCH_CLUSTER_FAILOVERS kills, 20 by default)
//	bench/tidwall_facts_test.go  tests that demonstrate tidwall/wal's defects (decision 0002)
//	bench/peers/                 a separate Go module for the heavy peers (nats-server, etcd's
//	                             wal), so that library users never download them: NATS JetStream
//	                             publish (sync=always and sync=default) and replay, a 3-node
//	                             JetStream cluster with R3 streams, and etcd's WAL
//	bench/cmd/bbbench/           the command that runs all of the above, with
//	                             disruptor's BenchmarkRing and BenchmarkChannel, and writes
//	                             docs/benchmarks.md, docs/img/*.svg and docs/bench-results.json
//
// # Running
//
// The whole comparison, one run on one machine, from the repository root:
//
//	go run ./bench/cmd/bbbench --quick   # about 5 minutes: -benchtime 200ms, 3 rounds
//	go run ./bench/cmd/bbbench --full    # -benchtime 1s, 10 rounds (estimated 30-60 minutes): to publish
//
// It shows a progress bar on a terminal and plain lines otherwise. Flags:
// --bench narrows the benchmarks (a -bench expression applied in every
// package), --tmpdir chooses the disk the benchmarks write to (its file
// system is named in the report), --from-json renders the report again from
// a results file without running anything, --dry-run prints the plan.
//
// One package by hand, with plain go test:
//
//	go test -run '^$' -bench . -benchtime 200ms -count 3 -benchmem ./bench
//	(cd bench/peers && go test -run '^$' -bench . -benchtime 200ms -count 3 -benchmem .)
//
// # Naming, so that bbbench can pair the figures
//
// Benchmarks are named as a matrix (STYLE.md): the function, then
// key=value elements. bbbench pairs a BadBatch figure with its peers'
// at the same matrix point; the pairings are listed in
// bench/cmd/bbbench/groups.go, which names for each contender the function
// and the elements that select it (for example impl=tidwall), and the unit
// compared (records/s for appends and reads). Report custom units with
// b.ReportMetric: records/s, MB/s, fsyncs/s, and latencies as p50-ns and
// p99-ns. A benchmark that groups.go expects but that does not exist shows
// in the report as "not run (no such benchmark)"; one that cannot run here
// calls notRun (bench/durable_test.go), which prints "--- SKIP: name" and
// the reason, and shows as "not run: <reason>"; every benchmark that runs
// is listed in the report's full table whether or not a group pairs it.
// BadBatch's 3-node cluster, not written yet, is expected in this package as
// BenchmarkClusterAppend/batch=100/producers=4/size=100B (groups.go's
// clusterAppendMatch), reporting records/s: the report's cluster table
// already holds NATS R3 (bench/peers's BenchmarkNATSClusterAppend) and
// BadBatch's single node at that point, and computes the cluster's ratio to
// each once it runs.
//
// Each benchmark function's doc comment is quoted in the report: state there
// what one op is and how the contender is configured (its best honest
// configuration, and whether an acknowledged write is durable).
package bench
