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

// The NATS configurations, as bench/peers/nats_test.go sets them.
const (
	natsAlwaysConfig = "nats-server v2.15.2 embedded in the benchmark process, JetStream file storage, " +
		"one stream, R1, no compression; `SyncAlways: true` (the configuration file's " +
		"`sync_interval: always`): every write is fsynced before its PubAck. One in-process client " +
		"connection per producer, async publish with at most 32 acks pending per producer " +
		"(throughput is fsync-bound from 32 up; more only queues)."
	natsBatchConfig = "The same server and stream with `SyncAlways: true` and `AllowAtomicPublish: true`; " +
		"each producer publishes atomic batches of 100 (Nats-Batch-Id / -Sequence headers, the last with " +
		"Nats-Batch-Commit, acknowledged by one PubAck) with up to 4 batches waiting for their PubAck."
	natsDefaultConfig = "As above but with NATS's default `sync_interval` of 2 minutes and 256 acks " +
		"pending per producer. A PubAck only means the record reached the server's write buffer: " +
		"records acknowledged in the last 2 minutes can be lost on power failure. NOT DURABLE; " +
		"shown for honesty, never ranked against durable contenders."
)

// The 3-node NATS cluster, as bench/peers/natscluster_test.go sets it up.
const (
	natsClusterConfig = "nats-server v2.15.2, three servers embedded in one benchmark process, clustered over routes " +
		"on 127.0.0.1, each with its own JetStream file store and `SyncAlways: true`; one stream with `Replicas: 3`, " +
		"file storage, no compression. With SyncAlways and R3 each server fsyncs its raft log of the stream as it " +
		"writes it (the stream's own files are flushed at snapshots), and the leader acknowledges a record once 2 of " +
		"the 3 logs hold it. 4 producers, each with its own in-process connection to the stream's leader."
	natsClusterBatchConfig = natsClusterConfig + " `AllowAtomicPublish: true`; atomic batches of 100 records " +
		"(one PubAck per batch), up to 4 batches waiting for their PubAck per producer, as on the single server."
	natsClusterPublishConfig = natsClusterConfig + " One record per async publish, up to 256 acks pending per " +
		"producer: wider than the single server's 32, because the raft leader replicates whatever has queued as " +
		"one append (32 gave about half the rate; 256 to 1024 were alike within the noise)."
)

// clusterAppendMatch selects BadBatch's own 3-node cluster in the cluster
// comparison: BenchmarkClusterAppend in ./bench (bench/cluster_test.go),
// whose sub-benchmark is named
//
//	BenchmarkClusterAppend/batch=100/producers=4/size=100B
//
// (batch= may stand anywhere; any further element of its name must be
// added here, or the row will not match NATS's producers=4/size=100B).
const clusterAppendMatch = "BenchmarkClusterAppend/batch=100"

// clusterFailoverMatch is BadBatch's failover benchmark in ./bench
// (bench/cluster_failover_test.go); its row is nodes=3.
const clusterFailoverMatch = "BenchmarkClusterFailover"

// clusterFailoverConfig states how BenchmarkClusterFailover runs.
const clusterFailoverConfig = "Three `badbatch serve` processes built from this tree, each with its own data directory on " +
	"this machine's disk, on loopback, with raft's default timers (50 ms ticks, election timeout 10-20 ticks, PreVote, " +
	"CheckQuorum). The leader is killed with SIGKILL; a prober sends one small append at a time to the survivors in turn " +
	"(following a follower's redirect to the leader) and the figure is the time from the kill to the 201 of the first " +
	"append sent after it. The killed node is restarted and the cluster let heal before the next kill."

// clusterNodes is the number of nodes of each cluster in the cluster
// comparison: BadBatch's and NATS's (natsClusterNodes in bench/peers).
const clusterNodes = 3

// etcd's WAL, as bench/peers/etcdwal_test.go drives it.
const (
	etcdWALLabel         = "etcd wal"
	etcdWALJournalBeside = "BadBatch journal, beside etcd wal"
	etcdWALConfig        = "go.etcd.io/etcd/server/v3 v3.7.3, package storage/wal, as etcd's server uses it: wal.Create with " +
		"a no-op zap logger, default 64 MB segments (wal.SegmentSizeBytes), each preallocated in full when created " +
		"(fallocate, file size 64 MB from the start; the next one prepared by a background goroutine). One " +
		"WAL.Save(HardState, entries) per batch, one raft entry per record: Save fdatasyncs on every call with " +
		"entries (three fsyncs when it cuts a segment). Measured in bench/peers, a separate process from the other " +
		"contenders."
)

// storeConfig states how bench/storage_test.go drives every store.
const (
	storeBadBatchConfig = "storage.Store with its defaults (sync policy always: one fdatasync per ring batch), " +
		"AppendAsync of 100 records per append, up to 32 appends in flight per producer."
	storePeerConfig = "The same 100-record appends and 32 in flight per producer, fed to a group-commit " +
		"loop written in the benchmark (one committer drains the queued appends, up to 1024, into one " +
		"batch with one fsync, then acknowledges each): these logs have no pipeline of their own."
)

