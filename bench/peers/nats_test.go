package peers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The configuration given to NATS. It is NATS's best honest one for a
// single-node durable log of small records, and docs/benchmarks.md states it.
const (
	// natsStream and natsSubject name the one stream every benchmark uses.
	natsStream  = "BENCH"
	natsSubject = "bench.records"

	// natsFillWindow is the window used to fill the replay benchmark's stream.
	natsFillWindow = 256

	// natsBatch is the size of BenchmarkNATSAtomicBatch's batches: the
	// records per append of storage.Store's append benchmark.
	natsBatch = 100

	// natsBatchWindow is the atomic batches each producer may have waiting
	// for their PubAck. The server stages at most 50 batches per stream at
	// a time (its default), and a producer's batches are staged one after
	// another, so this stays far below that limit.
	natsBatchWindow = 4

	// natsReplayBatch is the ordered consumer's pull size (PullMaxMessages).
	// The client library's default is 500; 4096 buffers more per pull request
	// and was no slower in tries on the (noisy) development machine.
	natsReplayBatch = 4096

	// natsRecordSize is the value size of every benchmark: 100 bytes, the
	// same as BadBatch's headline append benchmarks.
	natsRecordSize = 100

	// natsInProcess selects the client transport. In-process (a net.Pipe into
	// the embedded server) skips the kernel's loopback TCP, which is what an
	// embedder of NATS would use and what BadBatch's embedded library is
	// compared with.
	natsInProcess = true
)

// natsProducerCounts is the producers= matrix of BenchmarkNATSPublish.
var natsProducerCounts = []int{1, 2, 4, 8, 16}

// natsSync is one sync= setting of the matrix, with the window of pending
// acks per producer that gives it its best throughput here without queueing
// needlessly.
type natsSync struct {
	name       string
	syncAlways bool
	window     int
}

// natsSyncs: "always" fsyncs every write before the PubAck (durable);
// "default" keeps NATS's two-minute SyncInterval (NOT durable on power loss).
//
// The windows were chosen by measurement on the development machine. With
// sync=always each record costs one fsync, so throughput sits at the fsync
// limit from a window of 32 up (tried: 32, 256, 1024) and a larger window only
// adds queueing to the latency. With sync=default a window of 256 beat 32 by
// up to 1.7x with one producer.
var natsSyncs = []natsSync{
	{name: "always", syncAlways: true, window: 32},
	{name: "default", syncAlways: false, window: 256},
}

// natsServer is one embedded NATS server with JetStream on file storage.
// It is owned by one benchmark or test and is not shared across them.
type natsServer struct {
	srv *server.Server
	dir string
}

// startNATS starts a server whose JetStream store lives in a fresh temporary
// directory. It is shut down, and waited for, when tb ends.
func startNATS(tb testing.TB, syncAlways bool) *natsServer {
	tb.Helper()
	dir := tb.TempDir()
	opts := &server.Options{
		ServerName:             "badbatch-bench",
		Host:                   "127.0.0.1",
		Port:                   server.RANDOM_PORT,
		DontListen:             natsInProcess,
		NoLog:                  true,
		NoSigs:                 true,
		JetStream:              true,
		StoreDir:               dir,
		SyncAlways:             syncAlways,
		DisableJetStreamBanner: true,
	}
	srv, err := server.NewServer(opts)
	require.NoError(tb, err)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("nats server not ready after 10s")
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &natsServer{srv: srv, dir: dir}
}

// connect opens a client connection, closed when tb ends.
func (s *natsServer) connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	var (
		nc  *nats.Conn
		err error
	)
	if natsInProcess {
		nc, err = nats.Connect("", nats.InProcessServer(s.srv), nats.Name("bench"))
	} else {
		nc, err = nats.Connect(s.srv.ClientURL(), nats.Name("bench"))
	}
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}

// jetStream returns a JetStream context on a new connection. Its own limit
// on pending async publishes is twice the window, so that it never stalls a
// producer: natsProducer.run enforces the window itself.
func (s *natsServer) jetStream(tb testing.TB, window int) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(s.connect(tb), jetstream.WithPublishAsyncMaxPending(2*window))
	require.NoError(tb, err)
	return js
}

