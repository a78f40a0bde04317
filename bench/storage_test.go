package bench_test

// storage.Store against the obvious alternatives, in the same run, with the
// same record size (100-byte values), the same append size (storeBatch
// records per append) and the same pipelining (every producer keeps up to
// storeInflight appends in flight). Every contender fsyncs before it
// acknowledges.
//
// The peers are write-ahead logs without a pipeline of their own, so they
// get the group commit a server would put in front of them: producers send
// their appends on one channel; one committer goroutine takes the first,
// drains whatever else is queued (up to storeMaxGroup appends), writes all of
// their records as one batch with one fsync, and acknowledges each append.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/tidwall/wal"
)

const (
	storeBatch    = 100 // records per append
	storeInflight = 32  // appends in flight per producer
	storeMaxGroup = 1024
	storeValueLen = 100
)

// storeContender is one store under test.
type storeContender interface {
	// newSlot returns a reusable append of batch records of size bytes.
	newSlot(batch, size int) storeSlot
	close() error
}

// storeSlot is one reusable in-flight append.
type storeSlot interface {
	submit() error
	wait() error
}

var storeImpls = []struct {
	name string
	open func(b *testing.B) storeContender
}{
	{"badbatch", openBadBatchContender},
	{"tidwall", openTidwallContender},
	{"pebble", openPebbleContender},
	{"raftwal", openRaftWALContender},
}

// storeMaxRate remembers each contender's unpaced throughput (records/s)
// for the paced latency run of the same process.
var storeMaxRate sync.Map // "impl/producers" -> float64

// BenchmarkStoreAppend: one op is one durable 100-byte record. Each
// producer appends storeBatch (100) records per append and keeps up to
// storeInflight (32) appends in flight; an append counts when its
// acknowledgement (after fsync) arrives. impl=badbatch is storage.Store
// with its defaults (SyncAlways, one fsync per ring batch) via AppendAsync;
// impl=tidwall is tidwall/wal v1.2.1 WriteBatch (fsync on, NoCopy); impl=
// pebble is Pebble v2 used as a log (key = 8-byte index) with one
// Commit(pebble.Sync) per group; impl=raftwal is hashicorp/raft-wal v0.4.0
// StoreLogs per group. The three peers sit behind the channel-fed
// group-commit loop described at the top of bench/storage_test.go.
// Reports records/s and the append latency (submit to acknowledgement)
// p50/p99/p99.9 in ns.
func BenchmarkStoreAppend(b *testing.B) {
	for _, impl := range storeImpls {
		producerCounts := []int{4}
		if impl.name == "badbatch" || impl.name == "pebble" {
			producerCounts = []int{1, 2, 4, 8, 16}
		}
		for _, producers := range producerCounts {
			name := fmt.Sprintf("impl=%s/producers=%d/size=%dB", impl.name, producers, storeValueLen)
			b.Run(name, func(b *testing.B) {
				c := impl.open(b)
				defer func() {
					if err := c.close(); err != nil {
						b.Error(err)
					}
				}()
				rate, hist := storeRun(b, c, producers, b.N, 0)
				storeMaxRate.Store(fmt.Sprintf("%s/%d", impl.name, producers), rate)
				storeReport(b, rate, hist)
			})
		}
	}
}

