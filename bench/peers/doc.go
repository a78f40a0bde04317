// Package peers holds the benchmarks of BadBatch's heavy peers, the ones that
// library users must never download: an embedded NATS server with JetStream,
// a 3-node NATS cluster in one process, and etcd's write-ahead log.
//
// It is a separate Go module (bench/peers/go.mod) so that nats-server, etcd
// and their dependencies stay out of the main module's go.sum. The package
// itself has no exported API; everything lives in its _test.go files:
//
//	BenchmarkNATSPublish/sync=always/producers={1,2,4,8,16}/size=100B   durable: fsync per write
//	BenchmarkNATSPublish/sync=default/producers={1,2,4,8,16}/size=100B  NOT DURABLE: fsync every 2 minutes
//	BenchmarkNATSAtomicBatch/sync=always/batch=100/producers={1,2,4,8,16}/size=100B
//	                                                                durable, 100 records per commit
//	BenchmarkNATSReplay/size=100B                                   ordered consumer over a filled stream
//	BenchmarkNATSClusterAppend/mode={atomic-batch100,publish}/producers=4/size=100B
//	                                                                3-node cluster, R3, durable
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
// BenchmarkNATSClusterAppend (natscluster_test.go) is the peer of
// BadBatch's 3-node raft cluster: three nats-servers in the benchmark's
// process, clustered over routes on 127.0.0.1 (route ports found free at
// run time, client ports ephemeral), each with its own JetStream store
// directory in b.TempDir() and SyncAlways, and one stream with Replicas: 3
// on file storage. It waits for the JetStream meta leader and for the
// stream's leader and two current followers before it measures. With
// SyncAlways and more than one replica, nats-server v2.15 fsyncs each
// server's raft log of the stream as it is written and flushes the
// stream's own store only at its snapshots (stream.go: SyncOnFlush), so
// a record is durable once a majority of the raft logs hold it, which is
// when the leader commits it and sends its PubAck. The producers connect
// in-process to the stream's leader; mode=atomic-batch100 and mode=publish
// are the two durable ways of the single-server benchmarks above (with 256
// acks pending per producer in mode=publish: natsClusterWindow says why). All
// three servers share the machine's cores and its one disk, and replicate
// over loopback: the figure is the replication's cost on one machine, not
// what three machines (three times the cores and disks, a slower network)
// would do.
// TestNATSClusterR3Durable checks the cluster, the stream's replicas and
// that every replica holds every acknowledged record.
//
// etcd's WAL (etcdwal_test.go) is a contender of the journal comparison, run
// on the same matrix, records and interleaving as bench/journal_test.go
// (journal_test.go here is a compact copy of that harness):
//
//	BenchmarkEtcdWALAppendInterleaved/batch={1,16,256}/size={100B,1KiB,64KiB}
//	    etcd's WAL and BadBatch's journal (journal.DefaultOptions) in one
//	    process, taking turns within each round; reports MB/s-etcdwal,
//	    MB/s-journal and journal/best-peer (the median over rounds of etcd's
//	    time over the journal's for the same bytes: > 1, the journal was faster)
//	BenchmarkEtcdWALAppend/batch={1,16,256}/size={100B,1KiB,64KiB}
//	    etcd's WAL alone; reports MB/s, records/s and fsyncs/s
//
// The configuration is etcd's own, as etcd's server uses it: go.etcd.io/etcd/
// server/v3 v3.7.3, package storage/wal, wal.Create in a fresh directory with
// a zap.NewNop logger and no metadata, the default 64 MB segments
// (wal.SegmentSizeBytes = 64*1000*1000), fsync on. Each batch is one
// WAL.Save(HardState, entries): one raft entry per record (Term 1, Index
// increasing from 1, EntryNormal, Data = the record) and HardState{Term: 1,
// Vote: 1, Commit: the previous batch's last index}, what a single-node raft
// hands its WAL in a Ready. Save fsyncs on every call that has entries
// (storage/wal/wal.go in v3.7.3, lines 1010-1036: mustSync :=
// raft.MustSync(st, w.state, len(ents)), which go.etcd.io/raft/v3 v3.7.0's
// rawnode.go:197 makes true when len(ents) != 0, then w.sync(), an
// fdatasync(2) of the tail segment; or, when the segment is full, w.cut(),
// which fdatasyncs the old and the new segment and fsyncs the directory).
// The fsyncs/s figure is counted by etcd's own
// etcd_disk_wal_fsync_duration_seconds histogram, and TestEtcdWALRoundTrip
// checks that every Save of a batch makes exactly one fsync (three at a cut)
// and that the entries read back through wal.Open and ReadAll; each matrix
// point's benchmark reads its WAL back too, when it holds at most 64 MiB.
//
// etcd preallocates each segment in full when it creates it
// (fileutil.Preallocate: fallocate(2) with mode 0, so the file is 64 MB long
// from the start), and a background goroutine (file_pipeline.go) creates and
// preallocates the next segment before it is needed. An fdatasync after an
// append therefore never has a new file size to persist. BadBatch's journal
// preallocates its active segment in 4 MiB steps with FALLOC_FL_KEEP_SIZE,
// so its file size grows with every append; this difference is part of what
// the comparison measures.
//
// Run them on their own with
//
//	cd bench/peers && go test -run '^$' -bench . -benchtime 200ms -benchmem
//
// or, with everything else, through `go run ./bench/cmd/bbbench` from the
// repository root. Benchmarks write into $TMPDIR.
package peers
