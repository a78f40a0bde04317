package bench_test

// How storage.Store's costs grow (issue 8): with the record size, the
// number of streams, the log's size at Open, the log's size under a random
// first read, and the log's size under a full replay (memory). Every
// append here goes through the real storage.Store with its defaults
// (SyncAlways: every acknowledged append is fsynced), except where a log
// is only built as a fixture (SyncNone, then Close).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/badbatch/badbatch/bench/internal/benchkit"
	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
)

// scaleProducers and scaleInflight are BenchmarkScaleRecordSize's load:
// the same as BenchmarkStoreAppend/producers=4.
const (
	scaleProducers = 4
	scaleInflight  = storeInflight
	// scaleAppendBytes bounds one append of BenchmarkScaleRecordSize: 100
	// records per append (storeBatch) up to 4 KiB records, fewer above so
	// that one append stays about 1 MiB (1 MiB records: one per append).
	scaleAppendBytes = 1 << 20
)

// BenchmarkScaleRecordSize: one op is one durable record of size bytes,
// appended with storage.Store.AppendAsync (defaults: SyncAlways) by 4
// producers that keep up to 32 appends in flight each. An append carries
// 100 records (as BenchmarkStoreAppend) when that is at most 1 MiB, else
// 1 MiB / size records (64KiB: 16, 1MiB: 1); records/append is reported.
// storeRun is not reused because it fixes 100 records per append, which at
// 1 MiB records exceeds the store's MaxBatchBytes (32 MiB). Reports
// records/s, MB/s (record bytes) and the append latency (submit to
// acknowledgement) p50/p99 in ns.
func BenchmarkScaleRecordSize(b *testing.B) {
	for _, size := range []int{16, 256, 4 << 10, 64 << 10, 1 << 20} {
		b.Run("size="+benchkit.SizeName(size), func(b *testing.B) {
			batch := max(1, min(storeBatch, scaleAppendBytes/size))
			c := openBadBatchContender(b)
			defer func() {
				if err := c.close(); err != nil {
					b.Error(err)
				}
			}()
			s := c.(*badbatchContender).s
			recs := make([]storage.Record, batch) // shared by every slot: the store does not modify them
			for i := range recs {
				recs[i].Value = storePayload(size, i)
			}
			rate, hist := scaleRun(b, scaleProducers, b.N, batch, func() (*storage.AppendFuture, error) {
				return s.AppendAsync("bench", storage.AppendOptions{}, recs...)
			})
			b.SetBytes(int64(size))
			storeReport(b, rate, hist)
			b.ReportMetric(float64(batch), "records/append")
		})
	}
}

// scaleRun appends at least n records from producers goroutines, batch
// records per append, each producer keeping up to scaleInflight appends in
// flight, and returns records/s and the per-append latency histogram. It is
// storeRun's closed loop with the append size as a parameter: a companion
// goroutine per producer waits for its appends in submission order and
// records each latency when it is acknowledged.
func scaleRun(b *testing.B, producers, n, batch int, submit func() (*storage.AppendFuture, error)) (float64, *hdrhistogram.Histogram) {
	appends := max(1, (n+producers*batch-1)/(producers*batch))
	type pending struct {
		f    *storage.AppendFuture
		sent time.Time
	}
	hists := make([]*hdrhistogram.Histogram, producers)
	for p := range hists {
		hists[p] = hdrhistogram.New(1_000, 60_000_000_000, 3)
	}
	b.ReportAllocs()
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for p := range producers {
		sent := make(chan pending, scaleInflight-2)
		wg.Go(func() { // the waiter
			for a := range sent {
				if _, err := a.f.Wait(context.Background()); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				a.f.Release()
				_ = hists[p].RecordValue(time.Since(a.sent).Nanoseconds())
			}
		})
		wg.Go(func() { // the producer: the channel's capacity + the one being waited for bound the appends in flight
			defer close(sent)
			for range appends {
				if failed.Load() != nil {
					return
				}
				t := time.Now()
				f, err := submit()
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				sent <- pending{f, t}
			}
		})
	}
	elapsed, total := finishProducers(b, &wg, start, &failed, hists)
	return float64(appends*producers*batch) / elapsed.Seconds(), total
}