// createStream creates the benchmark stream: file storage, one replica, no
// compression, no limits, no de-duplication headers in use.
func (s *natsServer) createStream(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	s.createStreamWith(tb, js, false)
}

// createStreamWith creates the benchmark stream, with atomic batch
// publishing allowed or not.
func (s *natsServer) createStreamWith(tb testing.TB, js jetstream.JetStream, atomicBatches bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, natsStreamConfig(1, atomicBatches))
	require.NoError(tb, err)
}

// natsStreamConfig is the benchmark stream's configuration with the given
// number of replicas: file storage, no compression, no limits, and atomic
// batch publishing allowed or not. The single server's benchmarks use one
// replica, the cluster's three (natscluster_test.go).
func natsStreamConfig(replicas int, atomicBatches bool) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        natsStream,
		Subjects:    []string{natsSubject},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Compression: jetstream.NoCompression,

		AllowAtomicPublish: atomicBatches,
	}
}

// natsPayload is a 100-byte value that is not all zeros.
func natsPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// natsInflight is one publish waiting for its acknowledgement.
type natsInflight struct {
	future jetstream.PubAckFuture
	start  time.Time
}

// collectAcks starts the collector of a producer: it waits for the acks of
// the publishes sent on window, in order, records each one's latency in
// hist, checks it with check (nil: no check), frees its slot, and once
// window is closed sends the first error (or nil) on the returned channel.
func collectAcks(window <-chan natsInflight, slots <-chan struct{}, hist *hdrhistogram.Histogram, check func(*jetstream.PubAck) error) <-chan error {
	collected := make(chan error, 1)
	go func() {
		var first error
		for f := range window {
			select {
			case ack := <-f.future.Ok():
				_ = hist.RecordValue(time.Since(f.start).Nanoseconds())
				if check != nil && first == nil {
					first = check(ack)
				}
			case err := <-f.future.Err():
				if first == nil {
					first = err
				}
			}
			<-slots
		}
		collected <- first
	}()
	return collected
}

// natsProducer publishes claimed records asynchronously and records the
// publish-to-ack latency of each. It is used by one goroutine at a time; the
// histogram is read after run returns.
type natsProducer struct {
	js     jetstream.JetStream
	window int
	hist   *hdrhistogram.Histogram
}

// run publishes until next passes total. A collector goroutine waits for the
// acks in publish order (one stream, one connection: JetStream acks them in
// that order), and a semaphore of p.window slots bounds the publishes that
// are waiting for their ack.
func (p *natsProducer) run(next *atomic.Int64, total int64, payload []byte) error {
	slots := make(chan struct{}, p.window)
	window := make(chan natsInflight, p.window)
	collected := collectAcks(window, slots, p.hist, nil)
	var pubErr error
	for next.Add(1) <= total {
		slots <- struct{}{}
		start := time.Now()
		future, err := p.js.PublishAsync(natsSubject, payload)
		if err != nil {
			pubErr = err
			<-slots
			break
		}
		window <- natsInflight{future: future, start: start}
	}
	close(window)
	return errors.Join(pubErr, <-collected)
}

// natsHistogram holds latencies from 1µs to 60s with 3 significant figures.
func natsHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1_000, 60_000_000_000, 3)
}

// BenchmarkNATSPublish appends 100-byte records to an embedded NATS server's
// JetStream stream (file storage, R1) from 1, 2, 4, 8 or 16 producers, each with
// its own connection and a bounded window of async publishes. sync=always
// runs the server with SyncAlways (an fsync per write before the PubAck:
// durable); sync=default keeps the 2-minute SyncInterval (NOT durable).
// Reports records/s and the publish-to-ack p50/p99 in ns.
func BenchmarkNATSPublish(b *testing.B) {
	for _, mode := range natsSyncs {
		b.Run("sync="+mode.name, func(b *testing.B) {
			for _, producers := range natsProducerCounts {
				b.Run(fmt.Sprintf("producers=%d/size=%dB", producers, natsRecordSize), func(b *testing.B) {
					benchmarkNATSPublish(b, mode, producers, natsRecordSize)
				})
			}
		})
	}
}

