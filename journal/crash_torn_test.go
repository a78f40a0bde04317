package journal_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

// The on-disk layout these tests rely on (docs/format.md, journal/doc.go):
// a segment file is a 32-byte segment header followed by frames; a frame is
// a 64-byte header followed by the payload. Frame header fields used here:
// magic "BBJE" at 0, version 3 at 4 (the segment's), kind at 5, index at 8,
// term at 16, length at 56, CRC at 60.
// tornLayout checks them on a real file, so a layout change fails loudly
// here instead of making the offsets below meaningless.
const (
	segmentHeaderSize = 32
	frameHeaderSize   = 64
	frameMagic        = "BBJE"
	frameVersion      = 3
)

const tornDir = "/j"

// tornFixture is a closed journal whose only segment holds entries; the
// last entry's frame starts at lastStart.
type tornFixture struct {
	fs        *crashfs.FS
	seg       string // full path of the segment file
	segName   string
	full      []byte // the segment's bytes
	model     []modelEntry
	lastStart int
}

// tornEntry describes a fixture entry: its kind, its term, and the size
// of its value (KindGroups: one group of one record; 0 is an empty entry,
// no group at all) or of its opaque payload (KindConfChange).
type tornEntry struct {
	kind journal.EntryKind
	term uint64
	size int
}

// groupsOf returns KindGroups entries of the given value sizes, term 0, as
// Write makes them.
func groupsOf(sizes ...int) []tornEntry {
	out := make([]tornEntry, len(sizes))
	for i, n := range sizes {
		out[i] = tornEntry{kind: journal.KindGroups, size: n}
	}
	return out
}

// newTornFixture appends KindGroups entries with the given value sizes.
func newTornFixture(t testing.TB, rng *rand.Rand, valueSizes ...int) *tornFixture {
	t.Helper()
	return newTornFixtureOf(t, rng, groupsOf(valueSizes...)...)
}

// newTornFixtureOf writes the entries with WriteEntry, each followed by
// Sync (so every frame records its predecessor as synced), and closes.
func newTornFixtureOf(t testing.TB, rng *rand.Rand, entries ...tornEntry) *tornFixture {
	t.Helper()
	fx := &tornFixture{fs: crashfs.New()}
	j, err := openOn(fx.fs, tornDir, 0)
	require.NoError(t, err)
	for _, te := range entries {
		e := modelEntry{kind: te.kind, term: te.term}
		switch {
		case te.kind == journal.KindConfChange:
			e.payload = make([]byte, te.size)
			for i := range e.payload {
				e.payload[i] = byte(rng.Uint32())
			}
		case te.size > 0:
			_, e.payload = payloadGroups(rng, te.size)
		}
		_, err := writeModelEntry(j, e)
		require.NoError(t, err)
		require.NoError(t, j.Sync())
		fx.model = append(fx.model, e)
	}
	require.NoError(t, j.Close())
	segs := segmentFiles(t, fx.fs, tornDir)
	require.Len(t, segs, 1)
	fx.segName = segs[0]
	fx.seg = fx.fs.PathJoin(tornDir, segs[0])
	fx.full, err = fx.fs.ReadFile(fx.seg)
	require.NoError(t, err)
	fx.lastStart = len(fx.full) - frameHeaderSize - len(fx.model[len(fx.model)-1].payload)
	fx.checkLayout(t)
	return fx
}

// frameStart returns the byte offset of entry i's frame (i from 1).
func (fx *tornFixture) frameStart(i int) int {
	off := segmentHeaderSize
	for k := 0; k < i-1; k++ {
		off += frameHeaderSize + len(fx.model[k].payload)
	}
	return off
}

func (fx *tornFixture) checkLayout(t testing.TB) {
	t.Helper()
	total := segmentHeaderSize
	for i, e := range fx.model {
		p := e.payload
		start := fx.frameStart(i + 1)
		require.Equal(t, frameMagic, string(fx.full[start:start+4]), "frame %d magic", i+1)
		require.Equal(t, byte(frameVersion), fx.full[start+4], "frame %d version", i+1)
		require.Equal(t, byte(e.kind), fx.full[start+5], "frame %d kind", i+1)
		require.Equal(t, uint64(i+1), binary.LittleEndian.Uint64(fx.full[start+8:]), "frame %d index", i+1)
		require.Equal(t, e.term, binary.LittleEndian.Uint64(fx.full[start+16:]), "frame %d term", i+1)
		require.Equal(t, uint32(len(p)), binary.LittleEndian.Uint32(fx.full[start+56:]), "frame %d length", i+1)
		require.True(t, bytes.Equal(p, fx.full[start+frameHeaderSize:start+frameHeaderSize+len(p)]), "frame %d payload", i+1)
		total += frameHeaderSize + len(p)
	}
	require.Equal(t, len(fx.full), total, "segment = header + frames, nothing else")
}

