package journal

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// filled opens a MemFS journal with small segments and appends n entries.
func filled(t *testing.T, n int, mod func(o *Options)) (vfs.FS, *Options, *Journal, *testModel) {
	t.Helper()
	fs := vfs.NewMem()
	o := testOptions(fs, 2<<10)
	if mod != nil {
		mod(o)
	}
	j := mustOpen(t, "/j", o)
	m := &testModel{first: 1}
	for i := range n {
		g := entryGroups(i, 150)
		info, err := j.Append(g)
		require.NoError(t, err)
		m.add(info, g)
	}
	return fs, o, j, m
}

// dropFront drops the model's entries below first.
func (m *testModel) dropFront(first uint64) {
	k := int(first - m.first)
	m.payloads, m.seqs, m.terms, m.kinds, m.first = m.payloads[k:], m.seqs[k:], m.terms[k:], m.kinds[k:], first
}

func (m *testModel) dropBack(last uint64) {
	k := int(last + 1 - m.first)
	m.payloads, m.seqs, m.terms, m.kinds = m.payloads[:k], m.seqs[:k], m.terms[:k], m.kinds[:k]
}

func TestTruncateFront(t *testing.T) {
	fs, o, j, m := filled(t, 60, nil)
	segsBefore := len(segmentPaths(t, fs, "/j"))
	require.NoError(t, j.TruncateFront(30))
	first := j.FirstIndex()
	assert.LessOrEqual(t, first, uint64(30), "only whole segments below the index go")
	assert.Greater(t, first, uint64(20), "segments are about 5 entries")
	assert.ErrorIs(t, j.Read(first-1, func(*Entry) error { return nil }), ErrTruncated)
	m.dropFront(first)
	requireMatches(t, j, m)
	assert.Less(t, len(segmentPaths(t, fs, "/j")), segsBefore)
	assert.Equal(t, uint64(segsBefore-len(segmentPaths(t, fs, "/j"))), j.Stats().RemovedSegments)

	require.NoError(t, j.TruncateFront(10), "below FirstIndex: no-op")
	assert.Equal(t, first, j.FirstIndex())
	assert.ErrorIs(t, j.TruncateFront(62), ErrOutOfRange)
	require.NoError(t, j.TruncateFront(61), "everything: the active segment stays")
	assert.Equal(t, j.Stats().Segments, 1)
	m.dropFront(j.FirstIndex())
	requireMatches(t, j, m)
	require.NoError(t, j.Close())

	j = mustOpen(t, "/j", o)
	assert.Equal(t, m.first, j.FirstIndex())
	assert.Equal(t, uint64(60), j.LastIndex())
	requireMatches(t, j, m)
	require.NoError(t, j.Close())
}

func TestTruncateFrontEverythingKeepsNextSeq(t *testing.T) {
	_, o, j, _ := filled(t, 12, nil)
	next := j.NextSeq()
	j.w.Lock()
	require.NoError(t, j.rollLocked()) // the active segment is now empty
	j.w.Unlock()
	last := j.LastIndex()
	require.NoError(t, j.TruncateFront(last+1))
	assert.Equal(t, 1, j.Stats().Segments)
	assert.Equal(t, last+1, j.FirstIndex(), "empty: FirstIndex is LastIndex+1")
	require.NoError(t, j.Close())
	j = mustOpen(t, "/j", o)
	defer j.Close()
	assert.Equal(t, last, j.LastIndex())
	assert.Equal(t, last+1, j.FirstIndex())
	assert.Equal(t, next, j.NextSeq(), "the segment header carries NextSeq across an empty journal")
	info, err := j.Append(entryGroups(5, 10))
	require.NoError(t, err)
	assert.Equal(t, last+1, info.Index)
	assert.Equal(t, next, info.FirstSeq)
}

func TestRetention(t *testing.T) {
	t.Run("by bytes, automatic at each roll", func(t *testing.T) {
		_, _, j, m := filled(t, 100, func(o *Options) { o.RetentionBytes = 8 << 10 })
		defer j.Close()
		st := j.Stats()
		assert.Greater(t, st.RemovedSegments, uint64(0))
		assert.LessOrEqual(t, st.Bytes, int64(8<<10)+o2k(j), "only the active segment may exceed the budget")
		m.dropFront(j.FirstIndex())
		requireMatches(t, j, m)
	})
	t.Run("by age, judged by the entries' timestamps", func(t *testing.T) {
		_, _, j, m := filled(t, 40, func(o *Options) { o.RetentionAge = time.Hour })
		defer j.Close()
		assert.Zero(t, j.Stats().RemovedSegments, "everything is younger than an hour")
		removed, err := j.EnforceRetention(time.Now())
		require.NoError(t, err)
		assert.Zero(t, removed)
		segs := j.Stats().Segments
		removed, err = j.EnforceRetention(time.Now().Add(2 * time.Hour))
		require.NoError(t, err)
		assert.Equal(t, segs-1, removed, "every sealed segment is old; the active one stays")
		m.dropFront(j.FirstIndex())
		requireMatches(t, j, m)
	})
	t.Run("off by default", func(t *testing.T) {
		_, _, j, _ := filled(t, 40, nil)
		defer j.Close()
		removed, err := j.EnforceRetention(time.Now().Add(1000 * time.Hour))
		require.NoError(t, err)
		assert.Zero(t, removed)
	})
}

