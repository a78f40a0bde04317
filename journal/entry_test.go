package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeEntries writes n entries with WriteEntry: every kind, empty
// KindGroups entries among them, the term growing every few entries (a
// new term every 7th entry, as after elections). It returns the model.
func writeEntries(t *testing.T, j *Journal, m *testModel, n int) {
	t.Helper()
	for i := range n {
		index := j.LastIndex() + 1
		var kind EntryKind
		var payload []byte
		switch i % 5 {
		case 0:
			kind = KindGroups // empty: raft's entry on becoming leader
		case 1:
			kind, payload = KindConfChange, []byte(fmt.Sprintf("conf change %d", index))
		case 2:
			kind = KindConfChange // an empty conf change
		default:
			kind, payload = KindGroups, bytes.Join(entryGroups(int(index), 40+i*13%300), nil)
		}
		info, err := j.WriteEntry(index, 3+index/7, kind, payload)
		require.NoError(t, err)
		m.addEntry(info, payload)
	}
	require.NoError(t, j.Sync())
}

// TestWriteEntryRejects: an index other than LastIndex()+1, a malformed
// KindGroups payload, an unknown kind and an oversized payload are
// refused; nothing is written (LastIndex, NextSeq, the bytes and the write
// counter are unchanged); the journal is not failed; the next valid
// WriteEntry succeeds.
func TestWriteEntryRejects(t *testing.T) {
	o := testOptions(vfs.NewMem(), 4<<10)
	o.MaxEntrySize = 2000
	j := mustOpen(t, "/j", o)
	defer j.Close()
	m := &testModel{first: 1}
	writeEntries(t, j, m, 12)
	last := j.LastIndex()
	g := entryGroups(1, 20)[0]
	withSize := func(size uint32) []byte {
		b := bytes.Clone(g)
		binary.LittleEndian.PutUint32(b[groupOffSize:], size)
		return b
	}
	valid := bytes.Join(entryGroups(5, 50), nil)
	tests := []struct {
		name    string
		index   uint64
		kind    EntryKind
		payload []byte
		want    error
	}{
		{"gap", last + 2, KindGroups, valid, ErrInvalidIndex},
		{"overwrite the last entry", last, KindGroups, valid, ErrInvalidIndex},
		{"overwrite the first entry", 1, KindConfChange, nil, ErrInvalidIndex},
		{"index 0", 0, KindGroups, nil, ErrInvalidIndex},
		{"far ahead", math.MaxUint64, KindGroups, nil, ErrInvalidIndex},
		{"bytes shorter than a group header", last + 1, KindGroups, g[:10], ErrCorrupt},
		{"size field larger than the payload", last + 1, KindGroups, withSize(uint32(len(g) + 1)), ErrCorrupt},
		{"size field below a group header", last + 1, KindGroups, withSize(groupFixedSize + 1), ErrCorrupt},
		{"size field zero", last + 1, KindGroups, withSize(0), ErrCorrupt},
		{"a valid group, then garbage", last + 1, KindGroups, append(bytes.Clone(g), 1, 2, 3), ErrCorrupt},
		{"a valid group, then a torn one", last + 1, KindGroups, append(bytes.Clone(g), g[:len(g)-1]...), ErrCorrupt},
		{"unknown kind", last + 1, KindConfChange + 1, nil, ErrCorrupt},
		{"kind 255", last + 1, 255, []byte("x"), ErrCorrupt},
		{"too large", last + 1, KindConfChange, make([]byte, 2001), ErrEntryTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := j.Stats()
			_, err := j.WriteEntry(tt.index, 9, tt.kind, tt.payload)
			require.ErrorIs(t, err, tt.want)
			assert.ErrorContains(t, err, "journal: ")
			after := j.Stats()
			assert.Equal(t, before.LastIndex, after.LastIndex, "nothing written")
			assert.Equal(t, before.NextSeq, after.NextSeq)
			assert.Equal(t, before.Bytes, after.Bytes)
			assert.Equal(t, before.Writes, after.Writes)
			assert.NoError(t, j.Err(), "a refused entry does not fail the journal")
		})
	}
	info, err := j.WriteEntry(last+1, 99, KindGroups, valid)
	require.NoError(t, err)
	assert.Equal(t, EntryInfo{Index: last + 1, Term: 99, Kind: KindGroups, FirstSeq: j.NextSeq() - uint64(info.Records),
		Records: entryRecords(entryGroups(5, 50)), Groups: len(entryGroups(5, 50)), Timestamp: info.Timestamp}, info)
	m.addEntry(info, valid)
	requireMatches(t, j, m)

	require.NoError(t, j.Close())
	_, err = j.WriteEntry(last+2, 99, KindGroups, nil)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = j.Term(1)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = j.Info(1)
	assert.ErrorIs(t, err, ErrClosed)
}

