package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

// snapshotDir copies every file of src into a new directory, as a kill -9
// would leave them (the journal in src stays open).
func snapshotDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	names, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range names {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// TestSizedSegments (decision 0007): on disk, the active segment is created
// at SegmentSize and appends write into it without changing its size;
// sealing and Close trim a segment to its frames; a journal left open (as
// by kill -9) reopens with the zero tail as free space, no repair, and
// keeps writing at the right place; DisablePreallocation turns it off.
func TestSizedSegments(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("segment sizing uses fallocate (Linux)")
	}
	const segSize = 256 << 10
	dir := t.TempDir()
	o := testOptions(vfs.Default, segSize)
	j := mustOpen(t, dir, o)
	m := &testModel{first: 1}
	add := func(j *Journal, i int) {
		g := entryGroups(i, 700)
		info, err := j.Append(g)
		require.NoError(t, err)
		m.add(info, g)
	}
	add(j, 0)
	active := filepath.Join(dir, segmentName(1))
	if fileSize(t, active) != segSize {
		t.Skipf("this file system does not support fallocate (active segment is %d bytes)", fileSize(t, active))
	}
	for i := 1; i < 1000; i++ {
		add(j, i)
	}
	segs := segmentPaths(t, vfs.Default, dir)
	require.Greater(t, len(segs), 2)
	for _, p := range segs[:len(segs)-1] {
		idx, _ := parseSegmentName(filepath.Base(p))
		got := fileSize(t, p)
		assert.Less(t, got, int64(segSize), "sealed %s is trimmed to its frames", p)
		require.NoError(t, j.Read(idx, func(*Entry) error { return nil }))
	}
	last := segs[len(segs)-1]
	assert.Equal(t, int64(segSize), fileSize(t, last), "the active segment is full size")

	// A crash image: the files as they are while the journal is open.
	crashed := snapshotDir(t, dir)
	require.NoError(t, j.Close())
	assert.Less(t, fileSize(t, last), int64(segSize), "Close trims the active segment")
	j = mustOpen(t, dir, o)
	requireMatches(t, j, m)
	require.NoError(t, j.Close())

	j = mustOpen(t, crashed, o)
	assert.Equal(t, RepairReport{}, j.RepairReport(), "the zero tail is free space, not a repair")
	requireMatches(t, j, m)
	assert.Equal(t, int64(segSize), fileSize(t, filepath.Join(crashed, filepath.Base(last))))
	g := entryGroups(5000, 300)
	info, err := j.Append(g)
	require.NoError(t, err)
	assert.Equal(t, uint64(1001), info.Index)
	m.add(info, g)
	require.NoError(t, j.Close())
	j = mustOpen(t, crashed, o)
	requireMatches(t, j, m)
	require.NoError(t, j.Close())

	off := testOptions(vfs.Default, segSize)
	off.DisablePreallocation = true
	plain := t.TempDir()
	j = mustOpen(t, plain, off)
	_, err = j.Append(entryGroups(1, 100))
	require.NoError(t, err)
	assert.Less(t, fileSize(t, filepath.Join(plain, segmentName(1))), int64(4096), "DisablePreallocation: the file grows")
	require.NoError(t, j.Close())
}

// TestSizedSegmentTornAtEveryOffset: the last frame of a full-size active
// segment is torn at every byte offset the way a power loss tears it
// inside preallocated blocks (its bytes from the cut on read as zeros).
// Open keeps every earlier entry; a cut that leaves part of the frame is
// repaired (and reported), a cut at the frame's start is free space; the
// next append continues at the right index in a full-size segment again.
func TestSizedSegmentTornAtEveryOffset(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("segment sizing uses fallocate (Linux)")
	}
	const segSize = 64 << 10
	src := t.TempDir()
	o := testOptions(vfs.Default, segSize)
	j := mustOpen(t, src, o)
	m := &testModel{first: 1}
	for i := range 6 {
		g := entryGroups(i, 120+i*10)
		info, err := j.Append(g)
		require.NoError(t, err)
		m.add(info, g)
	}
	image := snapshotDir(t, src)
	require.NoError(t, j.Close())
	seg := filepath.Join(image, segmentName(1))
	full, err := os.ReadFile(seg)
	require.NoError(t, err)
	if len(full) != segSize {
		t.Skipf("this file system does not support fallocate (segment is %d bytes)", len(full))
	}
	offs := frameOffsets(t, full)
	lastAt := offs[len(offs)-1]
	_, lastLen, p := decodeFrame(full[lastAt:], full[segOffVersion], fileSeed(t, full))
	require.Equal(t, frameOK, p)
	step := 1
	if testing.Short() {
		step = 7
	}
	for cut := lastAt; cut <= lastAt+lastLen; cut += step {
		what := fmt.Sprintf("cut at %d (last frame %d-%d)", cut, lastAt, lastAt+lastLen)
		dir := t.TempDir()
		torn := bytes.Clone(full)
		clear(torn[cut:])
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(1)), torn, 0o644))
		j, err := Open(dir, o)
		require.NoError(t, err, what)
		keep := len(m.payloads) - 1
		if cut == lastAt+lastLen {
			keep++ // nothing torn
		}
		want := &testModel{first: 1, payloads: m.payloads[:keep], seqs: m.seqs[:keep], terms: m.terms[:keep], kinds: m.kinds[:keep]}
		requireMatches(t, j, want)
		rep := j.RepairReport()
		assert.Equal(t, cut > lastAt && cut < lastAt+lastLen, rep.Truncated, "%s: %+v", what, rep)
		info, err := j.Append(entryGroups(99, 50))
		require.NoError(t, err, what)
		assert.Equal(t, uint64(keep+1), info.Index, what)
		assert.Equal(t, int64(segSize), fileSize(t, filepath.Join(dir, segmentName(1))), "%s: full size again", what)
		require.NoError(t, j.Close())
	}
}
