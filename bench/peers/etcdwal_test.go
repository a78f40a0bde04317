package peers_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/badbatch/badbatch/bench/internal/benchkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// etcdWALVerifyBytes bounds the record bytes a benchmark reads back after
// its timed loop (ReadAll holds every entry in memory). Every matrix point
// stays under it in the b.N=1 run the testing package always starts with,
// so each one is verified at least once per run.
const etcdWALVerifyBytes = 64 << 20

// etcdWALFsyncMetric is the histogram etcd's WAL observes after every
// fdatasync of a segment and every fsync of its directory (wal.go: sync and
// cut). It is registered in Prometheus's default registry, so the count is
// the whole process's: the benchmarks and tests here never run two etcd
// WALs at once.
const etcdWALFsyncMetric = "etcd_disk_wal_fsync_duration_seconds"

// etcdWALAppender appends each batch to etcd's WAL with one Save: the
// batch's records as raft entries (Term 1, Index increasing from 1,
// EntryNormal, Data = the record) and a HardState{Term: 1, Vote: 1,
// Commit: the last index of the previous batch}, what a single-node raft
// hands its WAL in a Ready. Save fdatasyncs before it returns whenever the
// batch has entries. It is used by one goroutine.
type etcdWALAppender struct {
	w       *wal.WAL
	dir     string
	recs    [][]byte
	ents    []*raftpb.Entry
	indexes []uint64 // ents[i].Index points at indexes[i]
	term    uint64
	commit  uint64
	state   raftpb.HardState
	next    uint64 // the index of the next entry
}

// newEtcdWALAppender creates a WAL in a fresh directory with etcd's
// defaults: 64 MB (wal.SegmentSizeBytes) segments, preallocated with
// fallocate when created, no-op logger, fsync on.
func newEtcdWALAppender(tb testing.TB, recs [][]byte) *etcdWALAppender {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "wal") // wal.Create wants a directory that does not exist
	w, err := wal.Create(zap.NewNop(), dir, nil)
	require.NoError(tb, err)
	a := &etcdWALAppender{
		w: w, dir: dir, recs: recs, next: 1, term: 1,
		ents: make([]*raftpb.Entry, len(recs)), indexes: make([]uint64, len(recs)),
	}
	a.state = raftpb.HardState{Term: &a.term, Vote: &a.term, Commit: &a.commit}
	for i, r := range recs {
		a.ents[i] = &raftpb.Entry{Term: &a.term, Index: &a.indexes[i], Type: raftpb.EntryNormal.Enum(), Data: r}
	}
	return a
}

func (a *etcdWALAppender) append() error {
	for i := range a.indexes {
		a.indexes[i] = a.next
		a.next++
	}
	// Save marshals the entries and the state before it returns, so they
	// are reused for the next batch.
	err := a.w.Save(&a.state, a.ents)
	a.commit = a.next - 1
	return err
}

func (a *etcdWALAppender) fsyncs() uint64 { return etcdWALFsyncs() }
func (a *etcdWALAppender) close() error   { return a.w.Close() }

// appended is how many entries the WAL holds.
func (a *etcdWALAppender) appended() int { return int(a.next - 1) }

// closeAndVerify closes the WAL, opens it again (wal.Open, as etcd does on
// restart) and checks that ReadAll returns every entry appended, in order,
// each with its record, and the last HardState saved.
func (a *etcdWALAppender) closeAndVerify(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, a.w.Close())
	r, err := wal.Open(zap.NewNop(), a.dir, &walpb.Snapshot{})
	require.NoError(tb, err)
	defer func() { assert.NoError(tb, r.Close()) }()
	_, state, ents, err := r.ReadAll()
	require.NoError(tb, err)
	require.Len(tb, ents, a.appended(), "etcd's WAL must read back every entry saved")
	bad := 0
	for i, e := range ents {
		if e.GetIndex() != uint64(i+1) || e.GetTerm() != 1 || !bytes.Equal(e.GetData(), a.recs[i%len(a.recs)]) {
			bad++
		}
	}
	assert.Zero(tb, bad, "entries read back with the wrong index, term or data")
	assert.Equal(tb, a.term, state.GetTerm())
	assert.Equal(tb, uint64(a.appended()-len(a.recs)), state.GetCommit(), "the last HardState saved")
}

