package storage

import (
	"github.com/badbatch/badbatch"

	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadFromTime pins the rule for non-monotonic timestamps: the answer
// starts at the lowest offset whose timestamp is >= t and continues in
// offset order.
func TestReadFromTime(t *testing.T) {
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ts := []int{10, 30, 20, 40, 5, 50} // seconds after base, by offset
	tests := []struct {
		at   int // seconds after base
		want []uint64
	}{
		{at: -100, want: []uint64{0, 1, 2, 3, 4, 5}},
		{at: 10, want: []uint64{0, 1, 2, 3, 4, 5}},
		{at: 11, want: []uint64{1, 2, 3, 4, 5}},
		{at: 25, want: []uint64{1, 2, 3, 4, 5}},
		{at: 30, want: []uint64{1, 2, 3, 4, 5}},
		{at: 31, want: []uint64{3, 4, 5}},
		{at: 45, want: []uint64{5}},
		{at: 50, want: []uint64{5}},
		{at: 51, want: nil},
	}
	for _, layout := range []string{"one group", "one append per record"} {
		t.Run(layout, func(t *testing.T) {
			s := mustOpen(t, "db", memOptions(vfs.NewMem()))
			defer func() { require.NoError(t, s.Close()) }()
			ctx := context.Background()
			var recs []Record
			for _, sec := range ts {
				recs = append(recs, Record{Value: []byte(fmt.Sprint(sec)), Timestamp: base.Add(time.Duration(sec) * time.Second)})
			}
			if layout == "one group" {
				_, err := s.Append(ctx, "t", recs...)
				require.NoError(t, err)
			} else {
				for _, r := range recs {
					_, err := s.Append(ctx, "t", r)
					require.NoError(t, err)
				}
			}
			for _, tc := range tests {
				t.Run(fmt.Sprintf("at=%d", tc.at), func(t *testing.T) {
					got, err := s.ReadFromTime(ctx, "t", base.Add(time.Duration(tc.at)*time.Second), 10)
					require.NoError(t, err)
					var offsets []uint64
					for _, r := range got {
						offsets = append(offsets, r.Offset)
					}
					assert.Equal(t, tc.want, offsets)
				})
			}
			got, err := s.ReadFromTime(ctx, "t", base, 2)
			require.NoError(t, err)
			assert.Len(t, got, 2, "limit")
		})
	}
}

// recordingHandler records what it is called with.
type recordingHandler struct {
	mu   sync.Mutex
	recs []StoredRecord
	ends int
	fail func(r *StoredRecord) error
}

func (h *recordingHandler) OnRecord(r *StoredRecord, endOfBatch bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := *r
	c.Record = cloneRecord(r.Record)
	h.recs = append(h.recs, c)
	if endOfBatch {
		h.ends++
	}
	if h.fail != nil {
		return h.fail(r)
	}
	return nil
}

// TestHandlers: handlers see every accepted record once, in commit order,
// never rejected or duplicate ones; their errors are counted and change
// nothing; after a crash, Open calls them again for the records it
// re-applies.
func TestHandlers(t *testing.T) {
	fs := vfs.NewCrashableMem()
	h := &recordingHandler{fail: func(r *StoredRecord) error {
		if string(r.Value) == "bad" {
			return errors.New("handler says no")
		}
		return nil
	}}
	o := memOptions(fs)
	o.Handlers = []Handler{h}
	o.IndexFlushBytes = 1 << 40 // never flushed: a crash loses the whole index
	s := mustOpen(t, "db", o)
	ctx := context.Background()
	_, err := s.Append(ctx, "h", Record{Value: []byte("a"), Headers: map[string]string{"k": "v"}}, Record{Value: []byte("bad")})
	require.NoError(t, err, "a handler error does not fail the append")
	_, err = s.AppendWith(ctx, "h", AppendOptions{ExpectedLastOffset: badbatch.ExpectLastOffset(5)}, Record{Value: []byte("rejected")})
	require.ErrorIs(t, err, ErrOffsetMismatch)
	_, err = s.AppendWith(ctx, "h", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("c")})
	require.NoError(t, err)
	res, err := s.AppendWith(ctx, "h", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("c")})
	require.NoError(t, err)
	require.True(t, res.Replayed)
	_, err = s.Append(ctx, "other", Record{Value: []byte("d")})
	require.NoError(t, err)

	want := readGlobalAll(t, s)
	require.Len(t, want, 4)
	h.mu.Lock()
	assert.Equal(t, normalize(want), normalize(h.recs))
	assert.Equal(t, map[string]string{"k": "v"}, h.recs[0].Headers)
	assert.GreaterOrEqual(t, h.ends, 1)
	h.mu.Unlock()
	assert.Equal(t, uint64(1), s.Stats().HandlerErrors)

	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, s.Close())

	replay := &recordingHandler{}
	o.FS = crashed
	o.Handlers = []Handler{replay}
	s = mustOpen(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	assert.Equal(t, normalize(want), normalize(replay.recs), "recovery replays the records the index had not applied")
}

