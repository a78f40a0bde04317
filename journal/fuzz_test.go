package journal_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

// groupSeeds are well-formed payloads and damaged versions of them.
func groupSeeds() [][]byte {
	g1 := journal.AppendGroup(nil, &journal.Group{Stream: []byte("orders"), Timestamp: 1_700_000_000_000_000_000},
		[]journal.Record{{Timestamp: 1_700_000_000_000_000_005, Key: []byte("k1"), Value: []byte(`{"a":1}`), Flags: journal.FlagJSON}})
	g2 := journal.AppendGroup(nil, &journal.Group{
		Stream: []byte("s"), Flags: journal.GroupHasExpectedOffset, ExpectedLastOffset: -1,
		IdempotencyKey: []byte("idem-1"), Timestamp: 42,
	}, []journal.Record{
		{Timestamp: 40, Headers: []journal.Header{{Name: []byte("h"), Value: []byte("v")}, {Name: []byte("x"), Value: nil}}, Value: []byte("one")},
		{Timestamp: 45},
		{Timestamp: -5, Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte{0xff}, 1000)},
	})
	g3 := journal.AppendGroup(nil, &journal.Group{Stream: []byte("empty")}, nil)
	g4 := journal.AppendGroup(nil, &journal.Group{Stream: []byte("c"), Flags: journal.GroupHasControl | journal.GroupHasExpectedOffset,
		ExpectedLastOffset: 3, Control: []byte{1, 2, 3}, Timestamp: 9}, []journal.Record{{Timestamp: 9, Value: []byte("v")}})
	both := append(append([]byte(nil), g1...), g2...)
	seeds := [][]byte{nil, {0}, g1, g2, g3, g4, both, append(append([]byte(nil), both...), g3...)}
	seeds = append(seeds, both[:len(g1)+5], g2[:len(g2)-1], make([]byte, 40))
	flipped := append([]byte(nil), g2...)
	flipped[20] ^= 0x80
	return append(seeds, flipped)
}

// FuzzGroupReader decodes arbitrary bytes as an entry payload. The reader
// must never panic or loop, must report damage as an error wrapping
// ErrCorrupt, must hand out slices inside the payload, and when it accepts
// the payload, its groups must tile it exactly and re-encode (AppendGroup)
// to a payload that decodes to the same values. The same bytes are also
// written with WriteEntry as each entry kind (checkEntryKinds).
func FuzzGroupReader(f *testing.F) {
	for _, s := range groupSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		groups, recs, err := decodeAll(t, data, 77)
		checkEntryKinds(t, data, groups, err)
		if err != nil {
			require.ErrorIs(t, err, journal.ErrCorrupt)
			return
		}
		// Accepted: the groups tile the payload.
		end := 0
		for _, g := range groups {
			require.Equal(t, end, g.view.Offset, "groups are contiguous")
			end += g.view.Size
		}
		require.Equal(t, len(data), end, "the groups cover the whole payload")
		// Re-encode and decode again: same values.
		var again []byte
		for i, g := range groups {
			grp := journal.Group{Stream: g.view.Stream, Flags: g.view.Flags, ExpectedLastOffset: g.view.ExpectedLastOffset,
				IdempotencyKey: g.view.IdempotencyKey, Timestamp: g.view.Timestamp, Control: g.view.Control}
			again = journal.AppendGroup(again, &grp, recs[i])
		}
		groups2, recs2, err := decodeAll(t, again, 77)
		require.NoError(t, err, "a re-encoded payload decodes")
		require.Len(t, groups2, len(groups))
		for i := range groups {
			a, b := groups[i].view, groups2[i].view
			require.Equal(t, a.Stream, b.Stream)
			require.Equal(t, a.Flags, b.Flags)
			if a.Flags&journal.GroupHasExpectedOffset != 0 {
				require.Equal(t, a.ExpectedLastOffset, b.ExpectedLastOffset)
			}
			require.Equal(t, a.IdempotencyKey, b.IdempotencyKey)
			require.Equal(t, a.Control, b.Control)
			require.Equal(t, a.Timestamp, b.Timestamp)
			require.Equal(t, a.Records, b.Records)
			require.Equal(t, a.FirstSeq, b.FirstSeq)
			require.Equal(t, normalize(recs[i]), normalize(recs2[i]))
		}
	})
}

type decodedGroup struct {
	view journal.GroupView
}

