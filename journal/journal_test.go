package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testFS is a file system to run a test on: the real disk (sealed segments
// mmapped) or Pebble's MemFS (sealed segments read with ReadAt).
type testFS struct {
	name string
	fs   vfs.FS
	dir  string
}

func testFileSystems(t *testing.T) []testFS {
	return []testFS{
		{name: "disk", fs: vfs.Default, dir: t.TempDir()},
		{name: "mem", fs: vfs.NewMem(), dir: "/journal"},
	}
}

func testOptions(fs vfs.FS, segmentSize int64) *Options {
	o := DefaultOptions()
	o.FS = fs
	o.SegmentSize = segmentSize
	return o
}

func mustOpen(t testing.TB, dir string, o *Options) *Journal {
	t.Helper()
	j, err := Open(dir, o)
	require.NoError(t, err)
	return j
}

// entryGroups returns the groups of test entry i: 1 + i%3 groups of 1 + i%4
// records whose values encode i, so any payload can be checked.
func entryGroups(i int, valueSize int) [][]byte {
	groups := make([][]byte, 1+i%3)
	for g := range groups {
		recs := make([]Record, 1+(i+g)%4)
		for r := range recs {
			v := make([]byte, max(valueSize, 8))
			binary.LittleEndian.PutUint64(v, uint64(i))
			for k := 8; k < len(v); k++ {
				v[k] = byte(i*31 + g*7 + r + k)
			}
			recs[r] = Record{Timestamp: int64(i), Key: []byte(fmt.Sprintf("k%d-%d", g, r)), Value: v}
		}
		groups[g] = AppendGroup(nil, &Group{Stream: []byte(fmt.Sprintf("stream-%d", g)), Timestamp: int64(i)}, recs)
	}
	return groups
}

func entryRecords(groups [][]byte) int {
	n := 0
	for _, g := range groups {
		n += int(binary.LittleEndian.Uint32(g[groupOffRecords:]))
	}
	return n
}

// testModel is the naive journal: what every entry must read back as.
type testModel struct {
	payloads [][]byte // payloads[i] is entry first+i
	seqs     []uint64
	terms    []uint64
	kinds    []EntryKind
	first    uint64
}

func (m *testModel) add(info EntryInfo, groups [][]byte) {
	m.addEntry(info, bytes.Join(groups, nil))
}

// addEntry adds an entry of any kind, with its payload as written.
func (m *testModel) addEntry(info EntryInfo, payload []byte) {
	m.payloads = append(m.payloads, payload)
	m.seqs = append(m.seqs, info.FirstSeq)
	m.terms = append(m.terms, info.Term)
	m.kinds = append(m.kinds, info.Kind)
}

func (m *testModel) last() uint64 { return m.first + uint64(len(m.payloads)) - 1 }

// requireMatches checks Read, Term, Info and an iterator against the model.
func requireMatches(t *testing.T, j *Journal, m *testModel) {
	t.Helper()
	require.Equal(t, m.last(), j.LastIndex())
	for i, want := range m.payloads {
		idx := m.first + uint64(i)
		err := j.Read(idx, func(e *Entry) error {
			assert.Equal(t, idx, e.Index)
			assert.Equal(t, m.seqs[i], e.FirstSeq)
			assert.Equal(t, m.terms[i], e.Term, "entry %d term", idx)
			assert.Equal(t, m.kinds[i], e.Kind, "entry %d kind", idx)
			assert.True(t, bytes.Equal(want, e.Payload), "entry %d payload", idx)
			info, err := j.Info(idx)
			require.NoError(t, err, "Info(%d)", idx)
			assert.Equal(t, e.EntryInfo, info, "Info(%d) is the header Read decoded", idx)
			return nil
		})
		require.NoError(t, err, "Read(%d)", idx)
		term, err := j.Term(idx)
		require.NoError(t, err, "Term(%d)", idx)
		require.Equal(t, m.terms[i], term, "Term(%d)", idx)
	}
	it := j.NewIterator(m.first)
	defer it.Close()
	n := 0
	for it.Next() {
		e := it.Entry()
		require.Equal(t, m.first+uint64(n), e.Index)
		require.Equal(t, m.kinds[n], e.Kind, "iterated entry %d kind", e.Index)
		require.Equal(t, m.terms[n], e.Term, "iterated entry %d term", e.Index)
		require.True(t, bytes.Equal(m.payloads[n], e.Payload), "iterated entry %d", e.Index)
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, len(m.payloads), n)
}

func TestWriteReadReopen(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 8<<10) // many segments
			j := mustOpen(t, tfs.dir, o)
			assert.Equal(t, uint64(1), j.FirstIndex())
			assert.Equal(t, uint64(0), j.LastIndex())
			assert.Equal(t, uint64(0), j.NextSeq())

			m := &testModel{first: 1}
			var seq uint64
			for i := range 200 {
				groups := entryGroups(i, 10+i*7%700)
				var info EntryInfo
				var err error
				if i%2 == 0 {
					info, err = j.Append(groups)
				} else {
					info, err = j.WriteTerm(uint64(i), groups)
				}
				require.NoError(t, err)
				require.Equal(t, uint64(i+1), info.Index)
				require.Equal(t, seq, info.FirstSeq, "records are numbered densely across entries")
				require.Equal(t, entryRecords(groups), info.Records)
				require.Equal(t, len(groups), info.Groups)
				if i%2 == 1 {
					require.Equal(t, uint64(i), info.Term)
				}
				seq += uint64(info.Records)
				m.add(info, groups)
			}
			require.NoError(t, j.Sync())
			require.Equal(t, seq, j.NextSeq())
			st := j.Stats()
			require.Greater(t, st.Segments, 10, "the test must cross segments")
			require.Equal(t, uint64(200), st.Entries)
			requireMatches(t, j, m)
			require.NoError(t, j.Close())

			j = mustOpen(t, tfs.dir, o)
			assert.Equal(t, RepairReport{}, j.RepairReport(), "a clean close needs no repair")
			assert.Equal(t, seq, j.NextSeq())
			requireMatches(t, j, m)
			for i := 200; i < 230; i++ {
				groups := entryGroups(i, 100)
				info, err := j.Append(groups)
				require.NoError(t, err)
				require.Equal(t, uint64(i+1), info.Index)
				m.add(info, groups)
			}
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
		})
	}
}