// Groups returns the comparisons in report order: the headline first.
func Groups() []*Group {
	groups := []*Group{
		{
			ID:       "durable-append",
			Title:    "Durable append, 100-byte records",
			Question: "How many records per second does each store acknowledge as durable, by number of concurrent producers?",
			Unit:     "records/s",
			Rows:     []string{"producers=1/size=100B", "producers=2/size=100B", "producers=4/size=100B", "producers=8/size=100B", "producers=16/size=100B"},
			Series: []Series{
				{Label: "BadBatch (storage.Store)", Package: pkgBench, Match: "BenchmarkStoreAppend/impl=badbatch", Base: true, Config: storeBadBatchConfig},
				{Label: "tidwall/wal + group commit", Package: pkgBench, Match: "BenchmarkStoreAppend/impl=tidwall", Rows: onlyFourProducers,
					Config: "tidwall/wal v1.2.1, WriteBatch with fsync (NoSync false), NoCopy. " + storePeerConfig},
				{Label: "Pebble as a log + group commit", Package: pkgBench, Match: "BenchmarkStoreAppend/impl=pebble",
					Config: "Pebble v2 (FormatNewest), key = 8-byte index, one batch Commit(pebble.Sync) per group. " + storePeerConfig},
				{Label: "raft-wal + group commit", Package: pkgBench, Match: "BenchmarkStoreAppend/impl=raftwal", Rows: onlyFourProducers,
					Config: "hashicorp/raft-wal v0.4.0, one StoreLogs per group. " + storePeerConfig},
				{Label: "NATS JetStream, atomic batches of 100", Package: pkgPeers, Match: "BenchmarkNATSAtomicBatch/sync=always/batch=100", Config: natsBatchConfig},
				{Label: "NATS JetStream, one record per publish", Package: pkgPeers, Match: "BenchmarkNATSPublish/sync=always", Config: natsAlwaysConfig},
				{Label: "NATS JetStream, sync=default (NOT DURABLE)", Package: pkgPeers, Match: "BenchmarkNATSPublish/sync=default", NotDurable: true, Config: natsDefaultConfig},
			},
			Limit: limitFsync,
			Why: "BadBatch does more per append than a bare log behind a loop that only batches and fsyncs: " +
				"before it acknowledges, it frames each append with a CRC32C into the journal, and its business-logic " +
				"stage assigns per-stream offsets and writes a Pebble index batch per ring batch. Its three pipeline " +
				"goroutines (journal, replication pass-through, business logic) share the cores with the producers, " +
				"and on a 2-core machine busy with other work they wait for a core. Not yet profiled: which of these " +
				"dominates is not known.",
			Notes: []string{
				"\"records per fsync\" divides the rate by the fsync limit of this disk (4 KiB append + fdatasync, one at a time): above 1 means several records share one fsync (group commit); a store that syncs each record alone cannot exceed 1.",
				"BadBatch and the three write-ahead logs take 100 records per append; so do NATS's atomic batches. \"One record per publish\" is how most NATS clients publish; it is shown because it is NATS's common case, and it is where the per-record fsync shows.",
				"NATS with sync=always does no group commit across messages: its file store writes and fsyncs each message on its own (strace on the development machine: about two fsync calls per message). An atomic batch is committed with one flush, but the server first stages the batch in a temporary file store of its own (strace: about ten directory creations and nine fsyncs per batch of 100), which is why it gains less than its batch size.",
				"The write-ahead logs have no server in front of them, so the benchmark gives them the group-commit loop a server would; only BadBatch's figure includes a real pipeline (ring buffer, index, per-stream offsets). Pebble runs at every producer count, as BadBatch and NATS do; tidwall/wal and raft-wal at 4 producers only.",
			},
		},
		{
			ID:       "append-latency",
			Title:    "Append latency at half load, 100-record appends",
			Question: "How long does a durable append take when each store runs at half of its own maximum throughput?",
			Unit:     "p99-ns",
			Series:   latencySeries("half"),
			Why: "Each store is paced at half of its own maximum, so BadBatch runs here at 2-3x the rate of the " +
				"write-ahead logs (target-records/s in the full table); at the same rate for every store (the next " +
				"table, 1M records/s) BadBatch has the lowest p99. What is known of the rest: an append crosses three " +
				"goroutines (producer, journal processor, business processor, then back to the producer's future) " +
				"against one committer loop for the logs, and on 2 vCPUs each hand-off can wait for a core. " +
				"docs/decisions/0009-append-tail-latency.md measured the rest: in these short runs the p99 was one stall " +
				"per run, a garbage collection caused by per-slot buffers (now a free list); in long runs the stalls " +
				"follow the journal's segment roll (about 1.3 ms on the journaling goroutine) and the index flush, which " +
				"both come every 64 MiB. Preparing the next segment in the background would shorten the roll; not built.",
			Notes: []string{
				"Lower is better. p99 of the time from an append's scheduled send to its acknowledgement (open loop: a stall is charged to every append it delays). Each store is paced at half of the maximum it reached in BenchmarkStoreAppend in the same run, so they run at the same relative load, not the same rate: the target-records/s figure of each is in the full table below, with p50 and p99.9.",
			},
		},
		{
			ID:       "append-latency-1m",
			Title:    "Append latency at 1M records/s, 100-record appends",
			Question: "How long does a durable append take when every store runs at the same 1,000,000 records/s?",
			Unit:     "p99-ns",
			Series:   latencySeries("1Mrps"),
			Notes: []string{
				"Lower is better. The same open-loop workload as the previous table, but every store is paced at 1,000,000 records/s (10,000 appends of 100 records per second from 4 producers): the same offered load for all, about half of what raft-wal, the fastest of the logs, sustains. p50 and p99.9 are in the full table.",
			},
		},
		{
			ID:       "cluster-append",
			Title:    "Cluster append, 3 nodes on one machine, 100-byte records",
			Question: "How many records per second does a 3-node cluster acknowledge once a majority of its nodes hold them, against the same load on one node?",
			Unit:     "records/s",
			Rows:     onlyFourProducers,
			OnlyRows: true,
			Nodes:    clusterNodes,
			Series: []Series{
				{Label: "BadBatch 3-node cluster", Package: pkgBench, Match: clusterAppendMatch, Base: true},
				{Label: "BadBatch single node (storage.Store)", Package: pkgBench, Match: "BenchmarkStoreAppend/impl=badbatch", Variant: true, BaseRatio: true,
					Config: storeBadBatchConfig + " The durable-append table's figure at the same point."},
				{Label: "NATS JetStream R3, atomic batches of 100", Package: pkgPeers, Match: "BenchmarkNATSClusterAppend/mode=atomic-batch100", Config: natsClusterBatchConfig},
				{Label: "NATS JetStream R3, one record per publish", Package: pkgPeers, Match: "BenchmarkNATSClusterAppend/mode=publish", Config: natsClusterPublishConfig},
			},
			Notes: []string{
				"Each cluster's 3 nodes run in one process on this machine: they share its cores and its one disk, and replicate over loopback. The figures are what replication costs here, not what 3 machines would do (3 times the cores and disks, and a network slower than loopback).",
				"BadBatch's advantage over NATS is the cluster's records/s over NATS R3's. The single node's row is BadBatch's own storage.Store at the same point (4 producers, 100-byte records, 100 records per append), from the durable-append table; beside it is the cluster's records/s over the single node's: what 3 nodes cost against 1. It is BadBatch, so it is never a loss.",
				"NATS ran in bench/peers's test binary and BadBatch in ./bench's, as in the durable-append table.",
			},
		},
		{
			ID:       "cluster-failover",
			Title:    "Cluster failover, 3 nodes on one machine",
			Question: "How long after its leader is killed with SIGKILL does a 3-node cluster acknowledge an append again?",
			Unit:     "p99-ms",
			Nodes:    clusterNodes,
			Goal:     &Goal{Text: "p99 under 2 s, aim 1 s", Bound: 2000, Aim: 1000},
			Series: []Series{
				{Label: "BadBatch 3-node cluster, p99", Package: pkgBench, Match: clusterFailoverMatch, Base: true, Config: clusterFailoverConfig},
				{Label: "BadBatch 3-node cluster, p50", Package: pkgBench, Match: clusterFailoverMatch, Unit: "p50-ms", Variant: true},
			},
			Notes: []string{
				"Lower is better. One figure per round: the percentile over that round's kills (BADBATCH_CLUSTER_FAILOVERS, 20 by default; kills in the full table), nearest rank, so with 20 kills the p99 is the round's slowest kill (max-ms in the full table). The median and range are over the rounds.",
				"The failover time is raft's election timeout (10-20 ticks of 50 ms, randomized: 0.5-1 s after the last heartbeat), then a PreVote and a vote round, then the new leader's first commit; it does not depend on the load. No peer is measured here.",
			},
		},
		{
			ID:       "journal-interleaved",
			Title:    "Journal append, contenders interleaved within each round",
			Question: "How fast does each log make batches durable when all of them take turns on the disk within the same seconds?",
			Unit:     "MB/s",
			Series: append(journalSeries(func(impl string) (string, string) {
				return "BenchmarkJournalAppendInterleaved", "MB/s-" + impl
			}),
				Series{Label: etcdWALLabel, Package: pkgPeers, Match: "BenchmarkEtcdWALAppendInterleaved", Unit: "MB/s-etcdwal",
					PairedWith: etcdWALJournalBeside, Config: etcdWALConfig},
				Series{Label: etcdWALJournalBeside, Package: pkgPeers, Match: "BenchmarkEtcdWALAppendInterleaved", Unit: "MB/s-journal", Variant: true,
					Config: "BadBatch's journal with its defaults, interleaved with etcd's WAL in bench/peers's process exactly as in BenchmarkJournalAppendInterleaved: the figure etcd's is compared with."},
			),
			Limit: &Limit{
				Package: pkgBench, Match: "BenchmarkJournalAppendInterleaved", Unit: "MB/s-file",
				Per: "of a plain file's rate", Percent: true,
			},
			Why: journalWhy,
			Notes: []string{
				"Each iteration of BenchmarkJournalAppendInterleaved is one turn: every contender, in a shuffled order, makes about 256 KiB of batches durable (at least 1 and at most 8 batches), so all of them meet the same disk within milliseconds. On a machine whose fsync latency drifts this is the fairer comparison; the next table runs them one after another. MB/s counts record bytes only (the journal writes about 30 bytes of framing per record on top).",
				"The benchmark also reports, per turn, the journal's rate over the plain file's and over the best peer's; their medians (journal/file, journal/best-peer) are in the full table below.",
				"etcd's WAL is a heavy dependency, so it runs in bench/peers's own process (BenchmarkEtcdWALAppendInterleaved), interleaved the same way with BadBatch's journal alone: its advantage figure is against that journal (\"" + etcdWALJournalBeside + "\"), measured in the same turns, not against the base row, which ran in another process, and neither of the two is given a share of the plain file's rate (that also ran in the other process). Compare etcd with the journal beside it, not with the rows above. The median of the per-turn ratios is that benchmark's journal/best-peer in the full table.",
			},
		},
		{
			ID:       "journal-append",
			Title:    "Journal append (the write-ahead log alone)",
			Question: "How fast does each log make batches of records durable, by batch size and record size?",
			Unit:     "records/s",
			Series: append(journalSeries(func(impl string) (string, string) {
				return "BenchmarkJournalAppend/impl=" + impl, ""
			}),
				Series{Label: etcdWALLabel, Package: pkgPeers, Match: "BenchmarkEtcdWALAppend", Config: etcdWALConfig, OtherProcess: true},
			),
			Limit: &Limit{
				Package: pkgBench, Match: "BenchmarkJournalAppend/impl=file", Unit: "records/s",
				Per: "of a plain file's rate", Percent: true,
			},
			Why: journalWhy,
			Notes: []string{
				"Every contender makes each batch durable with its own fsync before the next starts (one writer, no pipelining); the plain file is the physical limit at the same batch and record size: one write of the batch's bytes, one fdatasync. The contenders' configurations are in the benchmark's doc comment, quoted below.",
				"Above 100% of the plain file is noise (the two ran at different moments on a shared disk), not a log that beats the disk.",
				"etcd's WAL runs in bench/peers's own test binary, where the same contenders have been measured 1.5-2x faster than in ./bench's; here it is shown but not ranked. Its ranked comparison is the interleaved table above, against BadBatch's journal in the same process and the same turns.",
			},
		},
		{
			ID:       "journal-read",
			Title:    "Journal sequential read",
			Question: "How fast does each log read its entries back in order?",
			Unit:     "MB/s",
			Series: []Series{
				{Label: "BadBatch journal, sealed segments (mmap)", Package: pkgBench, Match: "BenchmarkJournalRead/impl=mmap", Base: true},
				{Label: "BadBatch journal, active segment (pread)", Package: pkgBench, Match: "BenchmarkJournalRead/impl=pread", Variant: true},
				{Label: "tidwall/wal, Read (NoCopy)", Package: pkgBench, Match: "BenchmarkJournalRead/impl=tidwall"},
			},
			Limit: &Limit{
				Package: pkgBench, Match: "BenchmarkLimit/memcopy", Unit: "MB/s",
				Per: "of memcopy bandwidth", Percent: true,
			},
			Why: "tidwall/wal returns a slice of an in-memory cache of the segment with no checksum, while the " +
				"journal verifies each entry's CRC32C; with large entries checking the bytes costs about as much as " +
				"reading them.",
			Notes: []string{
				"BadBatch checks each entry's CRC32C as it reads; tidwall/wal returns a slice of its in-memory segment cache with no checksum at all (decision 0002), so it does less work per byte.",
			},
		},
		{
			ID:       "replay",
			Title:    "Replay from the start, 100-byte records",
			Question: "How many records per second does a reader get when it replays a stream from its first record?",
			Unit:     "records/s",
			Rows:     []string{"size=100B"},
			Series: []Series{
				{Label: "BadBatch (storage.Store.Read, pages of 1000)", Package: pkgBench, Match: "BenchmarkStoreReplay/impl=badbatch", Base: true},
				{Label: "BadBatch (storage.Store.ReadInto, one reused buffer)", Package: pkgBench, Match: "BenchmarkStoreReplay/impl=badbatch-readinto", Variant: true},
				{Label: "NATS JetStream (ordered consumer)", Package: pkgPeers, Match: "BenchmarkNATSReplay",
					Config: "An ordered consumer (ephemeral, no acks, flow control by the client library) pulling 4096 messages at a time from a stream filled just before, so the stream is in the server's cache and the page cache."},
			},
			Notes: []string{
				"Both read data written just before, from the page cache. BadBatch's stream holds 200,000 records and the reader wraps around; NATS's holds exactly the records read.",
				"Store.Read returns records the caller owns (about 255 B allocated per 100-byte record), so this figure moves with the garbage collector's pacing, which follows the process's live heap. When decision 0009 stopped the benchmark's store from retaining a buffer per ring slot (about 22 MB of live heap here), the same read path ran about 3x as many GC cycles (45-51 against 153-154 in a 200 ms run) and this figure fell from about 9M to about 5.3M records/s; with GOGC=off the two builds read at 100-110 and 124-125 ns per record. Store.ReadInto, which decodes each page into a caller-owned ReadBuffer reused from page to page, allocates nothing per record and does not depend on it: its row shows the difference.",
			},
		},
		{
			ID:       "http-append",
			Title:    "HTTP append, one 100-byte record per request",
			Question: "What does the HTTP API cost on top of the store, against an echo handler that does nothing?",
			Unit:     "records/s",
			Series: []Series{
				{Label: "BadBatch HTTP API (fsync before every answer)", Package: pkgBench, Match: "BenchmarkHTTPAppend/impl=badbatch", Base: true},
				{Label: "echo no-op handler (stores nothing)", Package: pkgBench, Match: "BenchmarkHTTPAppend/impl=echo-noop", Reference: true},
				{Label: "storage.Store alone, the same 64 concurrent single-record appends (no HTTP)", Package: pkgBench, Match: "BenchmarkHTTPAppend/impl=store-direct", Reference: true},
			},
			Limit: &Limit{
				Package: pkgBench, Match: "BenchmarkHTTPAppend/impl=echo-noop", Unit: "records/s",
				Per: "of the no-op's rate", Percent: true,
			},
			Goal: &Goal{Text: "BadBatch at least 0.7x the echo no-op's rate (issue 15)", Bound: 0.7, Aim: 0.7, Over: "echo no-op handler (stores nothing)"},
			Notes: []string{
				"The no-op handler is a yardstick, not a contender: it reads the body and answers without parsing or storing anything, so it is the most any echo-based server can do on this machine. The load generator (rawLoad, wrk-like: prebuilt requests, no allocation per request) runs in the same process on the same cores.",
				"SSE fan-out is in the full table below (BenchmarkHTTPFanout).",
				"The storage.Store row makes the same 64 concurrent single-record appends straight to a store, without HTTP: what the store alone does for this workload (decision 0024). The store rows carry appends/fsync (group commit) and fsync-busy-% in the full table.",
			},
		},
		{
			ID:       "http-ndjson",
			Title:    "HTTP append, NDJSON batches of 100-byte records",
			Question: "How many records per second does the HTTP API take in batches, each acknowledged after its fsync?",
			Unit:     "records/s",
			Rows:     []string{"batch=100/conns=16/size=100B", "batch=100/conns=64/size=100B", "batch=1000/conns=4/size=100B", "batch=1000/conns=16/size=100B"},
			Series: []Series{
				{Label: "BadBatch HTTP API, application/x-ndjson", Package: pkgBench, Match: "BenchmarkHTTPAppendNDJSON/impl=badbatch", Base: true},
			},
			Goal: &Goal{Text: "at least 1M records/s (issue 15)", Bound: 1e6, Aim: 1e6},
			Notes: []string{
				"One request carries one batch, appended atomically; each connection waits for its answer before sending the next. Each line is a JSON object with a 100-byte value in value_base64, about 160 bytes. The load generator is rawLoad, as above.",
			},
		},
		dsAppendGroup(),
		dsReadGroup(),
		dsFanoutGroup(),
		clientsGroup(),
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
				"Lower is better. One op is one event from the producer until the last stage has seen it. The ring with claim 16 publishes 16 events per claim (batching); only spsc has that variant, and its ratio is against the same channel row, which sends the 16 events one at a time (a channel of 16-event arrays is batching by the caller, which the storage layer's producers cannot do; disruptor/benchmark_test.go reports it for reference, decision 0020).",
				"On a machine with few cores the producers, stages and consumers share them, so both designs pay for goroutine scheduling; the ring's busy-spin wait strategies suffer most when cores are oversubscribed.",
			},
		},
		scaleRecordSizeGroup("scale-record-size", "records/s",
			"How many durable records per second does the store acknowledge as records grow from 16 bytes to 1 MiB?"),
		scaleRecordSizeGroup("scale-record-size-mbps", "MB/s",
			"How many bytes of records per second does the store make durable as records grow?"),
		scaleRecordSizeGroup("scale-record-size-p99", "p99-ns",
			"How long does a durable append take (p99, submit to acknowledgement) as records grow?"),
		{
			ID:       "scale-streams",
			Title:    "Durable append spread over N streams",
			Question: "Does the append rate fall as the same load is spread over more streams, each created by its first append?",
			Unit:     "records/s",
			Rows:     []string{"streams=1", "streams=100", "streams=10000", "streams=100000"},
			Series: []Series{
				{Label: "BadBatch (storage.Store)", Package: pkgBench, Match: "BenchmarkScaleStreams", Base: true,
					Config: storeBadBatchConfig + " Append i goes to stream i mod N; nothing is pre-created."},
			},
			Notes: []string{
				"A run only creates as many streams as it makes appends (one append is 100 records): the streams-touched figure in the full table says how many a round reached. With a short -benchtime the large N rows have touched far fewer than N streams, so they show the cost of creating streams more than the cost of many existing ones.",
			},
		},
		{
			ID:       "scale-open",
			Title:    "Open time against log size",
			Question: "How long does storage.Open (then Close) take as the log grows, with the index current and with the index deleted?",
			Unit:     "ms/open",
			Rows:     scaleLogRows,
			Series: []Series{
				{Label: "index current (normal restart)", Package: pkgBench, Match: "BenchmarkScaleOpen/index=kept", Base: true},
				{Label: "index deleted (rebuilt from the journal)", Package: pkgBench, Match: "BenchmarkScaleOpen/index=deleted", Variant: true},
			},
			Notes: []string{
				"Lower is better. The log is one stream of 100 B-1 KiB records, written just before under SyncNone and closed (which flushes the index), so the journal is in the page cache as after a process crash; after a power loss Open would read it from the disk. index=current: the sealed segments are taken from their index files and only the last segment (at most 64 MiB) is scanned, so this should not grow with the log. index=deleted also reports s/GiB of journal (the catch-up rate) in the full table. 4 GiB runs only with BADBATCH_BENCH_BIG=1 (set by --full and --big).",
			},
		},
		{
			ID:       "scale-first-record",
			Title:    "First record at a random offset against log size",
			Question: "How long does Store.Read of one record at a random offset take as the log grows?",
			Unit:     "p99-ns",
			Rows:     []string{"records=100000", "records=1000000"},
			Series: []Series{
				{Label: "p99, Store.Read(limit 1)", Package: pkgBench, Match: "BenchmarkReplayFirstRecord/impl=read1", Base: true},
				{Label: "p50, Store.Read(limit 1)", Package: pkgBench, Match: "BenchmarkReplayFirstRecord/impl=read1", Unit: "p50-ns", Variant: true},
			},
			Notes: []string{
				"Lower is better. The figures are BenchmarkReplayFirstRecord's impl=read1 (bench/replay_test.go), which already measures exactly this; 10 million records run only with BADBATCH_BENCH_REPLAY_10M=1 (set by --full and --big).",
			},
		},
		{
			ID:       "scale-rss",
			Title:    "Process RSS against log size",
			Question: "How much does the process's resident memory grow when it opens a log and replays all of it through Store.Read?",
			Unit:     "MiB",
			Rows:     scaleLogRows,
			Series: []Series{
				{Label: "RSS growth over Open", Package: pkgBench, Match: "BenchmarkScaleRSS", Unit: "rss-open-growth-MiB", Base: true},
				{Label: "of which file-backed (RssFile)", Package: pkgBench, Match: "BenchmarkScaleRSS", Unit: "rss-file-open-growth-MiB", Variant: true},
				{Label: "RSS growth over the full replay", Package: pkgBench, Match: "BenchmarkScaleRSS", Unit: "rss-growth-MiB", Variant: true},
				{Label: "anonymous RSS growth over the full replay (RssAnon)", Package: pkgBench, Match: "BenchmarkScaleRSS", Unit: "rss-anon-growth-MiB", Variant: true},
			},
			Notes: []string{
				"Lower is better. From /proc/self/status after a GC. RSS counts every page mapped into the process and resident: anonymous memory (heap, stacks: RssAnon) and file pages mapped with mmap (RssFile). The journal maps its sealed segments, and the pages a reader touches count in RssFile while they stay mapped, although they are the page cache's, shared and reclaimable without swap. Open maps sealed segments without reading them (their offsets come from checked index files, docs/decisions/0008-sealed-segment-index.md), so RSS growth over Open stays flat; a replay leaves at most about journal.Options.MaxResidentBytes (256 MiB by default) of the mappings resident, because the least recently read segments are advised MADV_DONTNEED. Replays of logs smaller than that leave all of them resident. A zero does not plot; the full table has every figure, with go-total-growth (runtime/metrics /memory/classes/total:bytes).",
			},
		},
	}
	return append(groups, sessionGroups()...)
}