// TestWriteEntryCounts: records and groups are counted from a KindGroups
// payload exactly as Write counts its groups; other kinds have none; the
// FirstSeq of each entry continues NextSeq; Write and WriteEntry
// interleave.
func TestWriteEntryCounts(t *testing.T) {
	j := mustOpen(t, "/j", testOptions(vfs.NewMem(), 1<<20))
	defer j.Close()
	m := &testModel{first: 1}
	for i := range 12 {
		groups := entryGroups(i, 30)
		payload := bytes.Join(groups, nil)
		seq := j.NextSeq()
		var info EntryInfo
		var err error
		switch i % 4 {
		case 0:
			info, err = j.WriteTerm(uint64(i), groups)
		case 1:
			info, err = j.WriteEntry(j.LastIndex()+1, uint64(i), KindGroups, payload)
		case 2:
			info, err = j.WriteEntry(j.LastIndex()+1, uint64(i), KindConfChange, payload) // opaque: not counted
		case 3:
			payload = nil
			info, err = j.WriteEntry(j.LastIndex()+1, uint64(i), KindGroups, nil)
		}
		require.NoError(t, err)
		assert.Equal(t, seq, info.FirstSeq, "entry %d continues NextSeq", info.Index)
		switch i % 4 {
		case 0, 1:
			assert.Equal(t, entryRecords(groups), info.Records)
			assert.Equal(t, len(groups), info.Groups)
			assert.Equal(t, KindGroups, info.Kind)
		case 2:
			assert.Zero(t, info.Records)
			assert.Zero(t, info.Groups)
			assert.Equal(t, KindConfChange, info.Kind)
		case 3:
			assert.Zero(t, info.Records)
			assert.Zero(t, info.Groups)
		}
		m.addEntry(info, payload)
	}
	requireMatches(t, j, m)
}

// TestWriteEntryRoundTrip writes entries of every kind with changing terms
// across many segments and reads them back (Read, Iterator, Info, Term)
// before and after reopening: sealed segments taken from their index
// files, scanned (ScanSealed, and with the index files removed), and taken
// from version-1 index files (no term runs: filled on first use).
func TestWriteEntryRoundTrip(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 2<<10)
			j := mustOpen(t, tfs.dir, o)
			m := &testModel{first: 1}
			writeEntries(t, j, m, 150)
			require.Greater(t, j.Stats().Segments, 10, "the entries roll across segments")
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
			sealed := len(segmentPaths(t, tfs.fs, tfs.dir)) - 1

			reopen := func(t *testing.T, o *Options) Stats {
				j := mustOpen(t, tfs.dir, o)
				defer j.Close()
				assert.Equal(t, RepairReport{}, j.RepairReport())
				requireMatches(t, j, m)
				return j.Stats()
			}
			scan := *o
			scan.ScanSealed = true
			t.Run("indexed", func(t *testing.T) {
				assert.Equal(t, sealed, reopen(t, o).OpenIndexed)
			})
			t.Run("scan sealed", func(t *testing.T) {
				st := reopen(t, &scan)
				assert.Equal(t, sealed, st.OpenScanned)
				assert.Zero(t, st.OpenIndexesWritten, "version-2 indexes are kept")
			})
			t.Run("indexes removed", func(t *testing.T) {
				for _, p := range indexPaths(t, tfs.fs, tfs.dir) {
					require.NoError(t, tfs.fs.Remove(p))
				}
				st := reopen(t, o)
				assert.Equal(t, sealed, st.OpenScanned)
				assert.Equal(t, sealed, st.OpenIndexesWritten)
			})
			t.Run("version-1 indexes", func(t *testing.T) {
				downgradeIndexes(t, tfs.fs, tfs.dir)
				j := mustOpen(t, tfs.dir, o)
				assert.Equal(t, sealed, j.Stats().OpenIndexed, "version-1 indexes are accepted")
				assert.Equal(t, sealed, unknownTerms(j), "their segments' term runs are not known yet")
				requireMatches(t, j, m)
				assert.Zero(t, unknownTerms(j), "Term filled them")
				require.NoError(t, j.Close())
				st := reopen(t, &scan)
				assert.Equal(t, sealed, st.OpenIndexesWritten, "a scan upgrades version-1 indexes")
				st = reopen(t, o)
				assert.Equal(t, sealed, st.OpenIndexed)
			})
		})
	}
}