func TestReadErrorsAndEdges(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 4<<10)
	j := mustOpen(t, "/j", o)
	for i := range 20 {
		_, err := j.Append(entryGroups(i, 300))
		require.NoError(t, err)
	}
	require.NoError(t, j.TruncateFront(10))
	first := j.FirstIndex()
	require.Greater(t, first, uint64(1))

	noop := func(*Entry) error { return nil }
	sentinel := errors.New("callback")
	tests := []struct {
		name  string
		index uint64
		fn    func(*Entry) error
		want  error
	}{
		{"index 0", 0, noop, ErrTruncated},
		{"below first", first - 1, noop, ErrTruncated},
		{"above last", 21, noop, ErrOutOfRange},
		{"callback error", 15, func(*Entry) error { return sentinel }, sentinel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, j.Read(tt.index, tt.fn), tt.want)
		})
	}
	t.Run("iterator from below first", func(t *testing.T) {
		it := j.NewIterator(1)
		assert.False(t, it.Next())
		assert.ErrorIs(t, it.Err(), ErrTruncated)
		require.NoError(t, it.Close())
	})
	t.Run("iterator tails", func(t *testing.T) {
		it := j.NewIterator(20)
		defer it.Close()
		require.True(t, it.Next())
		assert.Equal(t, uint64(20), it.Entry().Index)
		assert.False(t, it.Next(), "caught up")
		assert.NoError(t, it.Err(), "caught up is not an error")
		_, err := j.Append(entryGroups(20, 300))
		require.NoError(t, err)
		require.True(t, it.Next(), "sees the new entry: %v", it.Err())
		assert.Equal(t, uint64(21), it.Entry().Index)
	})
	t.Run("too large and malformed groups are not sticky", func(t *testing.T) {
		small := testOptions(vfs.NewMem(), 4<<10)
		small.MaxEntrySize = 1000
		j2 := mustOpen(t, "/small", small)
		defer j2.Close()
		big := AppendGroup(nil, &Group{Stream: []byte("s")}, []Record{{Value: make([]byte, 1000)}})
		_, err := j2.Append([][]byte{big})
		assert.ErrorIs(t, err, ErrEntryTooLarge)
		_, err = j2.Append([][]byte{[]byte("not a group at all, just bytes")})
		assert.ErrorIs(t, err, ErrCorrupt)
		assert.NoError(t, j2.Err())
		info, err := j2.Append(entryGroups(1, 10))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), info.Index)
	})
	require.NoError(t, j.Close())
	t.Run("closed", func(t *testing.T) {
		assert.ErrorIs(t, j.Read(15, noop), ErrClosed)
		_, err := j.Write(entryGroups(1, 10))
		assert.ErrorIs(t, err, ErrClosed)
		assert.ErrorIs(t, j.Sync(), ErrClosed)
		assert.ErrorIs(t, j.TruncateFront(1), ErrClosed)
		assert.ErrorIs(t, j.TruncateBack(1), ErrClosed)
		_, err = j.EnforceRetention(time.Now())
		assert.ErrorIs(t, err, ErrClosed)
		assert.ErrorIs(t, j.Close(), ErrClosed)
		it := j.NewIterator(15)
		assert.False(t, it.Next())
		assert.ErrorIs(t, it.Err(), ErrClosed)
	})
}

