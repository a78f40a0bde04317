package journal

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// indexPaths returns the index files in dir, sorted.
func indexPaths(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if _, ok := parseSegIndexName(n); ok {
			out = append(out, fs.PathJoin(dir, n))
		}
	}
	slicesSort(out)
	return out
}

// TestSegmentIndexOpen: every sealed segment gets an index file when it is
// sealed; Open takes sealed segments from them without scanning; without
// them (or with ScanSealed) it scans, writes the missing ones, and reads
// the same journal either way.
func TestSegmentIndexOpen(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 4<<10)
			j := mustOpen(t, tfs.dir, o)
			m := &testModel{first: 1}
			for i := range 120 {
				g := entryGroups(i, 50+i*37%400)
				info, err := j.Append(g)
				require.NoError(t, err)
				m.add(info, g)
			}
			require.NoError(t, j.Close())
			segs := segmentPaths(t, tfs.fs, tfs.dir)
			require.Greater(t, len(segs), 5)
			idx := indexPaths(t, tfs.fs, tfs.dir)
			require.Len(t, idx, len(segs)-1, "one index per sealed segment, none for the active one")
			for i, p := range idx {
				assert.Equal(t, segIndexPath(segs[i]), p)
			}

			reopen := func(o *Options) Stats {
				j := mustOpen(t, tfs.dir, o)
				defer j.Close()
				requireMatches(t, j, m)
				assert.Equal(t, RepairReport{}, j.RepairReport(), "reading sealed segments from their index is not a repair")
				return j.Stats()
			}
			st := reopen(o)
			assert.Equal(t, len(segs)-1, st.OpenIndexed)
			assert.Zero(t, st.OpenScanned)

			scan := *o
			scan.ScanSealed = true
			st = reopen(&scan)
			assert.Equal(t, len(segs)-1, st.OpenScanned)
			assert.Zero(t, st.OpenIndexed)
			assert.Zero(t, st.OpenIndexesWritten, "valid indexes are not rewritten")

			for _, p := range idx {
				require.NoError(t, tfs.fs.Remove(p))
			}
			st = reopen(o)
			assert.Equal(t, len(segs)-1, st.OpenScanned)
			assert.Equal(t, len(segs)-1, st.OpenIndexesWritten)
			st = reopen(o)
			assert.Equal(t, len(segs)-1, st.OpenIndexed, "the indexes Open wrote are used next time")
		})
	}
}

// TestSegmentIndexDamage: an index file damaged in any way (a bit flipped
// at every byte, cut at every length, swapped with another segment's,
// left stale by a segment that changed) is never believed: Open scans the
// segment, reads the same journal and writes a fresh index.
func TestSegmentIndexDamage(t *testing.T) {
	fs, o, m := fixture(t, 40, 3<<10)
	segs := segmentPaths(t, fs, "/j")
	require.Greater(t, len(segs), 3)
	target := segIndexPath(segs[1])
	good := readTestFile(t, fs, target)

	check := func(t *testing.T, what string) {
		t.Helper()
		j, err := Open("/j", o)
		require.NoError(t, err, what)
		st := j.Stats()
		requireMatches(t, j, m)
		require.NoError(t, j.Close())
		require.Equal(t, 1, st.OpenScanned, "%s: the segment is scanned", what)
		require.Equal(t, 1, st.OpenIndexesWritten, "%s: and its index rewritten", what)
		require.Equal(t, good, readTestFile(t, fs, target), "%s: the rewritten index is the one the roll wrote", what)
	}
	for off := range good {
		d := bytes.Clone(good)
		d[off] ^= 1 << (off % 8)
		writeTestFile(t, fs, target, d)
		check(t, fmt.Sprintf("bit flip at byte %d", off))
	}
	for n := range len(good) {
		writeTestFile(t, fs, target, good[:n])
		check(t, fmt.Sprintf("cut to %d bytes", n))
	}
	writeTestFile(t, fs, target, append(bytes.Clone(good), 0))
	check(t, "one byte appended")
	writeTestFile(t, fs, target, readTestFile(t, fs, segIndexPath(segs[2])))
	check(t, "another segment's index")

	// Stale: the index describes the segment as it was; the segment has
	// since lost its last entry (size and last frame differ) or had it
	// rewritten with other content of the same length (last CRC differs).
	seg := readTestFile(t, fs, segs[1])
	offs := frameOffsets(t, seg)
	stale := bytes.Clone(seg)
	stale[offs[len(offs)-1]+frameHeaderSize] ^= 0xff // payload byte: fails the CRC if scanned
	writeTestFile(t, fs, segs[1], stale)
	j, err := Open("/j", o)
	require.NoError(t, err, "a payload flip leaves the index consistent: only a read can tell")
	last := uint64(0)
	for i := j.FirstIndex(); i <= j.LastIndex(); i++ {
		if err := j.Read(i, func(*Entry) error { return nil }); err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			last = i
		}
	}
	require.NoError(t, j.Close())
	require.NotZero(t, last, "the damaged entry fails its read")
	writeTestFile(t, fs, segs[1], seg)

	// Frame header fields the index cross-checks (the term against the last
	// term run): each change alone makes Open distrust the index (and then
	// the scan reports the damage). The kind is not cross-checked: like a
	// payload byte, a kind changed to another valid one fails the read.
	for _, field := range []int{frameOffIndex, frameOffTerm, frameOffFirstSeq, frameOffTimestamp, frameOffRecords, frameOffLength, frameOffCRC} {
		d := bytes.Clone(seg)
		d[offs[len(offs)-1]+field] ^= 1
		writeTestFile(t, fs, segs[1], d)
		_, err := Open("/j", o)
		require.ErrorIs(t, err, ErrCorrupt, "field at %d", field)
		assert.ErrorContains(t, err, fmt.Sprintf("%s at offset %d", filepath.Base(segs[1]), offs[len(offs)-1]))
	}
	writeTestFile(t, fs, segs[1], seg)
	j = mustOpen(t, "/j", o)
	requireMatches(t, j, m)
	require.NoError(t, j.Close())
}

