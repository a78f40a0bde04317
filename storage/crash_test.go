package storage

import (
	"context"
	"fmt"
	"github.com/badbatch/badbatch/internal/testenv"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ackedAppend is an append the store acknowledged.
type ackedAppend struct {
	stream string
	res    AppendResult
	values []string
}

// crashWorkload appends from several producers until stopped, recording
// every acknowledgement.
type crashWorkload struct {
	mu    sync.Mutex
	acked []ackedAppend
	// ids makes every record value unique across cycles.
	next int
}

func (w *crashWorkload) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *crashWorkload) nextID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	return w.next
}

// run appends from producers goroutines until stop is closed or the store
// refuses. It returns when all producers have stopped.
func (w *crashWorkload) run(s *Store, producers int, seed uint64, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				stream := fmt.Sprintf("s%d", rng.IntN(3))
				id := w.nextID()
				n := 1 + rng.IntN(4)
				recs := make([]Record, n)
				values := make([]string, n)
				for i := range recs {
					values[i] = fmt.Sprintf("a%d-r%d-%s", id, i, strings.Repeat("x", rng.IntN(200)))
					recs[i].Value = []byte(values[i])
				}
				res, err := s.Append(context.Background(), stream, recs...)
				if err != nil {
					return // closed under us
				}
				w.mu.Lock()
				w.acked = append(w.acked, ackedAppend{stream: stream, res: res, values: values})
				w.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashPowerLoss runs the store on a crashable in-memory FS (journal and
// index both on it), takes power-loss images at random points while
// producers append, reopens each image and checks the durability contract:
// every append acknowledged before the crash is present at its offsets, no
// gaps, no duplicates, every append whole or absent, and the recovered index
// equals an index rebuilt from the journal alone.
func TestCrashPowerLoss(t *testing.T) {
	cycles := testenv.CrashCycles(t, 20, 5)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d crash cycles", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 0))

	opts := func(fs vfs.FS) *Options {
		o := memOptions(fs)
		o.SegmentSize = 64 << 10
		o.IndexFlushBytes = 16 << 10
		return o
	}
	fs := vfs.NewCrashableMem()
	s := mustOpen(t, "db", opts(fs))
	var w crashWorkload
	recoveredEntries := int64(0)
	for cycle := range cycles {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			w.run(s, 3, seed+uint64(cycle), stop)
			close(done)
		}()
		// Crash after a random number of further acknowledgements.
		target := w.ackedCount() + 1 + rng.IntN(60)
		for w.ackedCount() < target {
			time.Sleep(100 * time.Microsecond)
		}
		w.mu.Lock()
		ackedBefore := len(w.acked)
		w.mu.Unlock()
		percent := []int{0, 10, 50, 100}[rng.IntN(4)]
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: percent, RNG: rand.New(rand.NewPCG(seed, uint64(cycle)+100))})
		close(stop)
		<-done
		require.NoError(t, s.Close())

		// Records acknowledged after the clone may or may not be in it.
		w.mu.Lock()
		w.acked = w.acked[:ackedBefore]
		w.mu.Unlock()
		fs = crashed
		s = mustOpen(t, "db", opts(fs))
		recoveredEntries += s.Stats().Recovery.Entries
		checkDurability(t, s, w.acked)
		if t.Failed() {
			t.Fatalf("cycle %d (seed %d, unsynced %d%%)", cycle, seed, percent)
		}
		// The recovered index must equal one rebuilt from the journal.
		before := snapshotState(t, s)
		require.NoError(t, s.Close())
		require.NoError(t, fs.RemoveAll("db/index"))
		s = mustOpen(t, "db", opts(fs))
		assert.Equal(t, before, snapshotState(t, s), "cycle %d: rebuilt index differs", cycle)
	}
	require.NoError(t, s.Close())
	t.Logf("%d acknowledged appends checked; %d journal entries re-applied at recovery in total", len(w.acked), recoveredEntries)
}

// checkDurability verifies the acknowledged appends and the streams' shape.
func checkDurability(t *testing.T, s *Store, acked []ackedAppend) {
	t.Helper()
	streams := map[string][]StoredRecord{}
	list, err := s.Streams(context.Background())
	require.NoError(t, err)
	for _, info := range list {
		recs := readAll(t, s, info.Stream)
		require.Len(t, recs, int(info.NextOffset), "stream %s", info.Stream)
		seen := map[string]bool{}
		appendOf := map[string]int{} // append id -> records seen
		for i, r := range recs {
			require.Equal(t, uint64(i), r.Offset, "stream %s: gap or disorder", info.Stream)
			v := string(r.Value)
			require.False(t, seen[v], "stream %s: duplicate record %q", info.Stream, v)
			seen[v] = true
			appendOf[v[:strings.Index(v, "-")]]++
		}
		streams[info.Stream] = recs
		_ = appendOf
	}
	for _, a := range acked {
		recs := streams[a.stream]
		require.Less(t, a.res.LastOffset, uint64(len(recs)), "acknowledged append %+v lost", a.res)
		for i, v := range a.values {
			got := recs[a.res.FirstOffset+uint64(i)]
			require.Equal(t, v, string(got.Value), "acknowledged record moved: %s offset %d", a.stream, a.res.FirstOffset+uint64(i))
			require.Equal(t, a.res.FirstSeq+uint64(i), got.Seq)
		}
	}
	// Atomicity: the records of one append are contiguous and complete.
	for name, recs := range streams {
		for i := 0; i < len(recs); {
			id := string(recs[i].Value[:strings.Index(string(recs[i].Value), "-")])
			j := i
			for j < len(recs) && strings.HasPrefix(string(recs[j].Value), id+"-") {
				require.Equal(t, fmt.Sprintf("%s-r%d-", id, j-i), string(recs[j].Value[:len(fmt.Sprintf("%s-r%d-", id, j-i))]), "stream %s: torn append", name)
				j++
			}
			i = j
		}
	}
}