// BenchmarkStoreAppendLatency is BenchmarkStoreAppend's workload paced
// open loop. load=half runs at half of the contender's own maximum
// throughput, as measured by BenchmarkStoreAppend earlier in the same run
// (or by a short calibration run when run alone); load=1Mrps runs every
// contender at the same 1,000,000 records/s. Producers send on schedule
// whatever the acknowledgements do (up to 64 appends in flight each), and
// an append's latency runs from its scheduled send time to its
// acknowledgement, so that a stall is charged to every append it delays.
// One op is one record.
func BenchmarkStoreAppendLatency(b *testing.B) {
	const producers = 4
	for _, load := range []string{"half", "1Mrps"} {
		for _, impl := range storeImpls {
			name := fmt.Sprintf("impl=%s/producers=%d/size=%dB/load=%s", impl.name, producers, storeValueLen, load)
			b.Run(name, func(b *testing.B) {
				c := impl.open(b)
				defer func() {
					if err := c.close(); err != nil {
						b.Error(err)
					}
				}()
				pace := 1e6
				if load == "half" {
					key := fmt.Sprintf("%s/%d", impl.name, producers)
					max, ok := storeMaxRate.Load(key)
					if !ok {
						rate, _ := storeRun(b, c, producers, 200*storeBatch*producers, 0)
						storeMaxRate.Store(key, rate)
						max = rate
					}
					pace = max.(float64) / 2
				}
				b.ResetTimer()
				rate, hist := storeRun(b, c, producers, b.N, pace)
				storeReport(b, rate, hist)
				b.ReportMetric(pace, "target-records/s")
			})
		}
	}
}