// segmentFiles lists the *.seg files of dir, sorted.
func segmentFiles(t testing.TB, fs interface {
	List(string) ([]string, error)
}, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	require.NoError(t, err)
	var segs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".seg") {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs
}

// expectRepair installs image as the segment's content, opens, and checks
// that exactly the first keep entries are there, that the report says
// dropBytes bytes were cut at offset at (none if dropBytes is 0), that a
// second Open finds nothing to repair, and that the next Append gets index
// keep+1.
func (fx *tornFixture) expectRepair(t testing.TB, image []byte, keep, at, dropBytes int, what string) {
	t.Helper()
	require.NoError(t, fx.fs.WriteFile(fx.seg, image))
	j, err := openOn(fx.fs, tornDir, 0)
	require.NoError(t, err, "%s: Open", what)
	requireExactly(t, j, fx.model[:keep], what)
	rep := j.RepairReport()
	if dropBytes == 0 {
		require.False(t, rep.Truncated, "%s: nothing to repair, report %+v", what, rep)
	} else {
		require.True(t, rep.Truncated, "%s: report %+v", what, rep)
		require.Equal(t, fx.segName, rep.Segment, what)
		require.Equal(t, int64(at), rep.Offset, "%s: report %+v", what, rep)
		require.Equal(t, int64(dropBytes), rep.Bytes, "%s: report %+v", what, rep)
		require.NotEmpty(t, rep.Reason, what)
	}
	require.NoError(t, j.Close())

	j, err = openOn(fx.fs, tornDir, 0)
	require.NoError(t, err, "%s: second Open", what)
	rep = j.RepairReport()
	require.False(t, rep.Truncated, "%s: second Open repaired again: %+v", what, rep)
	requireExactly(t, j, fx.model[:keep], what+" (second Open)")
	info, err := j.Append([][]byte{journal.AppendGroup(nil, &journal.Group{Stream: []byte("after")}, []journal.Record{{Value: []byte("x")}})})
	require.NoError(t, err, what)
	require.Equal(t, uint64(keep+1), info.Index, "%s: index after repair", what)
	info, err = j.WriteEntry(uint64(keep+2), 1000, journal.KindConfChange, []byte("after"))
	require.NoError(t, err, what)
	require.Equal(t, uint64(keep+2), info.Index, "%s: index after repair", what)
	require.NoError(t, j.Close())
}

// requireExactly checks that the journal holds exactly want from index 1,
// each entry with its kind and term.
func requireExactly(t testing.TB, j *journal.Journal, want []modelEntry, what string) {
	t.Helper()
	_, got, err := readEntries(j)
	require.NoError(t, err, what)
	require.Equal(t, uint64(len(want)), j.LastIndex(), "%s: LastIndex", what)
	require.Len(t, got, len(want), what)
	for i := range want {
		if !sameEntry(want[i], got[i]) {
			require.Failf(t, "entry differs", "%s: entry %d: %v term %d, want %v term %d", what, i+1, got[i].kind, got[i].term, want[i].kind, want[i].term)
		}
	}
}

// tornOffsets returns the cut points tested for a last frame of frameLen
// bytes: all of them when all is set; otherwise every offset of the frame
// header and of the first and last edge bytes of the payload, plus a prime
// stride through the middle.
func tornOffsets(frameLen int, all bool, edge, stride int) []int {
	var out []int
	for c := 0; c < frameLen; c++ {
		if all || c < frameHeaderSize+edge || c >= frameLen-edge || (c-frameHeaderSize)%stride == 0 {
			out = append(out, c)
		}
	}
	return out
}