// checkEntryKinds writes data with WriteEntry as a conf change and as a
// KindGroups entry. A conf change is opaque: always accepted, with no
// records or groups. As KindGroups, a payload the GroupReader accepted
// (readErr nil) must be accepted and counted as the reader counted it; a
// payload WriteEntry refuses is ErrCorrupt with nothing written. Every
// entry written reads back with its kind, term and bytes.
func checkEntryKinds(t *testing.T, data []byte, groups []decodedGroup, readErr error) {
	j, err := journal.Open("/j", &journal.Options{FS: vfs.NewMem(), SyncPolicy: journal.SyncNone, DisablePreallocation: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, j.Close()) }()
	info, err := j.WriteEntry(1, 7, journal.KindConfChange, data)
	require.NoError(t, err, "a conf change is opaque")
	require.Zero(t, info.Records)
	require.Zero(t, info.Groups)
	want := []modelEntry{{kind: journal.KindConfChange, term: 7, payload: data}}
	info, err = j.WriteEntry(2, 8, journal.KindGroups, data)
	switch {
	case err == nil:
		want = append(want, modelEntry{kind: journal.KindGroups, term: 8, payload: data})
		if readErr == nil {
			records := 0
			for _, g := range groups {
				records += g.view.Records
			}
			require.Equal(t, len(groups), info.Groups, "WriteEntry counts the groups the reader read")
			require.Equal(t, records, info.Records, "WriteEntry counts the records the reader read")
		}
	case readErr == nil:
		require.Failf(t, "WriteEntry refused a payload the reader accepts", "%v", err)
	default:
		require.ErrorIs(t, err, journal.ErrCorrupt)
	}
	require.Equal(t, uint64(len(want)), j.LastIndex(), "a refused entry writes nothing")
	_, got, err := readEntries(j)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, sameEntry(want[i], got[i]), "entry %d reads back as written", i+1)
	}
}

// decodeAll reads every group and record of payload, copying what it
// returns, and checks the reader's own invariants on the way.
func decodeAll(t *testing.T, payload []byte, firstSeq uint64) ([]decodedGroup, [][]journal.Record, error) {
	var r journal.GroupReader
	r.Reset(payload, firstSeq)
	var groups []decodedGroup
	var recs [][]journal.Record
	seq := firstSeq
	for steps := 0; r.Next(); steps++ {
		require.LessOrEqual(t, steps, len(payload), "more groups than payload bytes: the reader loops")
		g := *r.Group()
		require.GreaterOrEqual(t, g.Offset, 0)
		require.LessOrEqual(t, g.Offset+g.Size, len(payload), "group %d extends past the payload", g.Ordinal)
		require.Equal(t, len(groups), g.Ordinal)
		require.Equal(t, seq, g.FirstSeq)
		requireInside(t, payload, g.Stream, g.IdempotencyKey)
		var rs []journal.Record
		for r.NextRecord() {
			require.Less(t, len(rs), g.Records, "more records than the group header says")
			require.Less(t, len(rs), len(payload), "more records than payload bytes: the reader loops")
			rec := r.Record()
			require.Equal(t, seq, rec.Seq)
			require.Equal(t, len(rs), rec.Ordinal)
			requireInside(t, payload, rec.Key, rec.Value)
			out := journal.Record{Timestamp: rec.Timestamp, Flags: rec.Flags, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value)}
			for h := range rec.NumHeaders() {
				name, value := rec.Header(h)
				requireInside(t, payload, name, value)
				out.Headers = append(out.Headers, journal.Header{Name: bytes.Clone(name), Value: bytes.Clone(value)})
			}
			rs = append(rs, out)
			seq++
		}
		if r.Err() == nil {
			require.Len(t, rs, g.Records, "a group read without error has all its records")
		}
		g.Stream, g.IdempotencyKey = bytes.Clone(g.Stream), bytes.Clone(g.IdempotencyKey)
		groups = append(groups, decodedGroup{view: g})
		recs = append(recs, rs)
	}
	return groups, recs, r.Err()
}