// TestSegmentIndexLifecycle: retention removes a segment's index with it;
// TruncateBack into a sealed segment removes its index (the segment is
// active again) and the next roll writes a new one; leftovers are removed
// by Open.
func TestSegmentIndexLifecycle(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 2<<10)
	j := mustOpen(t, "/j", o)
	for i := range 60 {
		_, err := j.Append(entryGroups(i, 200))
		require.NoError(t, err)
	}
	segs := segmentPaths(t, fs, "/j")
	require.Greater(t, len(segs), 6)
	first, _ := parseSegmentName(filepath.Base(segs[2]))
	require.NoError(t, j.TruncateFront(first))
	for _, p := range segs[:2] {
		_, err := fs.Stat(segIndexPath(p))
		require.ErrorIs(t, err, os.ErrNotExist, "retention removes %s's index", p)
	}

	// Truncate back into the middle of segs[4].
	s4, _ := parseSegmentName(filepath.Base(segs[4]))
	s5, _ := parseSegmentName(filepath.Base(segs[5]))
	require.GreaterOrEqual(t, s5-s4, uint64(2), "segs[4] holds the kept entry and a dropped one")
	require.NoError(t, j.TruncateBack(s4))
	_, err := fs.Stat(segIndexPath(segs[4]))
	require.ErrorIs(t, err, os.ErrNotExist, "the segment is active again")
	m := &testModel{first: first}
	for i := first; i <= s4; i++ {
		require.NoError(t, j.Read(i, func(e *Entry) error {
			m.add(e.EntryInfo, [][]byte{bytes.Clone(e.Payload)})
			return nil
		}))
	}
	for i := range 30 {
		g := entryGroups(1000+i, 150)
		info, err := j.Append(g)
		require.NoError(t, err)
		m.add(info, g)
	}
	require.NoError(t, j.Close())
	_, err = fs.Stat(segIndexPath(segs[4]))
	require.NoError(t, err, "rolled again: sealed with a new index")

	// Leftovers: an index without a segment, and one beside the active
	// segment.
	segs = segmentPaths(t, fs, "/j")
	writeTestFile(t, fs, "/j/"+segIndexPath(segmentName(7777)), []byte("orphan"))
	writeTestFile(t, fs, segIndexPath(segs[len(segs)-1]), readTestFile(t, fs, segIndexPath(segs[0])))
	j = mustOpen(t, "/j", o)
	defer j.Close()
	assert.ElementsMatch(t, []string{segIndexPath(segmentName(7777)), segIndexPath(filepath.Base(segs[len(segs)-1]))}, j.RepairReport().RemovedFiles)
	assert.Equal(t, len(segs)-1, j.Stats().OpenIndexed)
	requireMatches(t, j, m)
}

// mappedRss sums the Rss of the process's mappings of files in dir
// (/proc/self/smaps): the pages of the journal's segment mappings that
// count in the process's RSS.
func mappedRss(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], dir)
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			require.NoError(t, err)
			total += kb << 10
		}
	}
	require.NoError(t, sc.Err())
	return total
}