// unknownTerms counts the segments whose term runs are not filled.
func unknownTerms(j *Journal) int {
	j.mu.RLock()
	defer j.mu.RUnlock()
	n := 0
	for _, s := range j.mu.segments {
		if !s.termsKnown {
			n++
		}
	}
	return n
}

// TestWriteEntryReplacesSuffix is raft's log-matching repair: TruncateBack
// drops a conflicting suffix (in the middle of a term run, at a run's
// boundary, across segments, or everything), and WriteEntry continues
// with new terms. Term, Info, Read and the iterator agree with the model
// at once and after a reopen.
func TestWriteEntryReplacesSuffix(t *testing.T) {
	tests := []struct {
		name string
		to   func(j *Journal, m *testModel) uint64
	}{
		{"inside a term run of the active segment", func(j *Journal, m *testModel) uint64 { return j.LastIndex() - 2 }},
		{"at a term boundary", func(j *Journal, m *testModel) uint64 {
			for i := m.last() - 1; i > m.first; i-- {
				if m.terms[i-m.first] != m.terms[i+1-m.first] {
					return i
				}
			}
			panic("no term change")
		}},
		{"inside a term run, across segments", func(j *Journal, m *testModel) uint64 {
			// The middle of a run in a sealed segment several segments back.
			j.mu.RLock()
			defer j.mu.RUnlock()
			s := j.mu.segments[len(j.mu.segments)-4]
			return s.firstIndex + uint64(len(s.offsets))/2
		}},
		{"to the first entry", func(j *Journal, m *testModel) uint64 { return 1 }},
		{"everything", func(j *Journal, m *testModel) uint64 { return 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			o := testOptions(fs, 1<<10)
			j := mustOpen(t, "/j", o)
			m := &testModel{first: 1}
			writeEntries(t, j, m, 80)
			require.Greater(t, j.Stats().Segments, 5)
			to := tt.to(j, m)
			require.Less(t, to, j.LastIndex())
			require.NoError(t, j.TruncateBack(to))
			m.dropBack(to)
			_, err := j.Term(to + 1)
			require.ErrorIs(t, err, ErrOutOfRange)
			// The new leader's entries: a higher term, every kind.
			newTerm := uint64(100)
			if len(m.terms) > 0 {
				newTerm = m.terms[len(m.terms)-1] + 10
			}
			for k := range 25 {
				kind, payload := KindGroups, bytes.Join(entryGroups(k, 90), nil)
				if k%3 == 1 {
					kind, payload = KindConfChange, []byte("v2")
				}
				if k == 12 {
					newTerm++ // and another election
				}
				info, err := j.WriteEntry(to+1+uint64(k), newTerm, kind, payload)
				require.NoError(t, err)
				m.addEntry(info, payload)
			}
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
			j = mustOpen(t, "/j", o)
			assert.False(t, j.RepairReport().Truncated)
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
		})
	}
}

// TestWriteEntryTruncateFront: dropping whole segments from the front
// (raft log compaction) leaves Term and Info answering ErrTruncated below
// the new FirstIndex and the rest intact; WriteEntry continues at the end.
func TestWriteEntryTruncateFront(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 1<<10)
	j := mustOpen(t, "/j", o)
	defer j.Close()
	m := &testModel{first: 1}
	writeEntries(t, j, m, 60)
	require.NoError(t, j.TruncateFront(30))
	first := j.FirstIndex()
	require.Greater(t, first, uint64(10))
	m.dropFront(first)
	_, err := j.Term(first - 1)
	assert.ErrorIs(t, err, ErrTruncated)
	_, err = j.Info(first - 1)
	assert.ErrorIs(t, err, ErrTruncated)
	_, err = j.Term(j.LastIndex() + 1)
	assert.ErrorIs(t, err, ErrOutOfRange)
	_, err = j.Info(j.LastIndex() + 1)
	assert.ErrorIs(t, err, ErrOutOfRange)
	requireMatches(t, j, m)
	writeEntries(t, j, m, 10)
	requireMatches(t, j, m)
}