// BenchmarkScaleStreams: BenchmarkStoreAppend's load (storeRun: 4
// producers, 100 records of 100 bytes per append, 32 appends in flight
// each, SyncAlways) with append i going to stream i mod N, so the first N
// appends create the N streams (nothing is pre-created). One op is one
// durable record. A short run touches fewer streams than N: streams=100000
// needs 10 million records to touch each stream once; streams-touched
// reports how many the run created. Reports records/s and latency p50/p99.
func BenchmarkScaleStreams(b *testing.B) {
	for _, n := range []int{1, 100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			c := &streamsContender{badbatchContender: openBadBatchContender(b).(*badbatchContender), names: make([]string, n)}
			for i := range c.names {
				c.names[i] = fmt.Sprintf("stream-%06d", i)
			}
			defer func() {
				if err := c.close(); err != nil {
					b.Error(err)
				}
			}()
			rate, hist := storeRun(b, c, scaleProducers, b.N, 0)
			storeReport(b, rate, hist)
			b.ReportMetric(float64(min(c.next.Load(), uint64(n))), "streams-touched")
		})
	}
}

// streamsContender is impl=badbatch whose appends rotate over names.
type streamsContender struct {
	*badbatchContender
	names []string
	next  atomic.Uint64
}

func (c *streamsContender) newSlot(batch, size int) storeSlot {
	return &streamsSlot{badbatchSlot: c.badbatchContender.newSlot(batch, size).(*badbatchSlot), c: c}
}

type streamsSlot struct {
	*badbatchSlot
	c *streamsContender
}

func (s *streamsSlot) submit() error {
	i := s.c.next.Add(1) - 1
	f, err := s.s.AppendAsync(s.c.names[i%uint64(len(s.c.names))], storage.AppendOptions{}, s.recs...)
	s.f = f
	return err
}

// scaleLogSizes are the log sizes of BenchmarkScaleOpen and
// BenchmarkScaleRSS: 100 MiB and 1 GiB, and 4 GiB with
// BADBATCH_BENCH_BIG=1.
func scaleLogSizes() []int64 {
	sizes := []int64{100 << 20, 1 << 30}
	if os.Getenv("BADBATCH_BENCH_BIG") == "1" {
		sizes = append(sizes, 4<<30)
	}
	return sizes
}

// scaleStream is the one stream of the logs scaleBuildLog writes.
const scaleStream = "log"