// scaleLogRows are the log sizes of BenchmarkScaleOpen and
// BenchmarkScaleRSS (4GiB runs only with BADBATCH_BENCH_BIG=1, which
// --full and --big set, and shows when it ran).
var scaleLogRows = []string{"log=100MiB", "log=1GiB"}

// scaleRecordSizeGroup is one figure of BenchmarkScaleRecordSize against
// the record size.
func scaleRecordSizeGroup(id, unit, question string) *Group {
	return &Group{
		ID:       id,
		Title:    "Durable append against record size (" + unit + ")",
		Question: question,
		Unit:     unit,
		Rows:     []string{"size=16B", "size=256B", "size=4KiB", "size=64KiB", "size=1MiB"},
		Series: []Series{
			{Label: "BadBatch (storage.Store)", Package: pkgBench, Match: "BenchmarkScaleRecordSize", Base: true,
				Config: "storage.Store with its defaults (sync policy always), AppendAsync from 4 producers with up to 32 appends in flight each; " +
					"100 records per append up to 4 KiB records, then about 1 MiB per append (64 KiB: 16 records, 1 MiB: 1)."},
		},
		Notes: []string{
			"Records per append change above 4 KiB (records/append in the full table), so the 64KiB and 1MiB rows pay an fsync for fewer records: compare them in MB/s.",
		},
	}
}