func TestEmptyWriteAndEmptyJournal(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 4<<10)
	j := mustOpen(t, "/j", o)
	info, err := j.Append(nil) // an entry without groups is legal (e.g. a raft no-op)
	require.NoError(t, err)
	assert.Equal(t, EntryInfo{Index: 1, Timestamp: info.Timestamp}, info)
	require.NoError(t, j.Read(1, func(e *Entry) error {
		assert.Empty(t, e.Payload)
		return nil
	}))
	require.NoError(t, j.Close())
	j = mustOpen(t, "/j", o)
	assert.Equal(t, uint64(1), j.LastIndex())
	assert.Equal(t, uint64(0), j.NextSeq())
	require.NoError(t, j.Close())
}

func TestOptions(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		d := DefaultOptions()
		assert.Equal(t, vfs.Default, d.FS)
		assert.Equal(t, SyncAlways, d.SyncPolicy)
		assert.Equal(t, 10*time.Millisecond, d.SyncInterval)
		assert.Equal(t, int64(64<<20), d.SegmentSize)
		assert.Equal(t, int64(64<<20), d.MaxEntrySize)
		assert.NotNil(t, d.Logger)
	})
	t.Run("Open does not modify the caller's options", func(t *testing.T) {
		o := &Options{FS: vfs.NewMem()}
		before := *o
		j := mustOpen(t, "/j", o)
		require.NoError(t, j.Close())
		assert.Equal(t, before, *o)
	})
	t.Run("nil options", func(t *testing.T) {
		j := mustOpen(t, t.TempDir(), nil)
		require.NoError(t, j.Close())
	})
	invalid := []struct {
		name string
		mod  func(o *Options)
	}{
		{"policy", func(o *Options) { o.SyncPolicy = 9 }},
		{"interval", func(o *Options) { o.SyncInterval = -1 }},
		{"segment too small", func(o *Options) { o.SegmentSize = 10 }},
		{"segment too large", func(o *Options) { o.SegmentSize = 3 << 30 }},
		{"entry too large", func(o *Options) { o.MaxEntrySize = 2 << 30 }},
		{"retention bytes", func(o *Options) { o.RetentionBytes = -1 }},
		{"retention age", func(o *Options) { o.RetentionAge = -time.Second }},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			o := &Options{FS: vfs.NewMem()}
			tt.mod(o)
			_, err := Open("/j", o)
			assert.ErrorContains(t, err, "journal: invalid options")
		})
	}
}

func TestParseSyncPolicy(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			got, err := ParseSyncPolicy(p.String())
			require.NoError(t, err)
			assert.Equal(t, p, got)
		})
	}
	assert.Equal(t, "always", SyncPolicy(0).String(), "the zero value is always")
	_, err := ParseSyncPolicy("sometimes")
	assert.Error(t, err)
	assert.Equal(t, "SyncPolicy(7)", SyncPolicy(7).String())
}

