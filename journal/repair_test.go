package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTestFile(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

func writeTestFile(t *testing.T, fs vfs.FS, path string, data []byte) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = f.Write(bytes.Clone(data))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// segmentPaths returns the segment files of dir in index order.
func segmentPaths(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			out = append(out, fs.PathJoin(dir, n))
		}
	}
	require.NotEmpty(t, out)
	slicesSort(out)
	return out
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for k := i; k > 0 && s[k] < s[k-1]; k-- {
			s[k], s[k-1] = s[k-1], s[k]
		}
	}
}

// frameOffsets returns the frame offsets of a segment file's bytes (an
// active segment on disk may end in zeros: free space).
func frameOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	for off := segmentHeaderSize; off < len(data); {
		if zeroTail(data[off:]) {
			break
		}
		_, n, p := decodeFrame(data[off:], data[segOffVersion], fileSeed(t, data))
		require.Equal(t, frameOK, p, "offset %d", off)
		offs = append(offs, off)
		off += n
	}
	return offs
}

// fixture writes n entries with Append (each synced) into a fresh MemFS
// journal and closes it.
func fixture(t *testing.T, n int, segmentSize int64) (vfs.FS, *Options, *testModel) {
	t.Helper()
	fs := vfs.NewMem()
	o := testOptions(fs, segmentSize)
	j := mustOpen(t, "/j", o)
	m := &testModel{first: 1}
	for i := range n {
		g := entryGroups(i, 100+i*13%300)
		info, err := j.Append(g)
		require.NoError(t, err)
		m.add(info, g)
	}
	require.NoError(t, j.Close())
	return fs, o, m
}

// fileSeed returns the CRC seed of the segment whose bytes data are (its
// header's version and salt).
func fileSeed(t *testing.T, data []byte) uint32 {
	t.Helper()
	h, problem := decodeSegmentHeader(data)
	require.Empty(t, problem)
	return crcSeed(h.version, h.salt)
}

func plausibleHeader(index uint64, length uint32, synced uint64) []byte {
	b := make([]byte, frameHeaderSize)
	putFrameHeader(b, currentSegmentVersion, &frameHeader{index: index, firstSeq: 1, length: length, synced: synced, records: 1, groups: 1})
	binary.LittleEndian.PutUint32(b[frameOffCRC:], 0xdeadbeef)
	return b
}

func garbage(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestRepairTornTail(t *testing.T) {
	const n = 12
	type damage struct {
		name string
		// apply returns the damaged file and the length of the valid prefix.
		apply      func(data []byte, offs []int) ([]byte, int)
		keep       int    // entries that must survive
		wantReason string // RepairReport.Reason; "" means zeros to the end: free space, no repair
	}
	last := func(offs []int) int { return offs[len(offs)-1] }
	tests := []damage{
		{"cut inside the last payload", func(d []byte, o []int) ([]byte, int) { return d[:len(d)-7], last(o) }, n - 1, "payload extends past the end of the file"},
		{"cut inside the last header", func(d []byte, o []int) ([]byte, int) { return d[:last(o)+20], last(o) }, n - 1, "torn frame header"},
		{"cut right after the last header", func(d []byte, o []int) ([]byte, int) { return d[:last(o)+frameHeaderSize], last(o) }, n - 1, "payload extends past the end of the file"},
		{"zeros appended", func(d []byte, o []int) ([]byte, int) { return append(d, make([]byte, 4096)...), len(d) }, n, ""},
		{"a few zeros appended", func(d []byte, o []int) ([]byte, int) { return append(d, 0, 0, 0), len(d) }, n, ""},
		{"garbage appended", func(d []byte, o []int) ([]byte, int) { return append(d, garbage(5000, 1)...), len(d) }, n, "bad frame magic"},
		{"plausible header and garbage appended", func(d []byte, o []int) ([]byte, int) {
			return append(append(d, plausibleHeader(n+1, 100, 0)...), garbage(100, 2)...), len(d)
		}, n, "checksum mismatch"},
		{"plausible header claiming durability, bad CRC", func(d []byte, o []int) ([]byte, int) {
			return append(append(d, plausibleHeader(n+1, 100, n+1)...), garbage(100, 3)...), len(d)
		}, n, "checksum mismatch"},
		{"header with a length past the end", func(d []byte, o []int) ([]byte, int) {
			return append(append(d, plausibleHeader(n+1, 1<<20, 0)...), garbage(10, 4)...), len(d)
		}, n, "payload extends past the end of the file"},
		{"header with a length above the format limit", func(d []byte, o []int) ([]byte, int) {
			return append(d, plausibleHeader(n+1, 1<<31, 0)...), len(d)
		}, n, "payload length above the format limit"},
		{"last frame zeroed", func(d []byte, o []int) ([]byte, int) {
			copy(d[last(o):], make([]byte, len(d)-last(o)))
			return d, last(o)
		}, n - 1, ""},
		{"bit flip in the last frame", func(d []byte, o []int) ([]byte, int) {
			d[len(d)-3] ^= 0x10
			return d, last(o)
		}, n - 1, "checksum mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, o, m := fixture(t, n, 1<<20)
			seg := segmentPaths(t, fs, "/j")[0]
			data := readTestFile(t, fs, seg)
			damaged, prefix := tt.apply(bytes.Clone(data), frameOffsets(t, data))
			writeTestFile(t, fs, seg, damaged)

			j := mustOpen(t, "/j", o)
			r := j.RepairReport()
			if tt.wantReason == "" {
				// Zeros to the end are free space (as in a segment created
				// at full size): nothing is rewritten or reported, and the
				// next write overwrites them.
				assert.Equal(t, RepairReport{}, r)
			} else {
				assert.True(t, r.Truncated)
				assert.Equal(t, filepath.Base(seg), r.Segment)
				assert.Equal(t, int64(prefix), r.Offset)
				assert.Equal(t, int64(len(damaged)-prefix), r.Bytes)
				assert.Equal(t, tt.wantReason, r.Reason)
				assert.Zero(t, r.Entries)
			}
			m.payloads, m.seqs = m.payloads[:tt.keep], m.seqs[:tt.keep]
			requireMatches(t, j, m)
			assert.Equal(t, int64(prefix), j.Stats().Bytes)
			g := entryGroups(99, 10)
			info, err := j.Append(g)
			require.NoError(t, err)
			m.add(info, g)
			require.NoError(t, j.Close())

			j = mustOpen(t, "/j", o)
			assert.False(t, j.RepairReport().Truncated, "repair is idempotent")
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
		})
	}
}