func storeReport(b *testing.B, rate float64, hist *hdrhistogram.Histogram) {
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(float64(hist.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(hist.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(hist.ValueAtQuantile(99.9)), "p999-ns")
}

// storeRun appends at least n records from producers goroutines and
// returns the records/s and the per-append latency histogram. pace 0 runs
// closed loop (as fast as acknowledgements allow); pace > 0 schedules the
// sends at pace records/s in total. Each producer has a companion goroutine
// that waits for its appends in submission order (acknowledgements arrive
// in that order) and records each latency the moment it is acknowledged.
func storeRun(b *testing.B, c storeContender, producers, n int, pace float64) (float64, *hdrhistogram.Histogram) {
	appends := max(1, (n+producers*storeBatch-1)/(producers*storeBatch))
	inflight := storeInflight
	if pace > 0 {
		inflight = 64
	}
	type timedSlot struct {
		storeSlot
		sent time.Time
	}
	hists := make([]*hdrhistogram.Histogram, producers)
	slots := make([][]timedSlot, producers)
	for p := range producers {
		hists[p] = hdrhistogram.New(1_000, 60_000_000_000, 3)
		slots[p] = make([]timedSlot, inflight)
		for i := range slots[p] {
			slots[p][i].storeSlot = c.newSlot(storeBatch, storeValueLen)
		}
	}
	var interval time.Duration
	if pace > 0 {
		interval = time.Duration(float64(time.Second) * float64(producers*storeBatch) / pace)
	}
	b.SetBytes(storeValueLen)
	b.ReportAllocs()
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for p := range producers {
		free := make(chan int, inflight)
		sent := make(chan int, inflight)
		for i := range inflight {
			free <- i
		}
		wg.Go(func() { // the waiter
			h := hists[p]
			for i := range sent {
				s := &slots[p][i]
				if err := s.wait(); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				_ = h.RecordValue(time.Since(s.sent).Nanoseconds())
				free <- i
			}
		})
		wg.Go(func() { // the producer
			defer close(sent)
			for i := range appends {
				k := <-free
				s := &slots[p][k]
				s.sent = time.Now()
				if interval > 0 {
					// Stagger the producers; send at the scheduled time.
					s.sent = start.Add(time.Duration(i)*interval + time.Duration(p)*interval/time.Duration(producers))
					if d := time.Until(s.sent); d > 0 {
						time.Sleep(d)
					}
				}
				if failed.Load() != nil {
					return
				}
				if err := s.submit(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				sent <- k
			}
		})
	}
	elapsed, total := finishProducers(b, &wg, start, &failed, hists)
	return float64(appends*producers*storeBatch) / elapsed.Seconds(), total
}

// finishProducers waits for the producers started at start, stops the
// timer, fails b with the first producer error, and returns the elapsed
// time and the producers' latency histograms merged.
func finishProducers(b *testing.B, wg *sync.WaitGroup, start time.Time, failed *atomic.Pointer[error], hists []*hdrhistogram.Histogram) (time.Duration, *hdrhistogram.Histogram) {
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	total := hists[0]
	for _, h := range hists[1:] {
		total.Merge(h)
	}
	return elapsed, total
}

// --- impl=badbatch ---

type badbatchContender struct{ s *storage.Store }

func openBadBatchContender(b *testing.B) storeContender {
	s, err := storage.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return &badbatchContender{s: s}
}

func (c *badbatchContender) close() error { return c.s.Close() }

func (c *badbatchContender) newSlot(batch, size int) storeSlot {
	recs := make([]storage.Record, batch)
	for i := range recs {
		recs[i].Value = storePayload(size, i)
	}
	return &badbatchSlot{s: c.s, recs: recs}
}

type badbatchSlot struct {
	s    *storage.Store
	recs []storage.Record
	f    *storage.AppendFuture
}

func (s *badbatchSlot) submit() error {
	f, err := s.s.AppendAsync("bench", storage.AppendOptions{}, s.recs...)
	s.f = f
	return err
}

func (s *badbatchSlot) wait() error {
	_, err := s.f.Wait(context.Background())
	s.f.Release()
	s.f = nil
	return err
}

// --- the group commit in front of the peers ---

// groupRequest is one append waiting for the committer.
type groupRequest struct {
	recs [][]byte
	done chan error
}

// groupCommitter drains queued appends into one write + fsync.
type groupCommitter struct {
	ch    chan *groupRequest
	write func(reqs []*groupRequest) error
	wg    sync.WaitGroup
	// next is the log index of the next record (the peers are logs with
	// explicit indexes).
	next uint64
}

func newGroupCommitter(write func(reqs []*groupRequest) error) *groupCommitter {
	g := &groupCommitter{ch: make(chan *groupRequest, 4096), write: write, next: 1}
	g.wg.Go(g.loop)
	return g
}

func (g *groupCommitter) loop() {
	reqs := make([]*groupRequest, 0, storeMaxGroup)
	for first := range g.ch {
		reqs = append(reqs[:0], first)
	drain:
		for len(reqs) < storeMaxGroup {
			select {
			case r, ok := <-g.ch:
				if !ok {
					break drain
				}
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		err := g.write(reqs)
		for _, r := range reqs {
			r.done <- err
		}
	}
}

func (g *groupCommitter) stop() {
	close(g.ch)
	g.wg.Wait()
}

type peerSlot struct {
	g   *groupCommitter
	req groupRequest
}

func (g *groupCommitter) newSlot(batch, size int) storeSlot {
	s := &peerSlot{g: g, req: groupRequest{recs: make([][]byte, batch), done: make(chan error, 1)}}
	for i := range s.req.recs {
		s.req.recs[i] = storePayload(size, i)
	}
	return s
}

func (s *peerSlot) submit() error { s.g.ch <- &s.req; return nil }
func (s *peerSlot) wait() error   { return <-s.req.done }

// --- impl=tidwall ---

type tidwallContender struct {
	*groupCommitter
	log *wal.Log
}

func openTidwallContender(b *testing.B) storeContender {
	opts := *wal.DefaultOptions // wal.Open mutates its options
	opts.NoSync = false
	opts.NoCopy = true
	l, err := wal.Open(b.TempDir(), &opts)
	if err != nil {
		b.Fatal(err)
	}
	c := &tidwallContender{log: l}
	var batch wal.Batch
	c.groupCommitter = newGroupCommitter(func(reqs []*groupRequest) error {
		batch.Clear()
		for _, r := range reqs {
			for _, rec := range r.recs {
				batch.Write(c.next, rec)
				c.next++
			}
		}
		return l.WriteBatch(&batch) // fsyncs (NoSync false)
	})
	return c
}

func (c *tidwallContender) close() error {
	c.stop()
	return c.log.Close()
}

// --- impl=pebble ---

type pebbleContender struct {
	*groupCommitter
	db *pebble.DB
}

type quietPebbleLogger struct{}

func (quietPebbleLogger) Infof(string, ...any)         {}
func (quietPebbleLogger) Errorf(string, ...any)        {}
func (quietPebbleLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func openPebbleContender(b *testing.B) storeContender {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietPebbleLogger{},
	})
	if err != nil {
		b.Fatal(err)
	}
	c := &pebbleContender{db: db}
	batch := db.NewBatch()
	var key [8]byte
	c.groupCommitter = newGroupCommitter(func(reqs []*groupRequest) error {
		batch.Reset()
		for _, r := range reqs {
			for _, rec := range r.recs {
				binary.BigEndian.PutUint64(key[:], c.next)
				c.next++
				if err := batch.Set(key[:], rec, nil); err != nil {
					return err
				}
			}
		}
		return batch.Commit(pebble.Sync)
	})
	return c
}

func (c *pebbleContender) close() error {
	c.stop()
	return c.db.Close()
}

// --- impl=raftwal ---

type raftWALContender struct {
	*groupCommitter
	w *raftwal.WAL
}

func openRaftWALContender(b *testing.B) storeContender {
	w, err := raftwal.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := &raftWALContender{w: w}
	var logs []*raft.Log
	var arena []raft.Log
	c.groupCommitter = newGroupCommitter(func(reqs []*groupRequest) error {
		n := 0
		for _, r := range reqs {
			n += len(r.recs)
		}
		if cap(arena) < n {
			arena = make([]raft.Log, n)
			logs = make([]*raft.Log, n)
		}
		arena, logs = arena[:n], logs[:n]
		i := 0
		for _, r := range reqs {
			for _, rec := range r.recs {
				arena[i] = raft.Log{Index: c.next, Term: 1, Type: raft.LogCommand, Data: rec}
				logs[i] = &arena[i]
				c.next++
				i++
			}
		}
		return w.StoreLogs(logs) // fsyncs
	})
	return c
}

func (c *raftWALContender) close() error {
	c.stop()
	return c.w.Close()
}

// storePayload is a distinct 100-byte value per record position.
func storePayload(size, i int) []byte {
	v := make([]byte, size)
	for j := range v {
		v[j] = byte('a' + (i+j)%26)
	}
	return v
}

// BenchmarkStoreReplay: one op is one 100-byte record read back in pages
// of 1000, from the first record of a stream of 200,000 records appended
// just before (so the journal is in the page cache); the reader wraps
// around at the end. impl=badbatch reads with storage.Store.Read (every
// page's records are new memory the caller owns); impl=badbatch-readinto
// with storage.Store.ReadInto and one reused ReadBuffer (no memory per
// record). Reports records/s.
func BenchmarkStoreReplay(b *testing.B) {
	for _, impl := range []string{"badbatch", "badbatch-readinto"} {
		b.Run(fmt.Sprintf("impl=%s/size=%dB", impl, storeValueLen), func(b *testing.B) {
			benchmarkStoreReplay(b, impl == "badbatch-readinto")
		})
	}
}

// benchmarkStoreReplay fills a store with 200,000 records of one stream
// and reads b.N records from it in pages of 1000, wrapping around: with
// Store.Read (each page's records are the caller's) or, with into, with
// Store.ReadInto and one reused ReadBuffer.
func benchmarkStoreReplay(b *testing.B, into bool) {
	s, err := storage.Open(b.TempDir(), &storage.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	}()
	const total = 200_000
	recs := make([]storage.Record, 1000)
	for i := range recs {
		recs[i].Value = storePayload(storeValueLen, i)
	}
	ctx := context.Background()
	for range total / len(recs) {
		if _, err := s.Append(ctx, "replay", recs...); err != nil {
			b.Fatal(err)
		}
	}
	var buf storage.ReadBuffer
	b.SetBytes(storeValueLen)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	from := uint64(0)
	for read := 0; read < b.N; {
		n := min(1000, b.N-read)
		var got int
		if into {
			if err := s.ReadInto(ctx, "replay", from, n, &buf); err != nil {
				b.Fatal(err)
			}
			got = len(buf.Records)
		} else {
			page, err := s.Read(ctx, "replay", from, n)
			if err != nil {
				b.Fatal(err)
			}
			got = len(page)
		}
		read += got
		from += uint64(got)
		if from >= total {
			from = 0
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