// o2k is the size of the active segment, which retention never removes.
func o2k(j *Journal) int64 {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.mu.segments[len(j.mu.segments)-1].size
}

func TestTruncateBack(t *testing.T) {
	tests := []struct {
		name string
		to   func(j *Journal) uint64
	}{
		{"inside the active segment", func(j *Journal) uint64 { return j.LastIndex() - 1 }},
		{"to the start of the active segment", func(j *Journal) uint64 { return j.w.seg.firstIndex - 1 }},
		{"across several segments", func(j *Journal) uint64 { return j.LastIndex() - 17 }},
		{"to the first segment's middle", func(j *Journal) uint64 { return 2 }},
		{"everything", func(j *Journal) uint64 { return 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, o, j, m := filled(t, 40, nil)
			to := tt.to(j)
			wantSeq := uint64(0)
			if to > 0 {
				wantSeq = m.seqs[to] // seq of entry to+1
			}
			require.NoError(t, j.TruncateBack(to))
			assert.Equal(t, to, j.LastIndex())
			assert.Equal(t, wantSeq, j.NextSeq())
			assert.ErrorIs(t, j.Read(to+1, func(*Entry) error { return nil }), ErrOutOfRange)
			m.dropBack(to)
			if to > 0 {
				requireMatches(t, j, m)
			}
			for i := range 8 { // the journal continues from to+1 and rolls normally
				g := entryGroups(100+i, 300)
				info, err := j.Append(g)
				require.NoError(t, err)
				require.Equal(t, to+1+uint64(i), info.Index)
				if i == 0 {
					require.Equal(t, wantSeq, info.FirstSeq)
				}
				m.add(info, g)
			}
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
			j = mustOpen(t, "/j", o)
			assert.False(t, j.RepairReport().Truncated)
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
		})
	}
	t.Run("no-op and below the retained range", func(t *testing.T) {
		_, _, j, m := filled(t, 40, nil)
		defer j.Close()
		require.NoError(t, j.TruncateBack(40))
		require.NoError(t, j.TruncateBack(1000))
		requireMatches(t, j, m)
		require.NoError(t, j.TruncateFront(20))
		first := j.FirstIndex()
		assert.ErrorIs(t, j.TruncateBack(first-2), ErrTruncated)
		require.NoError(t, j.TruncateBack(first-1), "to just before the first retained entry: empty")
		assert.Equal(t, first, j.FirstIndex())
		assert.Equal(t, first-1, j.LastIndex())
	})
}

// TestRemovedSegmentWaitsForReaders: a segment removed while an iterator
// pins it is renamed *.dead, stays readable, and is deleted once released.
func TestRemovedSegmentWaitsForReaders(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 2<<10)
			j := mustOpen(t, tfs.dir, o)
			for i := range 30 {
				_, err := j.Append(entryGroups(i, 150))
				require.NoError(t, err)
			}
			it := j.NewIterator(1)
			require.True(t, it.Next())
			firstSeg := segmentPaths(t, tfs.fs, tfs.dir)[0]

			require.NoError(t, j.TruncateFront(25))
			_, err := tfs.fs.Stat(firstSeg)
			assert.Error(t, err, "the name is gone")
			_, err = tfs.fs.Stat(firstSeg + deadSuffix)
			require.NoError(t, err, "the file waits for the reader")

			n := 1
			for it.Next() { // the pinned segment still reads; then ErrTruncated
				n++
			}
			assert.ErrorIs(t, it.Err(), ErrTruncated)
			assert.Greater(t, n, 1)
			require.NoError(t, it.Close())

			require.NoError(t, j.TruncateFront(26)) // sweeps the graveyard
			_, err = tfs.fs.Stat(firstSeg + deadSuffix)
			assert.Error(t, err, "deleted after the reader released it")
			require.NoError(t, j.Close())
		})
	}
}

// TestTruncateBackUnderAReader: TruncateBack rewrites a segment that an
// iterator has mapped; the iterator's bytes stay valid (no SIGBUS) and it
// notices the truncation.
func TestTruncateBackUnderAReader(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 2<<10)
			j := mustOpen(t, tfs.dir, o)
			defer j.Close()
			for i := range 30 {
				_, err := j.Append(entryGroups(i, 150))
				require.NoError(t, err)
			}
			it := j.NewIterator(1)
			defer it.Close()
			require.True(t, it.Next())
			payload := it.Entry().Payload
			require.NoError(t, j.TruncateBack(2))
			assert.NotEmpty(t, payload[len(payload)-1:], "the pinned bytes are still mapped")
			require.True(t, it.Next())
			assert.Equal(t, uint64(2), it.Entry().Index)
			assert.False(t, it.Next())
			assert.NoError(t, it.Err())
		})
	}
}