// TestTornTailEveryOffset writes entries, then cuts the last entry's frame
// at byte offsets and reopens. For 100 B and 4 KiB entries every offset is
// tested. For 64 KiB and 1 MiB entries, every offset of the frame header
// and of the first and last 2 KiB of the payload, plus a prime stride
// through the middle (61 B for 64 KiB, 4093 B for 1 MiB; under -short,
// for the race detector, also 4 KiB is strided, by 13 B, and the others get
// 128 B edges and 37 times longer strides): one offset costs
// about 1 ms for 64 KiB and 2 ms for 1 MiB here (the file is rewritten,
// scanned and repaired each time), so all 65,630 offsets of the 64 KiB
// frame take about 66 s; BADBATCH_TORN_ALL=1 runs them. Open must keep
// exactly the entries before the torn one, report the cut, and leave a
// journal that a second Open finds clean and that appends at the next
// index. Raft's entries tear the same way: a conf change, an empty entry
// (a 64-byte frame) and an empty conf change, each at a new term after
// entries of other kinds and terms, are cut at every offset too, and the
// kept entries keep their kinds and terms.
func TestTornTailEveryOffset(t *testing.T) {
	conf := func(term uint64, size int) tornEntry {
		return tornEntry{kind: journal.KindConfChange, term: term, size: size}
	}
	empty := func(term uint64) tornEntry { return tornEntry{kind: journal.KindGroups, term: term} }
	tests := []struct {
		name    string
		entries []tornEntry // the last is the torn entry
		all     bool
		stride  int
	}{
		{name: "100B", entries: groupsOf(100, 100, 100), all: true},
		{name: "4KiB", entries: groupsOf(4096, 4096, 4096), all: !testing.Short(), stride: 13},
		{name: "64KiB", entries: groupsOf(4096, 65536, 65536), all: os.Getenv("BADBATCH_TORN_ALL") != "", stride: 61},
		{name: "1MiB", entries: groupsOf(100, 1000, 1<<20), all: os.Getenv("BADBATCH_TORN_ALL") != "", stride: 4093},
		{name: "conf-change", entries: []tornEntry{empty(1), {kind: journal.KindGroups, term: 1, size: 100}, conf(2, 150)}, all: true},
		{name: "empty", entries: []tornEntry{conf(3, 40), {kind: journal.KindGroups, term: 3, size: 100}, empty(4)}, all: true},
		{name: "empty-conf-change", entries: []tornEntry{{kind: journal.KindGroups, term: 5, size: 100}, empty(6), conf(7, 0)}, all: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			fx := newTornFixtureOf(t, rand.New(rand.NewPCG(1, uint64(len(tt.name)))), tt.entries...)
			keep := len(tt.entries) - 1
			frameLen := len(fx.full) - fx.lastStart
			edge, stride := 2048, tt.stride
			if testing.Short() && !tt.all {
				// The -race -short run: the race detector makes every
				// rewrite and scan of a 1 MiB file ~10x slower.
				edge, stride = 128, tt.stride*37
			}
			offsets := tornOffsets(frameLen, tt.all, edge, stride)
			for _, cut := range offsets {
				fx.expectRepair(t, fx.full[:fx.lastStart+cut], keep, fx.lastStart, cut, fmt.Sprintf("cut %d of %d", cut, frameLen))
			}
			// The intact file needs no repair at all.
			fx.expectRepair(t, fx.full, len(tt.entries), 0, 0, "intact")
			t.Logf("%d of %d cut offsets of a %d-byte frame checked in %v", len(offsets), frameLen, frameLen, time.Since(start))
		})
	}
}

// plausibleFrameHeader returns a frame header that passes the magic,
// version and kind checks, names the next index and a payload length that
// fits in or just past the junk, with a random CRC.
func plausibleFrameHeader(rng *rand.Rand, nextIndex uint64, junkLen int) []byte {
	h := make([]byte, frameHeaderSize)
	copy(h, frameMagic)
	h[4] = frameVersion
	h[5] = byte(rng.IntN(2)) // KindGroups or KindConfChange
	binary.LittleEndian.PutUint64(h[16:], rng.Uint64N(10))
	binary.LittleEndian.PutUint64(h[8:], nextIndex)
	binary.LittleEndian.PutUint64(h[24:], rng.Uint64N(1000))
	binary.LittleEndian.PutUint64(h[40:], nextIndex-1)
	binary.LittleEndian.PutUint32(h[48:], 1)
	binary.LittleEndian.PutUint32(h[52:], 1)
	binary.LittleEndian.PutUint32(h[56:], uint32(rng.IntN(junkLen+128)))
	binary.LittleEndian.PutUint32(h[60:], rng.Uint32())
	return h
}