// scaleQuietOptions is storage's defaults with the log discarded.
func scaleQuietOptions() *storage.Options {
	o := storage.DefaultOptions()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

// scaleBuildLog writes records of 100 B to 1 KiB (uniform) to one stream
// of a store in dir until their values total at least size bytes, in
// appends of 1000 records with 8 in flight under SyncNone (a fixture, not
// a measurement), then closes the store, which flushes the index. It
// returns the number of records.
func scaleBuildLog(tb testing.TB, dir string, size int64) uint64 {
	tb.Helper()
	o := scaleQuietOptions()
	o.SyncPolicy = journal.SyncNone
	s, err := storage.Open(dir, o)
	if err != nil {
		tb.Fatal(err)
	}
	const per, inflight = 1000, 8
	rng := rand.New(rand.NewPCG(uint64(size), 8))
	batches := make([][]storage.Record, inflight)
	for i := range batches {
		batches[i] = make([]storage.Record, per)
		for j := range batches[i] {
			batches[i][j].Value = storePayload(100+rng.IntN(1024-100+1), i*per+j)
		}
	}
	futures := make([]*storage.AppendFuture, inflight)
	var written int64
	var records uint64
	wait := func(k int) {
		if futures[k] == nil {
			return
		}
		res, err := futures[k].Wait(context.Background())
		futures[k].Release()
		futures[k] = nil
		if err != nil {
			tb.Fatal(err)
		}
		records += uint64(res.Count)
	}
	for i := 0; written < size; i++ {
		k := i % inflight
		wait(k)
		f, err := s.AppendAsync(scaleStream, storage.AppendOptions{}, batches[k]...)
		if err != nil {
			tb.Fatal(err)
		}
		futures[k] = f
		for _, r := range batches[k] {
			written += int64(len(r.Value))
		}
	}
	for k := range futures {
		wait(k)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return records
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkScaleOpen: a log of log=SIZE of values (100 B-1 KiB records,
// one stream) is built once per round (scaleBuildLog: SyncNone, then
// Close, which flushes the index). index=kept: one op is storage.Open of
// that directory followed by Close (the normal restart: the index is
// current). index=deleted: one op deletes the index directory (untimed)
// and then opens and closes the store, which rebuilds the index by
// re-applying the whole journal (the catch-up case; the journal is in the
// page cache, as after a process crash). Reports ms/open, and s/GiB of
// journal for index=deleted. Open defaults (SyncAlways).
func BenchmarkScaleOpen(b *testing.B) {
	for _, size := range scaleLogSizes() {
		dir := b.TempDir()
		records := scaleBuildLog(b, dir, size)
		journalBytes := dirBytes(b, filepath.Join(dir, "journal"))
		for _, index := range []string{"kept", "deleted"} {
			b.Run(fmt.Sprintf("log=%s/index=%s", benchkit.SizeName(int(size)), index), func(b *testing.B) {
				o := scaleQuietOptions()
				b.ReportAllocs()
				b.ResetTimer()
				var took time.Duration
				for range b.N {
					if index == "deleted" {
						b.StopTimer()
						if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					t0 := time.Now()
					s, err := storage.Open(dir, o)
					if err != nil {
						b.Fatal(err)
					}
					err = s.Close()
					took += time.Since(t0)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				per := took / time.Duration(b.N)
				b.ReportMetric(float64(per.Microseconds())/1000, "ms/open")
				if index == "deleted" {
					b.ReportMetric(per.Seconds()/(float64(journalBytes)/(1<<30)), "s/GiB")
				}
				b.ReportMetric(float64(journalBytes)/(1<<20), "journal-MiB")
				// The store must still hold every record.
				s, err := storage.Open(dir, o)
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					if err := s.Close(); err != nil {
						b.Error(err)
					}
				}()
				last, err := s.Read(context.Background(), scaleStream, records-1, 1)
				if err != nil || len(last) != 1 {
					b.Fatalf("after reopen, read record %d: %d records, %v", records-1, len(last), err)
				}
			})
		}
	}
}

// memSnapshot is the process's memory as the kernel and the Go runtime
// count it.
type memSnapshot struct {
	rss, rssAnon, rssFile int64 // /proc/self/status VmRSS, RssAnon, RssFile (RssShmem left out)
	goTotal               int64 // runtime/metrics /memory/classes/total:bytes
}

func readMem(tb testing.TB) memSnapshot {
	tb.Helper()
	// A GC that also returns freed pages to the OS: without it RssAnon
	// depends on when the scavenger last ran (the log's build leaves
	// hundreds of MiB freed but still mapped).
	debug.FreeOSMemory()
	var m memSnapshot
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(k) {
		case "VmRSS":
			dst = &m.rss
		case "RssAnon":
			dst = &m.rssAnon
		case "RssFile":
			dst = &m.rssFile
		default:
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
		if err != nil {
			tb.Fatalf("/proc/self/status %s: %v", k, err)
		}
		*dst = kb << 10
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if m.rss == 0 {
		tb.Fatal("/proc/self/status: no VmRSS")
	}
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	m.goTotal = int64(sample[0].Value.Uint64())
	return m
}

// scaleReplay reads the whole stream back through Store.Read in pages of
// 1000 and returns the records and value bytes read.
func scaleReplay(tb testing.TB, s *storage.Store) (uint64, int64) {
	var n uint64
	var bytes int64
	for {
		page, err := s.Read(context.Background(), scaleStream, n, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return n, bytes
		}
		for i := range page {
			if page[i].Offset != n {
				tb.Fatalf("record %d has offset %d", n, page[i].Offset)
			}
			bytes += int64(len(page[i].Value))
			n++
		}
	}
}

// BenchmarkScaleRSS: a log of log=SIZE (scaleBuildLog) is opened (store
// defaults) and one op replays it whole, from offset 0, through
// storage.Store.Read in pages of 1000. Reported, in MiB, after
// debug.FreeOSMemory each time: what Open added (rss-open-growth, of which
// rss-file-open-growth: from before Open to just after), what the replays
// added (rss-growth, split into rss-anon-growth: heap and stacks, and
// rss-file-growth: file pages mapped into the process), RssFile after the
// replays (rss-file-MiB) and go-total-growth (runtime/metrics
// /memory/classes/total:bytes over the replays). RSS counts file pages
// mapped with mmap and resident: the journal maps its sealed segments, and
// every page touched counts in RssFile while it stays mapped, although it
// is page cache the kernel can reclaim without swapping.
func BenchmarkScaleRSS(b *testing.B) {
	for _, size := range scaleLogSizes() {
		dir := b.TempDir()
		records := scaleBuildLog(b, dir, size)
		b.Run("log="+benchkit.SizeName(int(size)), func(b *testing.B) {
			preOpen := readMem(b)
			s, err := storage.Open(dir, scaleQuietOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			}()
			before := readMem(b)
			b.ReportAllocs()
			b.ResetTimer()
			var valueBytes int64
			for range b.N {
				n, vb := scaleReplay(b, s)
				if n != records {
					b.Fatalf("replayed %d records, want %d", n, records)
				}
				valueBytes = vb
			}
			b.StopTimer()
			b.SetBytes(valueBytes)
			after := readMem(b)
			mib := func(d int64) float64 { return float64(d) / (1 << 20) }
			b.ReportMetric(mib(after.rss-before.rss), "rss-growth-MiB")
			b.ReportMetric(mib(after.rssAnon-before.rssAnon), "rss-anon-growth-MiB")
			b.ReportMetric(mib(after.rssFile-before.rssFile), "rss-file-growth-MiB")
			b.ReportMetric(mib(after.goTotal-before.goTotal), "go-total-growth-MiB")
			b.ReportMetric(mib(before.rss-preOpen.rss), "rss-open-growth-MiB")
			b.ReportMetric(mib(before.rssFile-preOpen.rssFile), "rss-file-open-growth-MiB")
			b.ReportMetric(mib(after.rssFile), "rss-file-MiB")
			b.ReportMetric(mib(dirBytes(b, filepath.Join(dir, "journal"))), "journal-MiB")
		})
	}
}

// TestScaleFixtures checks the scaling benchmarks' fixtures: sizeName
// spells the matrix as documented, scaleBuildLog writes at least the bytes
// asked in records that a replay returns in order, and readMem reads a
// non-zero RSS.
func TestScaleFixtures(t *testing.T) {
	for n, want := range map[int]string{16: "16B", 256: "256B", 4 << 10: "4KiB", 64 << 10: "64KiB", 1 << 20: "1MiB", 100 << 20: "100MiB", 1 << 30: "1GiB", 1000: "1000B"} {
		if got := benchkit.SizeName(n); got != want {
			t.Errorf("benchkit.SizeName(%d) = %q, want %q", n, got, want)
		}
	}
	dir := t.TempDir()
	const size = 2 << 20
	records := scaleBuildLog(t, dir, size)
	s, err := storage.Open(dir, scaleQuietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	n, vb := scaleReplay(t, s)
	if n != records || vb < size {
		t.Fatalf("replayed %d records of %d value bytes; built %d records, want >= %d bytes", n, vb, records, size)
	}
	if avg := vb / int64(n); avg < 100 || avg > 1024 {
		t.Fatalf("average record %d bytes, want 100-1024", avg)
	}
	if m := readMem(t); m.rssAnon+m.rssFile > m.rss+(1<<20) || m.goTotal <= 0 {
		t.Fatalf("implausible memory snapshot %+v", m)
	}
}