// TestInfoChecksTheHeader: Info reads only the 64-byte frame header; a
// header whose checked fields are damaged is ErrCorrupt with the file and
// offset; damage Info cannot see (a kind changed to another valid kind, a
// payload byte) is reported by Read. The damage is in a sealed segment
// that Open takes from its index file, so Open does not read it.
func TestInfoChecksTheHeader(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 2<<10)
	j := mustOpen(t, "/j", o)
	m := &testModel{first: 1}
	writeEntries(t, j, m, 40)
	require.NoError(t, j.Close())
	seg := segmentPaths(t, fs, "/j")[0]
	good := readTestFile(t, fs, seg)
	offs := frameOffsets(t, good)
	require.Greater(t, len(offs), 3, "entry 2 is not the segment's last (the index checks that one)")
	at := offs[1] // entry 2: a conf change
	require.Equal(t, byte(KindConfChange), good[at+frameOffFlags])

	tests := []struct {
		name    string
		offset  int
		value   byte
		corrupt bool
	}{
		{"magic", frameOffMagic, 'X', true},
		{"version", frameOffVersion, segmentVersion1, true},
		{"unknown kind", frameOffFlags, 7, true},
		{"reserved", frameOffReserved, 1, true},
		{"index", frameOffIndex, 9, true},
		{"length", frameOffLength, 200, true},
		{"another valid kind", frameOffFlags, byte(KindGroups), false},
		{"payload", frameHeaderSize + 1, '!', false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := bytes.Clone(good)
			d[at+tt.offset] = tt.value
			writeTestFile(t, fs, seg, d)
			defer writeTestFile(t, fs, seg, good)
			j := mustOpen(t, "/j", o)
			defer j.Close()
			require.Zero(t, j.Stats().OpenScanned, "the damaged segment was not read at Open")
			_, err := j.Info(2)
			if tt.corrupt {
				require.ErrorIs(t, err, ErrCorrupt)
				assert.ErrorContains(t, err, fmt.Sprintf("%s at offset %d", segmentName(1), at))
			} else {
				require.NoError(t, err)
			}
			assert.ErrorIs(t, j.Read(2, func(*Entry) error { return nil }), ErrCorrupt, "Read checks the CRC")
		})
	}
}

// TestFirstIndexOption: a new journal starts at Options.FirstIndex and
// FirstSeq (a raft snapshot installed into a fresh directory); a reopen
// keeps where it is, empty or not; an existing directory ignores them.
func TestFirstIndexOption(t *testing.T) {
	tests := []struct {
		name             string
		firstIndex, seq  uint64
		wantFirst, wantS uint64
	}{
		{"defaults", 0, 0, 1, 0},
		{"one", 1, 0, 1, 0},
		{"a snapshot at 1000", 1001, 52_000, 1001, 52_000},
		{"a large index", 1 << 62, 7, 1 << 62, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			o := testOptions(fs, 1<<10)
			o.FirstIndex, o.FirstSeq = tt.firstIndex, tt.seq
			check := func(j *Journal, last uint64, what string) {
				t.Helper()
				assert.Equal(t, tt.wantFirst, j.FirstIndex(), what)
				assert.Equal(t, last, j.LastIndex(), what)
				_, err := j.Term(tt.wantFirst - 1)
				assert.ErrorIs(t, err, ErrTruncated, "%s: the entry before the first is not the journal's", what)
			}
			j := mustOpen(t, "/j", o)
			check(j, tt.wantFirst-1, "fresh")
			assert.Equal(t, tt.wantS, j.NextSeq())
			_, err := j.Term(tt.wantFirst)
			assert.ErrorIs(t, err, ErrOutOfRange)
			require.NoError(t, j.Close())

			j = mustOpen(t, "/j", o)
			check(j, tt.wantFirst-1, "reopened empty")
			assert.Equal(t, tt.wantS, j.NextSeq())
			_, err = j.WriteEntry(tt.wantFirst+1, 5, KindGroups, nil)
			assert.ErrorIs(t, err, ErrInvalidIndex)
			m := &testModel{first: tt.wantFirst}
			writeEntries(t, j, m, 30)
			assert.Equal(t, tt.wantS, m.seqs[0], "the first entry's seq is FirstSeq")
			require.NoError(t, j.Close())

			other := *o
			other.FirstIndex, other.FirstSeq = 5, 5
			j = mustOpen(t, "/j", &other)
			check(j, m.last(), "reopened with other options")
			requireMatches(t, j, m)
			if tt.wantFirst >= 2 {
				assert.ErrorIs(t, j.TruncateBack(tt.wantFirst-2), ErrTruncated)
			}
			require.NoError(t, j.TruncateBack(tt.wantFirst-1), "to empty")
			require.NoError(t, j.Close())
			j = mustOpen(t, "/j", &other)
			defer j.Close()
			check(j, tt.wantFirst-1, "truncated to empty, reopened")
			assert.Equal(t, tt.wantS, j.NextSeq())
		})
	}
	t.Run("invalid", func(t *testing.T) {
		o := testOptions(vfs.NewMem(), 1<<10)
		o.FirstIndex = math.MaxUint64
		_, err := Open("/j", o)
		assert.ErrorContains(t, err, "journal: invalid options: FirstIndex")
	})
}