// journalWhy is what is known of why a log beats the journal.
const journalWhy = "Every contender pays one fsync per batch, and at small batches the fdatasync is almost all of " +
	"the cost, so differences there are of the order of the disk's own spread (see the fsync limit's range). " +
	"Since decision 0007 the journal creates its segments at full size (fallocate mode 0), as raft-wal and " +
	"etcd's wal do, so its fdatasyncs commit no file-size change; 'BadBatch journal, DisablePreallocation' " +
	"shows the old growing behaviour. What sizing does not give: at 4 KiB and more per write, every write still " +
	"converts unwritten blocks, a metadata change each fdatasync commits. A file whose blocks were already " +
	"written is faster (BenchmarkFsyncPrealloc on this machine: p50 137-148 us against 248-257 us at 64 KiB), " +
	"which is what Pebble gets by recycling its WAL files. Recycling segments needs a format version 2 with a " +
	"per-life CRC salt (docs/decisions/0007-segment-preallocation.md); not built."

// journalSeries are the contenders of ./bench's journal benchmarks
// (bench/journal_test.go's journalContenders), in the report's order; at
// returns where contender impl's figure is: its benchmark name and metric
// ("" for the group's unit).
func journalSeries(at func(impl string) (match, unit string)) []Series {
	series := func(impl string, s Series) Series {
		s.Package = pkgBench
		s.Match, s.Unit = at(impl)
		return s
	}
	return []Series{
		series("journal", Series{Label: "BadBatch journal", Base: true}),
		series("tidwall-write", Series{Label: "tidwall/wal, Write + Sync"}),
		series("tidwall-batch", Series{Label: "tidwall/wal, WriteBatch"}),
		series("raftwal", Series{Label: "hashicorp/raft-wal"}),
		series("pebble", Series{Label: "Pebble as a log"}),
		series("journal-noprealloc", Series{Label: "BadBatch journal, DisablePreallocation (segments grow)", Variant: true,
			Config: "journal.Options.DisablePreallocation: segment files grow with every write, as before decision 0007; shows what sizing the segments buys."}),
		series("journal-recycle", Series{Label: "BadBatch journal, recycling retired segments", Variant: true,
			Config: "journal.Options.RetentionBytes of two segments and RecycleSegments 1: each roll reuses a retired segment's file, whose blocks are written (decision 0007), as Pebble recycles its WAL files."}),
		series("file", Series{Label: "plain file: write + fdatasync", Reference: true}),
	}
}