// requireInside checks that every non-empty slice lies inside payload.
func requireInside(t *testing.T, payload []byte, slices ...[]byte) {
	t.Helper()
	base := uintptr(unsafe.Pointer(unsafe.SliceData(payload)))
	for _, s := range slices {
		if len(s) == 0 {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		inside := p >= base && p-base+uintptr(len(s)) <= uintptr(len(payload))
		require.True(t, inside, "a %d-byte slice does not alias the payload", len(s))
	}
}

// normalize maps nil and empty byte slices to nil for comparison.
func normalize(rs []journal.Record) []journal.Record {
	out := make([]journal.Record, len(rs))
	for i, r := range rs {
		r.Key, r.Value = nilIfEmpty(r.Key), nilIfEmpty(r.Value)
		var hs []journal.Header
		for _, h := range r.Headers {
			hs = append(hs, journal.Header{Name: nilIfEmpty(h.Name), Value: nilIfEmpty(h.Value)})
		}
		r.Headers = hs
		out[i] = r
	}
	return out
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// repairBase is a closed journal of three or more segments (512-byte
// segments, entries of about 150 bytes), built once per process.
var repairBase struct {
	once     sync.Once
	fs       *crashfs.FS
	model    []modelEntry
	lastSeg  string
	lastData []byte
	sealed   int // entries in the segments before the last
}

const fuzzDir = "/j"

func buildRepairBase(t testing.TB) {
	repairBase.once.Do(func() {
		fs := crashfs.New()
		rng := rand.New(rand.NewPCG(8, 8))
		j, err := openOn(fs, fuzzDir, 512)
		require.NoError(t, err)
		// Raft's entries: KindGroups (some empty) and conf changes, the
		// term growing every third entry.
		for i := range 13 {
			e := modelEntry{kind: journal.KindGroups, term: 1 + uint64(i/3)}
			switch i % 4 {
			case 1:
				e.kind, e.payload = journal.KindConfChange, bytes.Repeat([]byte{byte(i)}, 40)
			case 2:
				// empty
			default:
				_, e.payload = payloadGroups(rng, 100)
			}
			_, err := writeModelEntry(j, e)
			require.NoError(t, err)
			require.NoError(t, j.Sync())
			repairBase.model = append(repairBase.model, e)
		}
		require.NoError(t, j.Close())
		segs := segmentFiles(t, fs, fuzzDir)
		require.GreaterOrEqual(t, len(segs), 3)
		repairBase.lastSeg = fs.PathJoin(fuzzDir, segs[len(segs)-1])
		repairBase.lastData, err = fs.ReadFile(repairBase.lastSeg)
		require.NoError(t, err)
		j, err = openOn(fs, fuzzDir, 512)
		require.NoError(t, err)
		st := j.Stats()
		require.NoError(t, j.Close())
		// The last segment's first index is in its name; the entries
		// before it live in sealed segments.
		var first uint64
		for _, c := range segs[len(segs)-1][:20] {
			first = first*10 + uint64(c-'0')
		}
		require.Equal(t, uint64(len(repairBase.model)), st.LastIndex)
		repairBase.sealed = int(first) - 1
		repairBase.fs = fs
	})
	require.NotNil(t, repairBase.fs, "building the fuzz base failed")
}

// repairSeeds returns the last segment as written and damaged versions:
// among them, its first frame's kind byte changed to the other kind and to
// an unknown one, and its header's version set back to 1 (a version-1
// segment may hold KindGroups frames only).
func repairSeeds(t testing.TB) [][]byte {
	buildRepairBase(t)
	d := repairBase.lastData
	c := func(b []byte) []byte { return append([]byte(nil), b...) }
	flip := c(d)
	flip[len(flip)-10] ^= 1
	hdrFlip := c(d)
	hdrFlip[9] ^= 4
	otherKind := c(d)
	otherKind[segmentHeaderSize+5] ^= 1
	unknownKind := c(d)
	unknownKind[segmentHeaderSize+5] = 2
	version1 := c(d)
	version1[4] = 1
	return [][]byte{
		c(d), nil, c(d[:10]), c(d[:32]), c(d[:32+30]), c(d[:len(d)-1]),
		append(c(d), make([]byte, 100)...), append(c(d), bytes.Repeat([]byte{0xa5}, 70)...),
		flip, hdrFlip, make([]byte, 4096), otherKind, unknownKind, version1,
	}
}

// FuzzRepair installs arbitrary bytes as the journal's last segment file
// and opens it. The journal is raft's log: KindGroups entries (some empty)
// and conf changes at growing terms. Open must never panic; it either fails
// with an error wrapping ErrCorrupt, or succeeds with every entry of the
// sealed segments intact (kind, term and bytes), every entry readable (and
// Term and Info agreeing with it), and a state that a second Open
// reproduces exactly without repairing anything, and that accepts the next
// Append and WriteEntry. (The corpus in testdata/fuzz/FuzzRepair predates
// the kinds: most of its images start with a version-1 segment header, and
// so exercise the version-1 rules.)
func FuzzRepair(f *testing.F) {
	for _, s := range repairSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		buildRepairBase(t)
		fs, _ := repairBase.fs.Crash(crashfs.CrashConfig{}) // a private copy
		require.NoError(t, fs.WriteFile(repairBase.lastSeg, data))

		j, err := openOn(fs, fuzzDir, 512)
		if err != nil {
			require.ErrorIs(t, err, journal.ErrCorrupt, "Open failed without ErrCorrupt")
			return
		}
		first, got, err := readEntries(j) // Term and Info agree with every entry read
		require.NoError(t, err, "an opened journal reads back without error")
		last := j.LastIndex()
		require.Equal(t, uint64(1), first)
		require.Equal(t, int(last), len(got))
		require.GreaterOrEqual(t, len(got), repairBase.sealed, "entries of sealed segments lost")
		for i := range repairBase.sealed {
			require.True(t, sameEntry(repairBase.model[i], got[i]), "sealed entry %d: kind, term and bytes", i+1)
		}
		require.NoError(t, j.Close())

		j, err = openOn(fs, fuzzDir, 512)
		require.NoError(t, err, "second Open")
		rep := j.RepairReport()
		require.False(t, rep.Truncated, "second Open repaired again: %+v", rep)
		require.Empty(t, rep.RemovedFiles, "second Open removed files")
		_, got2, err := readEntries(j)
		require.NoError(t, err)
		require.Equal(t, got, got2, "second Open sees the same entries")
		groups, _ := payloadGroups(rand.New(rand.NewPCG(1, 1)), 10)
		info, err := j.Append(groups)
		require.NoError(t, err, "append after repair")
		require.Equal(t, last+1, info.Index)
		info, err = j.WriteEntry(last+2, 99, journal.KindConfChange, []byte("after repair"))
		require.NoError(t, err, "a conf change after repair")
		require.Equal(t, last+2, info.Index)
		require.NoError(t, j.Close())
	})
}