// TestRepairUnsyncedEntriesAfterALostBlock: entries written after the last
// fsync may come back with a block lost in the middle (power loss keeps
// some unsynced blocks). No later frame vouches for the damaged one, so
// it is a tail, not interior corruption.
func TestRepairUnsyncedEntriesAfterALostBlock(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 1<<20)
	j := mustOpen(t, "/j", o)
	m := &testModel{first: 1}
	for i := range 5 {
		g := entryGroups(i, 200)
		info, err := j.Append(g)
		require.NoError(t, err)
		m.add(info, g)
	}
	for i := 5; i < 12; i++ { // written, never synced
		_, err := j.Write(entryGroups(i, 200))
		require.NoError(t, err)
	}
	seg := segmentPaths(t, fs, "/j")[0]
	data := readTestFile(t, fs, seg)
	require.NoError(t, j.Close())

	offs := frameOffsets(t, data)
	copy(data[offs[6]+10:offs[7]], make([]byte, offs[7]-offs[6]-10)) // entry 7 loses its tail
	writeTestFile(t, fs, seg, data)

	j = mustOpen(t, "/j", o)
	defer j.Close()
	r := j.RepairReport()
	assert.True(t, r.Truncated)
	assert.Equal(t, int64(offs[6]), r.Offset)
	assert.Equal(t, 5, r.Entries, "entries 8-12 were complete but never synced")
	g := entryGroups(5, 200)
	m.add(EntryInfo{FirstSeq: m.seqs[4] + uint64(entryRecords(entryGroups(4, 200)))}, g)
	requireMatches(t, j, m) // entry 6 was synced by nothing but is intact: kept
}