// etcdWALFsyncs is the number of fsyncs etcd's WALs have made in this
// process (see etcdWALFsyncMetric).
func etcdWALFsyncs() uint64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == etcdWALFsyncMetric && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// BenchmarkEtcdWALAppendInterleaved runs etcd's WAL (go.etcd.io/etcd/server/v3
// v3.7.3, storage/wal) and BadBatch's journal (defaults) in one process,
// interleaved exactly as bench's BenchmarkJournalAppendInterleaved runs its
// contenders: each b.N iteration is one round in which both, in a shuffled
// order, make a few batches durable (about 256 KiB, at least 1 and at most
// 8 batches), one fsync per batch each. etcd: one WAL.Save(HardState,
// entries) per batch, which fdatasyncs before it returns (Save's mustSync
// is true whenever the batch has entries); 64 MB segments, preallocated.
// Reports MB/s-journal, MB/s-etcdwal (record bytes) and journal/best-peer:
// the median over rounds of etcd's slice time over the journal's in the same
// round (> 1: the journal was faster). After the timed loop, etcd's WAL is
// reopened and read back when it holds at most 64 MiB of records.
func BenchmarkEtcdWALAppendInterleaved(b *testing.B) {
	etcd := journalContender{name: "etcdwal"}
	journalMatrix(b, func(b *testing.B, recs [][]byte) {
		ours := openJournalAppender(b, recs)
		peer := newEtcdWALAppender(b, recs)
		benchmarkJournalInterleaved(b, []journalContender{journalOurs, etcd}, []journalAppender{ours, peer}, recs)
		require.NoError(b, ours.close())
		closeEtcdWALAppender(b, peer)
	})
}

// BenchmarkEtcdWALAppend is etcd's WAL alone, as bench's
// BenchmarkJournalAppend runs each contender: b.N batches, one
// WAL.Save(HardState, entries) and so one fdatasync each. Reports MB/s of
// record bytes, records/s and fsyncs/s (counted by etcd's own
// etcd_disk_wal_fsync_duration_seconds histogram: segment cuts add two
// fdatasyncs and a directory fsync).
func BenchmarkEtcdWALAppend(b *testing.B) {
	journalMatrix(b, func(b *testing.B, recs [][]byte) {
		a := newEtcdWALAppender(b, recs)
		benchmarkJournalAppend(b, a, recs)
		closeEtcdWALAppender(b, a)
	})
}

// closeEtcdWALAppender closes a benchmark's WAL, reading it back first when
// it is small enough (etcdWALVerifyBytes).
func closeEtcdWALAppender(b *testing.B, a *etcdWALAppender) {
	if a.appended()*len(a.recs[0]) <= etcdWALVerifyBytes {
		a.closeAndVerify(b)
		return
	}
	require.NoError(b, a.close())
}

// TestEtcdWALRoundTrip checks what the etcd benchmarks rely on: every Save
// of a batch with entries makes exactly one fsync (none is deferred to a
// later call), and the entries read back after the WAL is closed and
// reopened, at every batch size and at a record size that crosses a
// segment.
func TestEtcdWALRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		batch, size, batches int
	}{
		{1, 100, 5},
		{16, 1 << 10, 5},
		{256, 64 << 10, 6}, // 96 MiB: one segment cut
	} {
		t.Run(benchkit.SizeName(tc.size), func(t *testing.T) {
			recs := make([][]byte, tc.batch)
			for i := range recs {
				recs[i] = benchkit.Record(tc.size, i)
			}
			a := newEtcdWALAppender(t, recs)
			cut := false
			for range tc.batches {
				before := a.fsyncs()
				require.NoError(t, a.append())
				switch n := a.fsyncs() - before; n {
				case 1:
				case 3: // a segment cut: the old tail, the new one and the directory
					cut = true
				default:
					t.Fatalf("Save of %d entries made %d fsyncs", tc.batch, n)
				}
			}
			assert.Equal(t, tc.batch*tc.size*tc.batches > int(wal.SegmentSizeBytes), cut, "a cut exactly when the records pass a segment")
			a.closeAndVerify(t)
		})
	}
}