// recycledLast returns the base's last segment as a recycled file would
// hold it (header flag segFlagRecycle, CRC fixed): its frames, then tail,
// the bytes of the file's earlier life.
func recycledLast(tail []byte) []byte {
	d := append([]byte(nil), repairBase.lastData...)
	d[segOffFlagsV3] = segFlagRecycle
	binary.LittleEndian.PutUint32(d[segOffHdrCRC:], crc32.Checksum(d[:segOffHdrCRC], crc32.MakeTable(crc32.Castagnoli)))
	return append(d, tail...)
}

// FuzzRecycledTail installs the base journal's last segment as a recycled
// file (version 3, the recycled flag set) whose frames, all synced, are
// followed by arbitrary bytes: its earlier life. The seeds put there
// frames of the base's other segments, which are checksum-valid under
// their own salts and carry indexes and seqs of this journal, and copies
// of the segment's own frames. Open must succeed (nothing in the tail can
// vouch for an entry after the last one without forging a CRC under this
// life's salt), return exactly the entries written, kind, term and bytes,
// and a second Open must agree without repairing anything and accept the
// next Append.
func FuzzRecycledTail(f *testing.F) {
	buildRepairBase(f)
	segs := segmentFiles(f, repairBase.fs, fuzzDir)
	for _, name := range segs[:len(segs)-1] {
		d, err := repairBase.fs.ReadFile(repairBase.fs.PathJoin(fuzzDir, name))
		require.NoError(f, err)
		f.Add(d[segmentHeaderSize:])          // another life's frames, from offset 0 of the tail
		f.Add(d[segmentHeaderSize+7:])        // misaligned
		f.Add(append(make([]byte, 64), d...)) // after zeros
	}
	f.Add(repairBase.lastData[segmentHeaderSize:]) // this life's frames again: stale, same salt
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xa5}, 300))
	f.Fuzz(func(t *testing.T, tail []byte) {
		buildRepairBase(t)
		fs, _ := repairBase.fs.Crash(crashfs.CrashConfig{}) // a private copy
		require.NoError(t, fs.WriteFile(repairBase.lastSeg, recycledLast(tail)))

		j, err := openOn(fs, fuzzDir, 512)
		require.NoError(t, err, "Open of a recycled segment")
		first, got, err := readEntries(j)
		require.NoError(t, err)
		require.Equal(t, uint64(1), first)
		require.Len(t, got, len(repairBase.model), "exactly the entries written: none lost, none from the tail")
		for i := range got {
			require.True(t, sameEntry(repairBase.model[i], got[i]), "entry %d: kind, term and bytes", i+1)
		}
		require.NoError(t, j.Close())

		j, err = openOn(fs, fuzzDir, 512)
		require.NoError(t, err, "second Open")
		require.False(t, j.RepairReport().Truncated, "second Open repaired again: %+v", j.RepairReport())
		_, got2, err := readEntries(j)
		require.NoError(t, err)
		require.Equal(t, got, got2)
		groups, _ := payloadGroups(rand.New(rand.NewPCG(1, 1)), 10)
		info, err := j.Append(groups)
		require.NoError(t, err)
		require.Equal(t, uint64(len(got)+1), info.Index)
		require.NoError(t, j.Close())
	})
}