func TestSyncPolicies(t *testing.T) {
	t.Run("always syncs once per Sync", func(t *testing.T) {
		var hooked int
		o := testOptions(vfs.NewMem(), 1<<20)
		o.OnSync = func(time.Duration) { hooked++ }
		j := mustOpen(t, "/j", o)
		defer j.Close()
		before := j.Stats().Syncs
		for i := range 3 {
			_, err := j.Write(entryGroups(i, 10))
			require.NoError(t, err)
		}
		require.NoError(t, j.Sync())
		require.NoError(t, j.Sync(), "nothing new: no fsync")
		assert.Equal(t, before+1, j.Stats().Syncs)
		assert.Equal(t, 1, hooked)
	})
	t.Run("none never syncs entries", func(t *testing.T) {
		o := testOptions(vfs.NewMem(), 1<<20)
		o.SyncPolicy = SyncNone
		j := mustOpen(t, "/j", o)
		before := j.Stats().Syncs
		_, err := j.Append(entryGroups(1, 10))
		require.NoError(t, err)
		assert.Equal(t, before, j.Stats().Syncs)
		require.NoError(t, j.Close())
	})
	t.Run("interval syncs in the background", func(t *testing.T) {
		o := testOptions(vfs.NewMem(), 1<<20)
		o.SyncPolicy = SyncInterval
		o.SyncInterval = time.Millisecond
		synced := make(chan struct{}, 1)
		o.OnSync = func(time.Duration) {
			select {
			case synced <- struct{}{}:
			default:
			}
		}
		j := mustOpen(t, "/j", o)
		_, err := j.Append(entryGroups(1, 10))
		require.NoError(t, err, "Append returns before the fsync")
		select {
		case <-synced:
		case <-time.After(10 * time.Second):
			t.Fatal("the interval syncer never synced")
		}
		require.NoError(t, j.Close()) // joins the goroutine (goleak checks)
	})
}

func TestLockExcludesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir, nil)
	_, err := Open(dir, nil)
	assert.Error(t, err)
	require.NoError(t, j.Close())
	j = mustOpen(t, dir, nil)
	require.NoError(t, j.Close())
}

func TestConcurrentReadersAndWriter(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 16<<10)
			o.SyncPolicy = SyncNone
			o.RetentionBytes = 64 << 10
			j := mustOpen(t, tfs.dir, o)
			n := 600
			if testing.Short() {
				n = 200
			}
			check := func(e *Entry) error {
				var r GroupReader
				r.Reset(e.Payload, e.FirstSeq)
				for r.Next() {
					for r.NextRecord() {
						if got := binary.LittleEndian.Uint64(r.Record().Value); got != e.Index-1 {
							return fmt.Errorf("entry %d holds a value of entry %d", e.Index, got+1)
						}
					}
				}
				return r.Err()
			}
			var wg sync.WaitGroup
			done := make(chan struct{})
			errs := make(chan error, 8)
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for {
						select {
						case <-done:
							return
						default:
						}
						first, last := j.FirstIndex(), j.LastIndex()
						if last < first {
							continue
						}
						if w == 0 { // an iterator racing retention
							it := j.NewIterator(first)
							for it.Next() {
								if err := check(it.Entry()); err != nil {
									errs <- err
									return
								}
							}
							if err := it.Err(); err != nil && !errors.Is(err, ErrTruncated) {
								errs <- err
							}
							it.Close()
							continue
						}
						idx := first + rng.Uint64N(last-first+1)
						if err := j.Read(idx, check); err != nil && !errors.Is(err, ErrTruncated) {
							errs <- err
							return
						}
					}
				}()
			}
			for i := range n {
				_, err := j.Append(entryGroups(i, 200))
				require.NoError(t, err)
			}
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			assert.Greater(t, j.Stats().RemovedSegments, uint64(0), "retention ran while readers read")
			require.NoError(t, j.Close())
		})
	}
}

func TestWriteAllocs(t *testing.T) {
	o := testOptions(vfs.Default, 64<<20)
	o.SyncPolicy = SyncNone
	j := mustOpen(t, t.TempDir(), o)
	defer j.Close()
	groups := entryGroups(3, 1000)
	for range 100 { // warm up the buffers and the offset slice
		_, err := j.Write(groups)
		require.NoError(t, err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := j.Write(groups); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "Write allocates in steady state")
	allocs = testing.AllocsPerRun(200, func() {
		if err := j.Read(50, func(*Entry) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "Read allocates in steady state")
}