// TestTornTailJunk appends never-written bytes after the last valid entry:
// zeros of every length from 1 B to 8 KiB, random garbage, garbage that
// starts with a plausible frame header for the next index, and stale copies
// of earlier complete frames (valid CRC, wrong index). Open must keep every
// entry and drop exactly the junk.
func TestTornTailJunk(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	fx := newTornFixture(t, rng, 100, 300, 200)
	n := len(fx.model)
	trials := crashCycles(t, 300, 50)

	t.Run("zeros", func(t *testing.T) {
		step := 1
		if testing.Short() {
			step = 13
		}
		for z := 1; z <= crashfs.MaxJunk; z += step {
			// Zeros to the end are free space: every entry kept, nothing
			// rewritten or reported.
			fx.expectRepair(t, append(slices.Clone(fx.full), make([]byte, z)...), n, len(fx.full), 0, fmt.Sprintf("%d zeros", z))
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for i := range trials {
			junk := make([]byte, 1+rng.IntN(crashfs.MaxJunk))
			for k := range junk {
				junk[k] = byte(rng.Uint32())
			}
			fx.expectRepair(t, append(slices.Clone(fx.full), junk...), n, len(fx.full), len(junk), fmt.Sprintf("garbage trial %d (%d B)", i, len(junk)))
		}
	})
	t.Run("plausible header", func(t *testing.T) {
		for i := range trials {
			junk := make([]byte, frameHeaderSize+rng.IntN(crashfs.MaxJunk))
			for k := range junk {
				junk[k] = byte(rng.Uint32())
			}
			if rng.IntN(2) == 0 {
				clear(junk[frameHeaderSize:]) // header then zeros
			}
			copy(junk, plausibleFrameHeader(rng, uint64(n+1), len(junk)-frameHeaderSize))
			fx.expectRepair(t, append(slices.Clone(fx.full), junk...), n, len(fx.full), len(junk), fmt.Sprintf("header trial %d (%d B)", i, len(junk)))
		}
	})
	t.Run("stale valid frames", func(t *testing.T) {
		for i := 1; i <= n; i++ {
			start, end := fx.frameStart(i), fx.frameStart(i+1)
			stale := fx.full[start:end]
			fx.expectRepair(t, append(slices.Clone(fx.full), stale...), n, len(fx.full), len(stale), fmt.Sprintf("stale copy of frame %d", i))
		}
	})
}

// TestBitFlipInLastEntryIsDetected flips every bit of the last entry's frame
// (header and payload), for 100 B and 4 KiB entries, a conf change and an
// empty entry (its kind byte and term included). Each flip must be
// repaired as a torn tail: the entries before it are kept, the flipped
// entry is never returned.
func TestBitFlipInLastEntryIsDetected(t *testing.T) {
	tests := []struct {
		name    string
		entries []tornEntry
	}{
		{"100B", groupsOf(100, 100, 100)},
		{"4096B", groupsOf(4096, 4096, 4096)},
		{"conf-change", []tornEntry{{kind: journal.KindGroups, term: 2, size: 100}, {kind: journal.KindConfChange, term: 2, size: 30}, {kind: journal.KindConfChange, term: 3, size: 100}}},
		{"empty", []tornEntry{{kind: journal.KindGroups, term: 2, size: 100}, {kind: journal.KindConfChange, term: 2, size: 30}, {kind: journal.KindGroups, term: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newTornFixtureOf(t, rand.New(rand.NewPCG(3, uint64(len(tt.name)))), tt.entries...)
			frameLen := len(fx.full) - fx.lastStart
			step := 1
			if testing.Short() && frameLen > 1000 {
				step = 29
			}
			flips := 0
			for bit := 0; bit < frameLen*8; bit += step {
				img := slices.Clone(fx.full)
				img[fx.lastStart+bit/8] ^= 1 << (bit % 8)
				fx.expectRepair(t, img, 2, fx.lastStart, frameLen, fmt.Sprintf("bit %d of the last frame", bit))
				flips++
			}
			t.Logf("%d single-bit flips of a %d-byte frame: every one detected", flips, frameLen)
		})
	}
}

// TestCorruptMiddleEntryFailsOpen flips every bit of entry 2's frame while
// entry 3, written after entry 2 was synced, is intact. Open must fail with
// an error wrapping ErrCorrupt that names the segment file and the byte
// offset of entry 2; dropping entries 2 and 3 as a torn tail would lose
// acknowledged data silently. Entry 2 is a KindGroups entry, a conf change,
// or an empty entry, each at a term of its own.
func TestCorruptMiddleEntryFailsOpen(t *testing.T) {
	for _, middle := range []tornEntry{
		{kind: journal.KindGroups, size: 100},
		{kind: journal.KindConfChange, term: 4, size: 60},
		{kind: journal.KindGroups, term: 5},
	} {
		t.Run(fmt.Sprintf("%v/size=%d", middle.kind, middle.size), func(t *testing.T) {
			fx := newTornFixtureOf(t, rand.New(rand.NewPCG(4, 4)),
				tornEntry{kind: journal.KindGroups, term: 3, size: 100}, middle, tornEntry{kind: journal.KindGroups, term: 6, size: 100})
			start, end := fx.frameStart(2), fx.frameStart(3)
			wantOffset := fmt.Sprintf("offset %d", start)
			for bit := 0; bit < (end-start)*8; bit++ {
				img := slices.Clone(fx.full)
				img[start+bit/8] ^= 1 << (bit % 8)
				require.NoError(t, fx.fs.WriteFile(fx.seg, img))
				j, err := openOn(fx.fs, tornDir, 0)
				if err == nil {
					_, got, rerr := readAll(j)
					_ = j.Close()
					require.Failf(t, "corrupt middle entry not reported",
						"bit %d of frame 2 (byte %d): Open succeeded with %d entries (read err %v)", bit, start+bit/8, len(got), rerr)
				}
				require.ErrorIs(t, err, journal.ErrCorrupt, "bit %d", bit)
				require.Contains(t, err.Error(), fx.segName, "bit %d: the error names the file", bit)
				require.Contains(t, err.Error(), wantOffset, "bit %d: the error names entry 2's offset", bit)
			}
			// The untouched file still opens.
			fx.expectRepair(t, fx.full, 3, 0, 0, "intact")
		})
	}
}

// TestCorruptSealedSegment damages one payload byte of an entry in a sealed
// (not the last) segment. The journal must never return that entry as
// data: Open fails with ErrCorrupt naming the file and offset, or reading
// the entry does.
func TestCorruptSealedSegment(t *testing.T) {
	fs := crashfs.New()
	rng := rand.New(rand.NewPCG(5, 5))
	j, err := openOn(fs, tornDir, 1024)
	require.NoError(t, err)
	var model [][]byte
	for range 12 {
		groups, payload := payloadGroups(rng, 300)
		_, err := j.Append(groups)
		require.NoError(t, err)
		model = append(model, payload)
	}
	require.NoError(t, j.Close())
	segs := segmentFiles(t, fs, tornDir)
	require.Greater(t, len(segs), 2)
	victim := fs.PathJoin(tornDir, segs[0])
	data, err := fs.ReadFile(victim)
	require.NoError(t, err)
	// Entry 2 of the first segment: header, frame 1, then frame 2's header.
	at := segmentHeaderSize + frameHeaderSize + len(model[0]) + frameHeaderSize + 10
	data[at] ^= 0x40
	require.NoError(t, fs.WriteFile(victim, data))

	j, err = openOn(fs, tornDir, 1024)
	if err != nil {
		require.ErrorIs(t, err, journal.ErrCorrupt)
		assert.Contains(t, err.Error(), segs[0])
		assert.Contains(t, err.Error(), fmt.Sprintf("offset %d", segmentHeaderSize+frameHeaderSize+len(model[0])))
		return
	}
	defer j.Close()
	err = j.Read(2, func(e *journal.Entry) error {
		return fmt.Errorf("entry 2 returned as data (%d bytes)", len(e.Payload))
	})
	require.ErrorIs(t, err, journal.ErrCorrupt)
}