// metricsRecorder is a MetricsHook that counts.
type metricsRecorder struct {
	appends, records, batches, fsyncs atomic.Int64
	errs                              atomic.Int64
}

func (m *metricsRecorder) ObserveAppend(latency time.Duration, records int, err error) {
	m.appends.Add(1)
	m.records.Add(int64(records))
	if err != nil {
		m.errs.Add(1)
	}
}
func (m *metricsRecorder) ObserveBatch(appends, records int, occupancy int64) { m.batches.Add(1) }
func (m *metricsRecorder) ObserveFsync(time.Duration)                         { m.fsyncs.Add(1) }

func TestMetricsAndStats(t *testing.T) {
	m := &metricsRecorder{}
	o := DefaultOptions()
	o.Metrics = m
	s := mustOpen(t, t.TempDir(), o)
	ctx := context.Background()
	for i := range 10 {
		_, err := s.Append(ctx, "m", Record{Value: []byte(fmt.Sprint(i))}, Record{Value: []byte("x")})
		require.NoError(t, err)
	}
	_, err := s.AppendWith(ctx, "m", AppendOptions{ExpectedLastOffset: badbatch.ExpectLastOffset(-1)}, Record{})
	require.ErrorIs(t, err, ErrOffsetMismatch)
	st := s.Stats()
	assert.Equal(t, uint64(10), st.Appends)
	assert.Equal(t, uint64(20), st.Records)
	assert.Equal(t, uint64(1), st.Rejected)
	assert.Equal(t, 1, st.Streams)
	assert.Equal(t, int64(DefaultRingSize), st.RingSize)
	assert.Equal(t, uint64(21), st.Journal.NextSeq)
	assert.True(t, s.Ready())
	assert.Equal(t, journal.SyncAlways, s.SyncPolicy())
	require.NoError(t, s.Close())
	assert.Equal(t, int64(11), m.appends.Load())
	assert.Equal(t, int64(21), m.records.Load())
	assert.Equal(t, int64(1), m.errs.Load())
	assert.GreaterOrEqual(t, m.batches.Load(), int64(1))
	assert.GreaterOrEqual(t, m.fsyncs.Load(), int64(1))
}

// TestJournalFailure: after a journal write or fsync error every pending
// and later append fails with ErrUnavailable wrapping the cause, nothing
// unacknowledged is reported as committed, and a reopen repairs and
// serves again with every acknowledged append in place.
func TestJournalFailure(t *testing.T) {
	for name, kind := range map[string]errorfs.OpKind{"op=writeat": errorfs.OpFileWriteAt, "op=syncdata": errorfs.OpFileSyncData} {
		t.Run(name, func(t *testing.T) {
			mem := vfs.NewMem()
			var armed atomic.Bool
			fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if armed.Load() && op.Kind == kind && strings.Contains(op.Path, "journal") {
					return errorfs.ErrInjected
				}
				return nil
			}))
			o := memOptions(fs)
			s := mustOpen(t, "db", o)
			ctx := context.Background()
			var acked []AppendResult
			for i := range 20 {
				res, err := s.Append(ctx, "f", Record{Value: []byte(fmt.Sprint(i))})
				require.NoError(t, err)
				acked = append(acked, res)
			}
			armed.Store(true)
			var futures []*AppendFuture
			for i := range 5 {
				f, err := s.AppendAsync("f", AppendOptions{}, Record{Value: []byte(fmt.Sprint("doomed", i))})
				if err != nil {
					assert.ErrorIs(t, err, ErrUnavailable)
					continue
				}
				futures = append(futures, f)
			}
			failures := 0
			for _, f := range futures {
				if _, err := f.Wait(ctx); err != nil {
					assert.ErrorIs(t, err, ErrUnavailable)
					failures++
				}
				f.Release()
			}
			// The journal may have needed one more write to hit the armed
			// operation kind; drive it until it fails.
			var err error
			for range 10 {
				if _, err = s.Append(ctx, "f", Record{Value: []byte("after")}); err != nil {
					break
				}
			}
			require.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorIs(t, err, errorfs.ErrInjected, "the cause is wrapped")
			assert.ErrorIs(t, s.Err(), ErrUnavailable)
			assert.False(t, s.Ready())
			_, err = s.Append(ctx, "f", Record{Value: []byte("later")})
			assert.ErrorIs(t, err, ErrUnavailable, "sticky")
			_ = s.Close()

			armed.Store(false)
			s = mustOpen(t, "db", o)
			defer func() { require.NoError(t, s.Close()) }()
			require.NoError(t, s.Err())
			for _, a := range acked {
				recs, err := s.Read(ctx, "f", a.FirstOffset, 1)
				require.NoError(t, err)
				require.Len(t, recs, 1)
				assert.Equal(t, a.FirstSeq, recs[0].Seq)
			}
			_, err = s.Append(ctx, "f", Record{Value: []byte("works again")})
			require.NoError(t, err)
			t.Logf("%d of %d in-flight appends failed", failures, len(futures))
		})
	}
}