func TestInteriorCorruption(t *testing.T) {
	const n = 40
	tests := []struct {
		name    string
		damage  func(t *testing.T, fs vfs.FS, segs []string) (file string, offset int)
		message string
		single  bool // one segment only
		// readDetects: the damage leaves the sealed segment's index valid
		// (same size, same last frame), so by default Open takes the
		// segment from its index and the read of the damaged entry reports
		// it; Open reports it only with ScanSealed.
		readDetects bool
	}{
		{"bit flip in a sealed segment", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			d := readTestFile(t, fs, segs[0])
			offs := frameOffsets(t, d)
			d[offs[1]+frameHeaderSize+5] ^= 1
			writeTestFile(t, fs, segs[0], d)
			return segs[0], offs[1]
		}, "checksum mismatch in a sealed segment", false, true},
		{"torn end of a sealed segment", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			d := readTestFile(t, fs, segs[1])
			offs := frameOffsets(t, d)
			writeTestFile(t, fs, segs[1], d[:len(d)-1])
			return segs[1], offs[len(offs)-1]
		}, "in a sealed segment", false, false},
		{"zeros appended to a sealed segment", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			d := readTestFile(t, fs, segs[0])
			writeTestFile(t, fs, segs[0], append(d, make([]byte, 100)...))
			return segs[0], len(d)
		}, "zero-filled in a sealed segment", false, false},
		{"bit flip in the last segment vouched for by a later entry", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			last := segs[len(segs)-1]
			d := readTestFile(t, fs, last)
			offs := frameOffsets(t, d)
			require.Greater(t, len(offs), 2)
			d[offs[0]+frameOffTerm] ^= 0x40 // a header field: the CRC covers it
			writeTestFile(t, fs, last, d)
			return last, offs[0]
		}, "was written after index", true, false},
		{"bad segment header", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			d := readTestFile(t, fs, segs[1])
			d[segOffFirstSeq] ^= 1
			writeTestFile(t, fs, segs[1], d)
			return segs[1], 0
		}, "segment header checksum mismatch", false, false},
		{"missing middle segment", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			require.NoError(t, fs.Remove(segs[1]))
			return segs[2], 0
		}, "segment starts at index", false, false},
		{"segment renamed", func(t *testing.T, fs vfs.FS, segs []string) (string, int) {
			idx, _ := parseSegmentName(filepath.Base(segs[1]))
			other := fs.PathJoin("/j", segmentName(idx+1))
			require.NoError(t, fs.Rename(segs[1], other))
			return other, segOffFirstIndex
		}, "file name says", false, false},
	}
	for _, tt := range tests {
		for _, scan := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/scan-sealed=%v", tt.name, scan), func(t *testing.T) {
				size := int64(3 << 10)
				if tt.single {
					size = 1 << 20
				}
				fs, o, _ := fixture(t, n, size)
				o.ScanSealed = scan
				segs := segmentPaths(t, fs, "/j")
				require.True(t, tt.single || len(segs) > 3)
				file, off := tt.damage(t, fs, segs)
				where := fmt.Sprintf("%s at offset %d", filepath.Base(file), off)
				j, err := Open("/j", o)
				if tt.readDetects && !scan {
					require.NoError(t, err, "a valid index stands for the segment")
					defer j.Close()
					var readErrs []error
					for i := j.FirstIndex(); i <= j.LastIndex(); i++ {
						if err := j.Read(i, func(*Entry) error { return nil }); err != nil {
							readErrs = append(readErrs, err)
						}
					}
					require.Len(t, readErrs, 1, "exactly the damaged entry fails its read")
					require.ErrorIs(t, readErrs[0], ErrCorrupt)
					assert.ErrorContains(t, readErrs[0], where)
					return
				}
				require.ErrorIs(t, err, ErrCorrupt)
				assert.ErrorContains(t, err, where)
				assert.ErrorContains(t, err, tt.message)
			})
		}
	}
}

// TestReadDetectsLaterCorruption: bytes that change after Open (bit rot
// under a mapping or in the page cache) fail the CRC on read.
func TestReadDetectsLaterCorruption(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			o := testOptions(tfs.fs, 4<<10)
			j := mustOpen(t, tfs.dir, o)
			defer j.Close()
			for i := range 30 {
				_, err := j.Append(entryGroups(i, 200))
				require.NoError(t, err)
			}
			segs := segmentPaths(t, tfs.fs, tfs.dir)
			for _, seg := range []string{segs[0], segs[len(segs)-1]} { // sealed and active
				d := readTestFile(t, tfs.fs, seg)
				offs := frameOffsets(t, d)
				idx, _ := parseSegmentName(filepath.Base(seg))
				flipByteInPlace(t, tfs.fs, seg, int64(offs[0]+frameHeaderSize+1))
				err := j.Read(idx, func(*Entry) error { return nil })
				require.ErrorIs(t, err, ErrCorrupt, "segment %s", seg)
				assert.ErrorContains(t, err, fmt.Sprintf("%s at offset %d", filepath.Base(seg), offs[0]))
			}
		})
	}
}

// flipByteInPlace modifies one byte of a file without replacing it (the
// same inode, as bit rot would).
func flipByteInPlace(t *testing.T, fs vfs.FS, path string, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], off)
	require.NoError(t, err)
	b[0] ^= 0x20
	_, err = f.WriteAt(b[:], off)
	require.NoError(t, err)
}

func TestOpenRemovesLeftovers(t *testing.T) {
	fs, o, m := fixture(t, 10, 2<<10)
	segs := segmentPaths(t, fs, "/j")
	writeTestFile(t, fs, "/j/"+segmentName(999)+tmpSuffix, []byte("half a segment"))
	writeTestFile(t, fs, "/j/"+segmentName(0)+deadSuffix, []byte("a removed segment"))
	writeTestFile(t, fs, "/j/notes.txt", []byte("not ours"))
	j := mustOpen(t, "/j", o)
	defer j.Close()
	assert.ElementsMatch(t, []string{segmentName(999) + tmpSuffix, segmentName(0) + deadSuffix}, j.RepairReport().RemovedFiles)
	assert.False(t, j.RepairReport().Truncated)
	requireMatches(t, j, m)
	names, err := fs.List("/j")
	require.NoError(t, err)
	assert.Len(t, names, 2*len(segs)+1, "segments, the sealed ones' index files, LOCK and the foreign file remain")
}
