package peers_test

// A compact copy of the journal comparison's harness in bench/journal_test.go
// (a _test file of the main module, which this module cannot import): the
// same matrix, the same records, the same interleaving and the same metric
// names, so that a peer measured here lines up with the contenders there.

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/bench/internal/benchkit"
	"github.com/badbatch/badbatch/journal"
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
	for _, batch := range benchkit.JournalBatches {
		for _, size := range benchkit.JournalSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%s", batch, benchkit.SizeName(size)), func(b *testing.B) {
				recs := make([][]byte, batch)
				for i := range recs {
					recs[i] = benchkit.Record(size, i)
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
	perSlice := benchkit.PerSlice(batch, size)
	b.SetBytes(int64(len(as) * perSlice * batch * size))
	b.ReportAllocs()
	rounds := benchkit.Interleave(b, len(as), perSlice, uint64(batch), uint64(size), func(i int) error {
		return as[i].append()
	})
	ours := slices.IndexFunc(cs, func(c journalContender) bool { return c.ours })
	require.GreaterOrEqual(b, ours, 0, "the journal must be among the contenders")
	bytesPerImpl := float64(b.N * perSlice * batch * size)
	vsPeer := math.Inf(1)
	for i, c := range cs {
		b.ReportMetric(bytesPerImpl/benchkit.Busy(rounds[i]).Seconds()/1e6, "MB/s-"+c.name)
		if !c.ours {
			vsPeer = min(vsPeer, benchkit.PairedRatio(rounds, i, ours))
		}
	}
	b.ReportMetric(vsPeer, "journal/best-peer")
}

// --- BadBatch's journal ---

type journalAppenderImpl struct {
	j      *journal.Journal
	groups [][]byte
}

// openJournalAppender opens the journal with its defaults: SyncAlways, one
// pwrite and one fdatasync per batch, 64 MiB segments created at full size.
func openJournalAppender(tb testing.TB, recs [][]byte) journalAppender {
	j, err := journal.Open(tb.TempDir(), journal.DefaultOptions())
	require.NoError(tb, err)
	return &journalAppenderImpl{j: j, groups: benchkit.JournalGroups(recs)}
}

func (a *journalAppenderImpl) append() error {
	if _, err := a.j.Write(a.groups); err != nil {
		return err
	}
	return a.j.Sync()
}

func (a *journalAppenderImpl) fsyncs() uint64 { return a.j.Stats().Syncs }
func (a *journalAppenderImpl) close() error   { return a.j.Close() }