// benchmarkNATSPublish appends b.N records of size bytes from producers
// goroutines, each with its own connection, and reports records/s and the
// publish-to-ack latency percentiles.
func benchmarkNATSPublish(b *testing.B, mode natsSync, producers, size int) {
	s := startNATS(b, mode.syncAlways)
	ps := make([]*natsProducer, producers)
	for i := range ps {
		ps[i] = &natsProducer{js: s.jetStream(b, mode.window), window: mode.window, hist: natsHistogram()}
	}
	s.createStream(b, ps[0].js)
	payload := natsPayload(size)

	runs, hists := make([]natsRun, len(ps)), make([]*hdrhistogram.Histogram, len(ps))
	for i, p := range ps {
		runs[i], hists[i] = p.run, p.hist
	}
	total := runNATSProducers(b, runs, hists, payload)
	require.EqualValues(b, b.N, total.TotalCount(), "every publish must be acknowledged")
}

// natsBatchProducer publishes claimed records in JetStream atomic batches
// (ADR-50; server.StreamConfig.AllowAtomicPublish): every record but the
// last of a batch is a core publish carrying Nats-Batch-Id and
// Nats-Batch-Sequence headers, the last one also carries Nats-Batch-Commit
// and waits for the batch's PubAck. With SyncAlways, nats-server v2.15
// commits an R1 batch with a single flush and fsync of the stream (it still
// stages the batch in a temporary file store first). It is used by one
// goroutine at a time; the histogram holds one latency per batch, from its
// first publish to its PubAck, and is read after run returns.
type natsBatchProducer struct {
	id     int
	js     jetstream.JetStream
	batch  int
	window int // batches waiting for their PubAck
	hist   *hdrhistogram.Histogram
}

// run publishes batches of records until next passes total; the last batch
// may be short.
func (p *natsBatchProducer) run(next *atomic.Int64, total int64, payload []byte) error {
	nc := p.js.Conn()
	slots := make(chan struct{}, p.window)
	window := make(chan natsInflight, p.window)
	collected := collectAcks(window, slots, p.hist, func(ack *jetstream.PubAck) error {
		if ack.Stream != natsStream {
			return fmt.Errorf("batch acknowledged by stream %q", ack.Stream)
		}
		return nil
	})
	var pubErr error
	header := nats.Header{}
	for batchNo := 0; pubErr == nil; batchNo++ {
		end := next.Add(int64(p.batch))
		n := min(int64(p.batch), total-(end-int64(p.batch)))
		if n <= 0 {
			break
		}
		slots <- struct{}{}
		start := time.Now()
		// The header map is serialized by each publish, so it is reused.
		header.Set("Nats-Batch-Id", fmt.Sprintf("p%d-b%d", p.id, batchNo))
		header.Del("Nats-Batch-Commit")
		for seq := int64(1); seq < n; seq++ {
			header.Set("Nats-Batch-Sequence", strconv.FormatInt(seq, 10))
			if err := nc.PublishMsg(&nats.Msg{Subject: natsSubject, Header: header, Data: payload}); err != nil {
				pubErr = err
				break
			}
		}
		if pubErr != nil {
			<-slots
			break
		}
		commit := nats.Header{}
		for k, v := range header {
			commit[k] = v
		}
		commit.Set("Nats-Batch-Sequence", strconv.FormatInt(n, 10))
		commit.Set("Nats-Batch-Commit", "1")
		future, err := p.js.PublishMsgAsync(&nats.Msg{Subject: natsSubject, Header: commit, Data: payload})
		if err != nil {
			pubErr = err
			<-slots
			break
		}
		window <- natsInflight{future: future, start: start}
	}
	close(window)
	return errors.Join(pubErr, <-collected)
}