// storeState is everything observable about a store, for comparisons.
type storeState struct {
	Streams []StreamInfo
	Records map[string][]StoredRecord
	Global  []StoredRecord
}

func snapshotState(t *testing.T, s *Store) storeState {
	t.Helper()
	list, err := s.Streams(context.Background())
	require.NoError(t, err)
	st := storeState{Records: map[string][]StoredRecord{}}
	for _, info := range list {
		info.LastTimestamp = info.LastTimestamp.UTC()
		st.Streams = append(st.Streams, info)
		st.Records[info.Stream] = normalize(readAll(t, s, info.Stream))
	}
	st.Global = normalize(readGlobalAll(t, s))
	return st
}

// TestIndexAheadOfJournalRebuilds: under SyncNone the journal may lose
// entries the index has applied and flushed. Open must notice that the
// index is ahead, rebuild it from the journal, and end up with exactly the
// state the surviving journal implies.
func TestIndexAheadOfJournalRebuilds(t *testing.T) {
	fs := vfs.NewCrashableMem()
	o := memOptions(fs)
	o.SyncPolicy = journal.SyncNone
	o.IndexFlushBytes = 1 << 10
	s := mustOpen(t, "db", o)
	ctx := context.Background()
	for i := range 200 {
		res, err := s.Append(ctx, "ahead", Record{Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
		require.Equal(t, DurabilityNoSync, res.Durability)
	}
	// Make sure an index flush has completed (the index is durable and
	// ahead of the unsynced journal).
	require.NoError(t, s.x.db.Flush())
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, s.Close())

	o.FS = crashed
	s = mustOpen(t, "db", o)
	assert.True(t, s.Stats().Recovery.Rebuilt, "the index was ahead and must be rebuilt")
	after := snapshotState(t, s)
	require.NoError(t, s.Close())
	require.NoError(t, crashed.RemoveAll("db/index"))
	s = mustOpen(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	assert.Equal(t, after, snapshotState(t, s), "rebuilt state equals a from-scratch rebuild")
	t.Logf("journal kept %d of 200 records", s.j.NextSeq())
}

// TestRecoveryFromMidEntry: the business logic's batches need not end on a
// journal entry boundary, so the applied position can name a group in the
// middle of an entry. Open must resume there, applying each remaining group
// exactly once.
func TestRecoveryFromMidEntry(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("db", 0o755))
	j, err := journal.Open("db/journal", &journal.Options{FS: fs})
	require.NoError(t, err)
	var groups [][]byte
	for i := range 4 {
		g := journal.Group{Stream: []byte("mid"), Timestamp: int64(1000 + i)}
		if i == 3 {
			g.Flags = journal.GroupHasExpectedOffset
			g.ExpectedLastOffset = 5 // true only after groups 0-2 (2 records each)
		}
		recs := []journal.Record{{Timestamp: int64(i), Value: []byte(fmt.Sprint(i, "a"))}, {Timestamp: int64(i), Value: []byte(fmt.Sprint(i, "b"))}}
		groups = append(groups, journal.AppendGroup(nil, &g, recs))
	}
	_, err = j.Append(groups)
	require.NoError(t, err)
	// Apply the first two groups only, as a business-logic batch that
	// ended mid-entry would, and persist that index.
	x, err := openIndex("db/index", fs, DefaultOptions().Logger)
	require.NoError(t, err)
	var mu sync.RWMutex
	app := newApplier(x, int64(time.Minute), &mu)
	require.NoError(t, app.load())
	err = j.Read(1, func(e *journal.Entry) error {
		var gr journal.GroupReader
		src := readerSource{r: &gr}
		gr.Reset(e.Payload, e.FirstSeq)
		for k := 0; k < 2 && gr.Next(); k++ {
			var h groupHeader
			headerOf(&h, gr.Group(), e.Index, uint32(gr.Group().Ordinal), uint32(gr.Group().Offset))
			if _, err := app.apply(&h, &src); err != nil {
				return err
			}
		}
		return app.finish()
	})
	require.NoError(t, err)
	require.Equal(t, position{Entry: 1, Ordinal: 2, Seq: 4, Clock: 1001}, app.pos)
	require.NoError(t, x.close(true))
	require.NoError(t, j.Close())

	s := mustOpen(t, "db", memOptions(fs))
	assert.Equal(t, int64(1), s.Stats().Recovery.Entries)
	assert.Equal(t, int64(2), s.Stats().Recovery.Groups, "only the two unapplied groups")
	resumed := snapshotState(t, s)
	require.NoError(t, s.Close())
	require.Len(t, resumed.Records["mid"], 8, "groups 2 and 3 applied once; group 3's expected offset 5 held")

	require.NoError(t, fs.RemoveAll("db/index"))
	s = mustOpen(t, "db", memOptions(fs))
	defer func() { require.NoError(t, s.Close()) }()
	assert.Equal(t, resumed, snapshotState(t, s), "equals a rebuild from the whole journal")
}