// latencySeries are BenchmarkStoreAppendLatency's contenders at one load=.
func latencySeries(load string) []Series {
	m := func(impl string) string { return "BenchmarkStoreAppendLatency/impl=" + impl + "/load=" + load }
	series := []Series{
		{Label: "BadBatch (storage.Store)", Package: pkgBench, Match: m("badbatch"), Base: true},
		{Label: "tidwall/wal + group commit", Package: pkgBench, Match: m("tidwall")},
		{Label: "Pebble as a log + group commit", Package: pkgBench, Match: m("pebble")},
		{Label: "raft-wal + group commit", Package: pkgBench, Match: m("raftwal")},
	}
	if load == "half" {
		series = append(series, Series{Label: "BadBatch 3-node cluster (one machine)", Package: pkgBench,
			Match: "BenchmarkClusterAppendLatency/batch=100/load=half", Variant: true,
			Config: "BenchmarkClusterAppendLatency: the same open-loop load at half of the 3-node cluster's own maximum, appended through the leader; " +
				"an append is acknowledged once a majority fsynced it. The 3 nodes share this machine's cores and one disk."})
	}
	return series
}

// onlyFourProducers is the one matrix point the write-ahead log peers of
// BenchmarkStoreAppend run at.
var onlyFourProducers = []string{"producers=4/size=100B"}