// BenchmarkNATSAtomicBatch appends 100-byte records to the same embedded NATS
// server with SyncAlways (durable), in JetStream atomic batches of 100
// records, NATS's way to make many records durable with one commit: the
// counterpart of an append of 100 records to storage.Store. 1, 2, 4, 8 or 16
// producers, each with its own connection and up to natsBatchWindow batches
// waiting for their PubAck. One op is one record. Reports records/s and the
// batch latency (first publish to PubAck) p50/p99 in ns.
func BenchmarkNATSAtomicBatch(b *testing.B) {
	for _, producers := range natsProducerCounts {
		name := fmt.Sprintf("sync=always/batch=%d/producers=%d/size=%dB", natsBatch, producers, natsRecordSize)
		b.Run(name, func(b *testing.B) {
			benchmarkNATSAtomicBatch(b, producers, natsRecordSize)
		})
	}
}

func benchmarkNATSAtomicBatch(b *testing.B, producers, size int) {
	s := startNATS(b, true)
	ps := make([]*natsBatchProducer, producers)
	for i := range ps {
		ps[i] = &natsBatchProducer{id: i, js: s.jetStream(b, natsBatchWindow), batch: natsBatch, window: natsBatchWindow, hist: natsHistogram()}
	}
	s.createStreamWith(b, ps[0].js, true)
	payload := natsPayload(size)

	runs, hists := make([]natsRun, len(ps)), make([]*hdrhistogram.Histogram, len(ps))
	for i, p := range ps {
		runs[i], hists[i] = p.run, p.hist
	}
	runNATSProducers(b, runs, hists, payload)
}

// fillNATS publishes n records of payload and waits for all their acks.
func fillNATS(tb testing.TB, js jetstream.JetStream, n int, payload []byte) {
	tb.Helper()
	var next atomic.Int64
	p := &natsProducer{js: js, window: natsFillWindow, hist: natsHistogram()}
	require.NoError(tb, p.run(&next, int64(n), payload))
	require.EqualValues(tb, n, p.hist.TotalCount())
}

// replayNATS reads n records from the start of the stream with an ordered
// consumer and calls check on each value. It returns when the n-th arrives.
func replayNATS(tb testing.TB, js jetstream.JetStream, n int, check func(i int, value []byte)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, natsStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	require.NoError(tb, err)
	done := make(chan struct{})
	seen := 0
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if seen >= n {
			return
		}
		check(seen, msg.Data())
		seen++
		if seen == n {
			close(done)
		}
	}, jetstream.PullMaxMessages(natsReplayBatch))
	require.NoError(tb, err)
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		tb.Fatalf("replay: %d of %d records after %v", seen, n, ctx.Err())
	}
}

// BenchmarkNATSReplay reads a stream of b.N 100-byte records, filled just
// before (untimed), from its first record with an ordered consumer, the
// client library's fastest way to read a whole stream in order. Reports
// records/s.
func BenchmarkNATSReplay(b *testing.B) {
	b.Run(fmt.Sprintf("size=%dB", natsRecordSize), func(b *testing.B) {
		benchmarkNATSReplay(b, natsRecordSize)
	})
}