// TestResidentBound: reading a whole log through the mappings leaves at
// most about MaxResidentBytes of it resident in the process, whether the
// reads come from an iterator or from Read; with the bound off, the whole
// log stays resident (which is what makes the bound's check meaningful).
func TestResidentBound(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps"); err != nil {
		t.Skip("needs /proc/self/smaps (Linux)")
	}
	const segSize = 1 << 20
	dir := t.TempDir()
	o := testOptions(vfs.Default, segSize)
	j := mustOpen(t, dir, o)
	for i := range 600 {
		_, err := j.Append(entryGroups(i, 16<<10))
		require.NoError(t, err)
	}
	require.NoError(t, j.Close())
	total := int64(0)
	for _, p := range segmentPaths(t, vfs.Default, dir) {
		st, err := os.Stat(p)
		require.NoError(t, err)
		total += st.Size()
	}
	require.Greater(t, total, int64(8*segSize))

	for _, tc := range []struct {
		name     string
		resident int64
		readAll  func(j *Journal)
	}{
		{"iterator", 3 * segSize, func(j *Journal) {
			it := j.NewIterator(0)
			defer it.Close()
			n := 0
			for it.Next() {
				n++
			}
			require.NoError(t, it.Err())
			require.Equal(t, 600, n)
		}},
		{"read", 2 * segSize, func(j *Journal) {
			for i := j.FirstIndex(); i <= j.LastIndex(); i++ {
				require.NoError(t, j.Read(i, func(*Entry) error { return nil }))
			}
		}},
		{"unbounded", -1, func(j *Journal) {
			for i := j.FirstIndex(); i <= j.LastIndex(); i++ {
				require.NoError(t, j.Read(i, func(*Entry) error { return nil }))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(vfs.Default, segSize)
			o.MaxResidentBytes = tc.resident
			j := mustOpen(t, dir, o)
			defer j.Close()
			opened := mappedRss(t, dir)
			assert.Less(t, opened, int64(segSize), "Open maps the sealed segments without touching them")
			tc.readAll(j)
			got := mappedRss(t, dir)
			if tc.resident < 0 {
				assert.Greater(t, got, total-2*segSize, "unbounded: the sealed segments read stay resident")
				return
			}
			assert.LessOrEqual(t, got, tc.resident+segSize/4, "resident after reading %d bytes", total)
			assert.LessOrEqual(t, j.resident.residentCount(), int(tc.resident/segSize))
		})
	}
}

// FuzzSegIndex: decodeSegIndex never panics on any bytes, and whatever it
// accepts, of either version, is exactly what encodeSegIndex writes in
// that version for the segment it describes (so no two byte strings decode
// to the same index, and nothing it accepts has a field it did not check:
// the term runs of version 2 included).
func FuzzSegIndex(f *testing.F) {
	seg := &segment{firstIndex: 7, firstSeq: 100, size: 32 + 64 + 10 + 64 + 20, nextSeq: 103, lastTS: 12345, lastCRC: 0xabcdef01,
		offsets: []uint32{32, 32 + 64 + 10}, terms: []termRun{{first: 7, term: 3}, {first: 8, term: 5}}, termsKnown: true}
	one := &segment{firstIndex: 1, firstSeq: 0, size: 32 + 64, nextSeq: 1, offsets: []uint32{32}, terms: []termRun{{first: 1}}, termsKnown: true}
	for _, version := range []uint8{segIndexVersion1, segIndexVersion2} {
		f.Add(encodeSegIndex(seg, version))
		f.Add(encodeSegIndex(one, version))
	}
	f.Add([]byte{})
	f.Add(make([]byte, segIndexHeaderSize+8))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, problem := decodeSegIndex(b)
		if problem != "" {
			return
		}
		s := &segment{firstIndex: x.firstIndex, firstSeq: x.firstSeq, size: x.size, nextSeq: x.nextSeq,
			lastTS: x.lastTS, lastCRC: x.lastCRC, offsets: x.offsets, terms: x.terms, termsKnown: x.terms != nil}
		if !bytes.Equal(encodeSegIndex(s, x.version), b) {
			t.Fatalf("accepted bytes that do not re-encode to themselves: %x", b)
		}
		if x.version == segIndexVersion2 {
			// The runs start at the segment's first entry, lie inside it,
			// and each run's first entry has the run's term.
			last := x.firstIndex + uint64(len(x.offsets)) - 1
			if x.terms[0].first != x.firstIndex {
				t.Fatalf("the first run starts at %d, the segment at %d", x.terms[0].first, x.firstIndex)
			}
			for _, r := range x.terms {
				if r.first-x.firstIndex > last-x.firstIndex {
					t.Fatalf("run at %d outside the segment [%d, %d]", r.first, x.firstIndex, last)
				}
				if got := termAt(x.terms, r.first); got != r.term {
					t.Fatalf("entry %d: term %d, its run says %d", r.first, got, r.term)
				}
			}
		}
	})
}