// clientsMatch selects one client's rows of BenchmarkClients
// (bench/clients_test.go), whose sub-benchmarks are named
//
//	BenchmarkClients/mode=append/client=python
const clientsMatch = "BenchmarkClients/client="

// clientsGroup is every client against the Go client on one server
// (clients/BENCH.md): the ratio to Go is the Limit column, taken row by row
// against the Go client's figure in the same run.
func clientsGroup() *Group {
	series := []Series{{Label: "Go client (httpapi/client, in the benchmark process)", Package: pkgBench, Match: clientsMatch + "go", Base: true,
		Config: "The Go client in the benchmark's own process, against the benchmark's server: the real store with SyncAlways, served on 127.0.0.1."}}
	for _, c := range []struct{ lang, label string }{
		{"python", "Python client"}, {"typescript", "TypeScript client"}, {"java", "Java client"}, {"rust", "Rust client"},
	} {
		series = append(series, Series{Label: c.label, Package: pkgBench, Match: clientsMatch + c.lang, Variant: true,
			Config: "clients/" + c.lang + "/bench.sh MODE URL STREAM, a process of its own, against the same server (shown as not run when the script is absent or not executable)."})
	}
	return &Group{
		ID:       "clients",
		Title:    "Clients: append and tail throughput, 100-byte records",
		Question: "How many records per second does each client append (batches of 100, 4 concurrent callers) and tail, against the Go client on the same server?",
		Unit:     "records/s",
		Rows:     []string{"mode=append", "mode=tail"},
		Series:   series,
		Limit: &Limit{
			Package: pkgBench, Match: clientsMatch + "go", Unit: "records/s",
			Per: "of the Go client's rate", Percent: true,
		},
		Notes: []string{
			"The protocol is clients/BENCH.md: append runs BENCH_SECONDS (5 s) of append_batch calls of 100 records of 100 bytes from 4 concurrent callers; tail reads BENCH_RECORDS (200,000) records of 100 bytes, written just before, from earliest with the client's tail. The goal for every client is at least 50% of the Go client's rate in both modes.",
			"Every client shares this machine's cores with the server, which runs in the benchmark's process; the Go client runs in that process too, the others in their own.",
		},
	}
}