// benchmarkNATSReplay fills a stream with b.N records (untimed, sync=default:
// the fill's durability does not matter to a read), then times an ordered
// consumer reading all of them from the first.
func benchmarkNATSReplay(b *testing.B, size int) {
	s := startNATS(b, false)
	js := s.jetStream(b, natsFillWindow)
	s.createStream(b, js)
	payload := natsPayload(size)
	fillNATS(b, js, b.N, payload)

	var bad atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	replayNATS(b, js, b.N, func(_ int, value []byte) {
		if len(value) != size {
			bad.Add(1)
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	require.Zero(b, bad.Load(), "replayed values of the wrong size")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// TestNATSRoundTrip checks what the benchmarks rely on, under both sync
// settings: the server really runs with the SyncAlways it was given, every
// async publish from several producers is acknowledged, and the ordered
// consumer replays every record once with its bytes intact.
func TestNATSRoundTrip(t *testing.T) {
	for _, mode := range natsSyncs {
		t.Run("sync="+mode.name, func(t *testing.T) {
			s := startNATS(t, mode.syncAlways)
			cfg := s.srv.JetStreamConfig()
			require.NotNil(t, cfg, "JetStream must be enabled")
			assert.Equal(t, mode.syncAlways, cfg.SyncAlways)
			assert.True(t, strings.HasPrefix(cfg.StoreDir, s.dir), "store %q must be under %q", cfg.StoreDir, s.dir)

			const producers, records = 3, 600
			jss := make([]jetstream.JetStream, producers)
			for i := range jss {
				jss[i] = s.jetStream(t, mode.window)
			}
			s.createStream(t, jss[0])
			var (
				next atomic.Int64
				wg   sync.WaitGroup
				errs = make([]error, producers)
				acks atomic.Int64
			)
			for i, js := range jss {
				wg.Go(func() {
					p := &natsProducer{js: js, window: mode.window, hist: natsHistogram()}
					errs[i] = p.run(&next, records, natsPayload(natsRecordSize))
					acks.Add(p.hist.TotalCount())
				})
			}
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
			assert.EqualValues(t, records, acks.Load())

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := jss[0].Stream(ctx, natsStream)
			require.NoError(t, err)
			info, err := stream.Info(ctx)
			require.NoError(t, err)
			assert.EqualValues(t, records, info.State.Msgs)

			want := natsPayload(natsRecordSize)
			var mismatched []int
			replayNATS(t, jss[1], records, func(i int, value []byte) {
				if !bytes.Equal(value, want) {
					mismatched = append(mismatched, i)
				}
			})
			assert.Empty(t, mismatched)
		})
	}
}

// TestNATSAtomicBatchRoundTrip checks that the atomic batches of
// BenchmarkNATSAtomicBatch are accepted and committed: two producers, 250
// records in batches of 100 (the last one short), every batch acknowledged,
// every record stored once and replayed intact; and that a stream without
// AllowAtomicPublish refuses them, so the benchmark cannot silently measure
// rejected batches.
func TestNATSAtomicBatchRoundTrip(t *testing.T) {
	s := startNATS(t, true)
	const producers, records = 2, 250
	ps := make([]*natsBatchProducer, producers)
	for i := range ps {
		ps[i] = &natsBatchProducer{id: i, js: s.jetStream(t, natsBatchWindow), batch: natsBatch, window: natsBatchWindow, hist: natsHistogram()}
	}
	s.createStreamWith(t, ps[0].js, true)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, producers)
	)
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.run(&next, records, natsPayload(natsRecordSize)) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	assert.EqualValues(t, 3, ps[0].hist.TotalCount()+ps[1].hist.TotalCount(), "three batches acknowledged")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := ps[0].js.Stream(ctx, natsStream)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, records, info.State.Msgs)

	want := natsPayload(natsRecordSize)
	var mismatched []int
	replayNATS(t, ps[1].js, records, func(i int, value []byte) {
		if !bytes.Equal(value, want) {
			mismatched = append(mismatched, i)
		}
	})
	assert.Empty(t, mismatched)

	plain := startNATS(t, true)
	p := &natsBatchProducer{js: plain.jetStream(t, 1), batch: 10, window: 1, hist: natsHistogram()}
	plain.createStream(t, p.js)
	var n atomic.Int64
	assert.Error(t, p.run(&n, 10, natsPayload(natsRecordSize)), "a stream without AllowAtomicPublish must refuse the batch")
}

// natsRun is one producer's loop: publish until next reaches n, recording
// each acknowledgement's latency in the producer's histogram.
type natsRun func(next *atomic.Int64, n int64, payload []byte) error

// runNATSProducers times b.N records published by the producers' runs in
// parallel, reports records/s, p50 and p99, and returns the merged
// latency histogram.
func runNATSProducers(b *testing.B, runs []natsRun, hists []*hdrhistogram.Histogram, payload []byte) *hdrhistogram.Histogram {
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, len(runs))
	)
	for i, run := range runs {
		wg.Go(func() { errs[i] = run(&next, int64(b.N), payload) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	require.NoError(b, errors.Join(errs...))

	total := natsHistogram()
	for _, h := range hists {
		total.Merge(h)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(total.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(total.ValueAtQuantile(99)), "p99-ns")
	return total
}
