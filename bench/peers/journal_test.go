package peers_test

// A compact copy of the journal comparison's harness in bench/journal_test.go
// (a _test file of the main module, which this module cannot import): the
// same matrix, the same records, the same interleaving and the same metric
// names, so that a peer measured here lines up with the contenders there.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
)

var (
	journalBenchBatches = []int{1, 16, 256}
	journalBenchSizes   = []int{100, 1 << 10, 64 << 10}
)

// journalAppender is one contender: append makes one batch of the records
// it was opened with durable. It is used by one goroutine.
type journalAppender interface {
	append() error
	fsyncs() uint64 // fsyncs made so far, as the contender counts them
	close() error
}

// journalContender names a contender in the metrics (MB/s-<name>). ours
// marks BadBatch's journal, the contender every ratio is taken against.
type journalContender struct {
	name string
	ours bool
}

// journalOurs is BadBatch's journal as shipped (openJournalAppender).
var journalOurs = journalContender{name: "journal", ours: true}

// journalMatrix runs f once per batch={1,16,256}/size={100B,1KiB,64KiB}.
func journalMatrix(b *testing.B, f func(b *testing.B, recs [][]byte)) {
	for _, batch := range journalBenchBatches {
		for _, size := range journalBenchSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%s", batch, journalBenchSizeName(size)), func(b *testing.B) {
				recs := make([][]byte, batch)
				for i := range recs {
					recs[i] = journalBenchRecord(size, i)
				}
				f(b, recs)
			})
		}
	}
}

// benchmarkJournalAppend times b.N batches of one contender, one fsync per
// batch, and reports MB/s of record bytes, records/s and fsyncs/s, as
// bench's BenchmarkJournalAppend does.
func benchmarkJournalAppend(b *testing.B, a journalAppender, recs [][]byte) {
	b.SetBytes(int64(len(recs) * len(recs[0])))
	b.ReportAllocs()
	syncs := a.fsyncs()
	b.ResetTimer()
	for range b.N {
		require.NoError(b, a.append())
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*len(recs))/secs, "records/s")
	b.ReportMetric(float64(a.fsyncs()-syncs)/secs, "fsyncs/s")
}

// benchmarkJournalInterleaved is bench's benchmarkInterleaved for the given
// contenders, already open: each b.N iteration is one round in which every
// contender, in a shuffled order, makes perSlice batches durable (about
// 256 KiB, at least 1 and at most 8 batches). It reports MB/s-<name> per
// contender over all its slices and journal/best-peer: per peer, the median
// over rounds of its slice time over the journal's in the same round
// (> 1: the journal was faster), the lowest over the peers. The caller
// closes the appenders.
func benchmarkJournalInterleaved(b *testing.B, cs []journalContender, as []journalAppender, recs [][]byte) {
	batch, size := len(recs), len(recs[0])
	perSlice := min(max((256<<10)/(batch*size), 1), 8)
	rounds := make([][]time.Duration, len(as)) // rounds[i][r]: contender i's slice in round r
	rng := rand.New(rand.NewPCG(uint64(batch), uint64(size)))
	order := make([]int, len(as))
	for i := range order {
		order[i] = i
	}
	b.SetBytes(int64(len(as) * perSlice * batch * size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rng.Shuffle(len(order), func(i, k int) { order[i], order[k] = order[k], order[i] })
		for _, i := range order {
			start := time.Now()
			for range perSlice {
				require.NoError(b, as[i].append())
			}
			rounds[i] = append(rounds[i], time.Since(start))
		}
	}
	b.StopTimer()
	ours := slices.IndexFunc(cs, func(c journalContender) bool { return c.ours })
	require.GreaterOrEqual(b, ours, 0, "the journal must be among the contenders")
	bytesPerImpl := float64(b.N * perSlice * batch * size)
	vsPeer := math.Inf(1)
	for i, c := range cs {
		var busy time.Duration
		for _, d := range rounds[i] {
			busy += d
		}
		b.ReportMetric(bytesPerImpl/busy.Seconds()/1e6, "MB/s-"+c.name)
		if c.ours {
			continue
		}
		r := make([]float64, b.N)
		for k := range r {
			r[k] = float64(rounds[i][k]) / float64(rounds[ours][k])
		}
		vsPeer = min(vsPeer, median(r))
	}
	b.ReportMetric(vsPeer, "journal/best-peer")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	switch {
	case len(s) == 0:
		return 0
	case len(s)%2 == 1:
		return s[len(s)/2]
	default:
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
}

// journalBenchRecord is a distinct, incompressible record (the same bytes as
// bench's).
func journalBenchRecord(size, i int) []byte {
	v := make([]byte, size)
	x := uint32(2463534242 + i)
	for k := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[k] = byte(x)
	}
	return v
}

func journalBenchSizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// --- BadBatch's journal ---

// openJournalAppender opens the journal with its defaults: SyncAlways, one
// pwrite and one fdatasync per batch, 64 MiB segments preallocated ahead of
// the write position.

type journalAppenderImpl struct {
	j      *journal.Journal
	groups [][]byte
}

func openJournalAppender(tb testing.TB, recs [][]byte) journalAppender {
	j, err := journal.Open(tb.TempDir(), journal.DefaultOptions())
	require.NoError(tb, err)
	a := &journalAppenderImpl{j: j}
	for i, r := range recs {
		a.groups = append(a.groups, journal.AppendGroup(nil,
			&journal.Group{Stream: []byte("bench"), Timestamp: int64(i)},
			[]journal.Record{{Timestamp: int64(i), Value: r}}))
	}
	return a
}

func (a *journalAppenderImpl) append() error {
	if _, err := a.j.Write(a.groups); err != nil {
		return err
	}
	return a.j.Sync()
}

func (a *journalAppenderImpl) fsyncs() uint64 { return a.j.Stats().Syncs }
func (a *journalAppenderImpl) close() error   { return a.j.Close() }