// The Durable Streams comparison (bench/durable_test.go): BadBatch's
// protocol at /v1/stream/{name}, its native API on the same kind of server,
// and the protocol's reference server, all driven by the same load
// generator.
const (
	dsMatch         = "BenchmarkDurableStreams"
	dsProtocolLabel = "BadBatch, Durable Streams protocol"
	dsNativeLabel   = "BadBatch, native API"
	dsRefLabel      = "reference server (@durable-streams/server 0.3.7, file store)"

	dsBadBatchConfig = "The benchmark process's own server (httpapi, auth off) over storage.Store with SyncAlways " +
		"on the bench directory's disk, served on 127.0.0.1: an append is answered after its journal entry is fsynced, " +
		"concurrent appends sharing one fsync (group commit). A server of its own for each contender."
	dsRefConfig = "`@durable-streams/server` 0.3.7 (pinned by conformance/durable-streams/package-lock.json) on node, started by " +
		"the benchmark as a child process (`node ref-server.mjs --port 0 --data-dir DIR`) with its file store in a temporary " +
		"directory on the bench directory's disk: an append is written to the stream's segment file and fdatasynced, and the " +
		"stream's metadata put in LMDB, before the answer; appends to one stream run one at a time. Its response compression " +
		"is on but unused (the load generator sends no Accept-Encoding). Shown as not run, with the reason, when node or " +
		"conformance/durable-streams/node_modules (`npm ci` there) is missing."
)

// dsSeries are the three contenders of a Durable Streams benchmark fn, each
// with what it does in that benchmark.
func dsSeries(fn, protocol, native, ref string) []Series {
	m := func(impl, api string) string { return dsMatch + fn + "/impl=" + impl + "/api=" + api }
	return []Series{
		{Label: dsProtocolLabel, Package: pkgBench, Match: m("badbatch", "protocol"), Base: true, Config: dsBadBatchConfig + " " + protocol},
		{Label: dsNativeLabel, Package: pkgBench, Match: m("badbatch", "native"), Variant: true, BaseRatio: true, Config: dsBadBatchConfig + " " + native},
		{Label: dsRefLabel, Package: pkgBench, Match: m("reference", "protocol"), Config: dsRefConfig + " " + ref},
	}
}