// TestIdempotencyWindow: a key is remembered for IdempotencyWindow of
// journaled time, then forgotten.
func TestIdempotencyWindow(t *testing.T) {
	clock := newFakeClock()
	o := memOptions(vfs.NewMem())
	o.IdempotencyWindow = time.Minute
	s := clock.open(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	first, err := s.AppendWith(ctx, "i", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("1")})
	require.NoError(t, err)
	clock.set(clock.now().Add(59 * time.Second))
	again, err := s.AppendWith(ctx, "i", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("1")})
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.FirstOffset, again.FirstOffset)
	other, err := s.AppendWith(ctx, "j", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("1")})
	require.NoError(t, err)
	assert.False(t, other.Replayed, "keys are per stream")
	clock.set(clock.now().Add(2 * time.Second))
	late, err := s.AppendWith(ctx, "i", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("1")})
	require.NoError(t, err)
	assert.False(t, late.Replayed, "window passed")
	assert.Equal(t, uint64(1), late.FirstOffset)

	// Many keys: the in-memory table is swept of expired ones.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		clock.set(clock.now().Add(time.Duration(rng.IntN(100)) * time.Millisecond))
		_, err := s.AppendWith(ctx, "i", AppendOptions{IdempotencyKey: fmt.Sprint("many-", i)}, Record{Value: []byte("v")})
		require.NoError(t, err)
	}
	assert.Less(t, len(s.app.idem), 3000, "expired keys are dropped")
}

// TestHandlersConcurrentBatches: with many producers, one ring batch holds
// several groups, some rejected; the handlers see exactly the accepted
// records of the batch, with their headers, in commit order (the records
// are decoded once, when applied, and kept for the handlers).
func TestHandlersConcurrentBatches(t *testing.T) {
	h := &recordingHandler{}
	o := memOptions(vfs.NewMem())
	o.Handlers = []Handler{h}
	s := mustOpen(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				recs := make([]Record, 1+i%4)
				for k := range recs {
					recs[k] = Record{Key: fmt.Appendf(nil, "p%d", p), Value: fmt.Appendf(nil, "%d-%d-%d", p, i, k),
						Headers: map[string]string{"p": fmt.Sprint(p), "k": fmt.Sprint(k)}}
				}
				opts := AppendOptions{}
				if i%5 == 4 {
					opts.ExpectedLastOffset = badbatch.ExpectLastOffset(1 << 40) // always rejected
				}
				_, err := s.AppendWith(ctx, fmt.Sprintf("s%d", p%3), opts, recs...)
				if i%5 == 4 {
					assert.ErrorIs(t, err, ErrOffsetMismatch)
				} else {
					assert.NoError(t, err)
				}
			}
		}()
	}
	wg.Wait()
	want := readGlobalAll(t, s)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, want)
	assert.Equal(t, normalize(want), normalize(h.recs))
	assert.Less(t, s.Stats().Batches, uint64(8*50), "some batches held several appends")
}