// dsNativeNote reads the native row's ratio.
const dsNativeNote = "The native API's row is BadBatch too: its ratio is the protocol's figure over the native API's, " +
	"what the protocol layer costs (1x: nothing; below 1: the protocol is slower)."

// dsProcessNote says where each contender runs.
const dsProcessNote = "The load generator runs in the benchmark's process, as BadBatch's servers do; the reference " +
	"server is a process of its own. All of them share this machine's cores."

func dsAppendGroup() *Group {
	return &Group{
		ID:       "ds-append",
		Title:    "Durable Streams append, one 100-byte message per request",
		Question: "How many appends per second does BadBatch acknowledge through the Durable Streams protocol, against the protocol's reference server and against its own native API, with the same load and 16 connections?",
		Unit:     "appends/s",
		Rows:     []string{"conns=16/size=100B"},
		Series: append(dsSeries("Append",
			"POST /v1/stream/bench, the stream created by PUT as application/octet-stream; 204 after the fsync.",
			"POST /v1/streams/bench/records with the same application/octet-stream body (one record); 201 after the fsync.",
			"POST /v1/stream/bench, the stream created by PUT as application/octet-stream."),
			Series{Label: "echo no-op handler (stores nothing)", Package: pkgBench, Match: "BenchmarkDurableStreamsAppend/impl=echo-noop", Reference: true}),
		Goal: &Goal{Text: "BadBatch's protocol at least 100x the reference's appends/s (issue 14)", Bound: 100, Aim: 100, Over: dsRefLabel},
		Notes: []string{
			"One message of 100 bytes per request, application/octet-stream, from 16 concurrent keep-alive connections to one stream: the same load generator (rawLoad, wrk-like), connections and bytes for every contender. 16 rather than BenchmarkHTTPAppend's 64 because the reference appends to a stream one at a time, so that more connections only lengthen its queue, while BadBatch commits concurrent appends together and gains from more.",
			"Why 100x depends on the disk (decision 0023): with 16 appends in flight, BadBatch commits at most 16 per fsync, while the reference pays one fsync plus its own work per append, so the ratio is bounded by about 16 x (the reference's time per append / BadBatch's time per commit), and never above the echo no-op's rate divided by the reference's. On a quiet disk (fsync about 0.25 ms) that is 20-25x; when fsyncs queue behind other I/O the reference slows to 65-80 appends/s and the ratio reaches 60-75x.",
			dsNativeNote,
			dsProcessNote,
		},
	}
}

func dsReadGroup() *Group {
	return &Group{
		ID:       "ds-read",
		Title:    "Durable Streams catch-up read, 100,000 messages of 100 bytes",
		Question: "How many messages per second does one reader catch up on, from a stream's start until it is up to date, through the protocol, the reference server and BadBatch's native API?",
		Unit:     "messages/s",
		Rows:     []string{"msgs=100000/size=100B"},
		Series: dsSeries("Read",
			"GET /v1/stream/read?offset=-1 on an application/json stream, then ?offset=<Stream-Next-Offset> until Stream-Up-To-Date: true; at most 1,000 messages per answer (a JSON array).",
			"GET /v1/streams/read/records?from=N&limit=1000 (JSON pages, each record with its offset, seq and timestamp) until the next offset stops moving: one more request, for an empty page.",
			"GET /v1/stream/read?offset=-1 on an application/json stream: it answers everything after the offset in one body, so one request catches up."),
		Notes: []string{
			"One op is one catch-up of the whole stream (10 MB of messages) by one reader on one keep-alive connection; the stream is filled just before through the same API, 1,000 messages per append. The reader counts the messages in each body without decoding it and checks that every catch-up counted 100,000. MB/s (message bytes) is in the full table.",
			"The reference reads the stream's whole segment file on every read and builds the JSON answer message by message (JSON.parse and JSON.stringify of each).",
			dsNativeNote,
			dsProcessNote,
		},
	}
}

func dsFanoutGroup() *Group {
	return &Group{
		ID:       "ds-fanout",
		Title:    "Durable Streams SSE fan-out, 100 subscribers",
		Question: "How many messages per second reach 100 SSE subscribers of one stream while one producer appends to it, through the protocol, the reference server and BadBatch's native SSE tail?",
		Unit:     "messages/s",
		Rows:     []string{"subscribers=100/batch=100"},
		Series: dsSeries("Fanout",
			"PUT an application/json stream; the producer POSTs JSON arrays of 100 messages to /v1/stream/{name}; subscribers GET ?offset=-1&live=sse (a data event holds a JSON array of up to 1,000 messages, then a control event).",
			"PUT /v1/streams/{s}; the producer POSTs NDJSON of 100 records to /records; subscribers GET /records?from=0 with Accept: text/event-stream (one event per record: its JSON with offset, seq and timestamp).",
			"PUT an application/json stream; the producer POSTs JSON arrays of 100 messages; subscribers GET ?offset=-1&live=sse (one data event per append, then a control event)."),
		Notes: []string{
			"messages/s counts deliveries: messages appended times subscribers, per second, from the first append until every subscriber has every message. One producer on its own connection sends appends of 100 messages (JSON strings of 100 bytes carrying the send time; one append is one op) one after the other, each answered after the server's fsync; the p99 latency is from the send of an append to a subscriber parsing the message. A fresh stream and 100 fresh subscribers per benchmark run.",
			"On each append the reference wakes every subscriber, and each reads the stream's whole segment file again.",
			dsNativeNote,
			dsProcessNote,
		},
	}
}
