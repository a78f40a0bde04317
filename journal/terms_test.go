package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

// downgradeIndexes rewrites every index file in dir as version 1 (offsets
// only, no term runs), as the previous format wrote them.
func downgradeIndexes(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	for _, p := range indexPaths(t, fs, dir) {
		x, problem := decodeSegIndex(readTestFile(t, fs, p))
		require.Empty(t, problem, p)
		s := &segment{firstIndex: x.firstIndex, firstSeq: x.firstSeq, size: x.size, nextSeq: x.nextSeq,
			lastTS: x.lastTS, lastCRC: x.lastCRC, offsets: x.offsets}
		writeTestFile(t, fs, p, encodeSegIndex(s, segIndexVersion1))
	}
}

// downgradeToVersion1 rewrites the closed journal in dir as the first
// format wrote it: segment headers and frames of version 1 (every entry
// must be KindGroups), index files of version 1.
func downgradeToVersion1(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	for _, p := range segmentPaths(t, fs, dir) {
		d := readTestFile(t, fs, p)
		offs := frameOffsets(t, d)
		for _, off := range offs {
			require.Equal(t, byte(KindGroups), d[off+frameOffFlags], "%s: a version-1 segment holds KindGroups only", p)
			d[off+frameOffVersion] = segmentVersion1
			n := frameHeaderSize + int(binary.LittleEndian.Uint32(d[off+frameOffLength:]))
			binary.LittleEndian.PutUint32(d[off+frameOffCRC:], frameCRC(0, d[off:off+frameHeaderSize], d[off+frameHeaderSize:off+n]))
		}
		d[segOffVersion] = segmentVersion1
		d[segOffFlagsV3] = 0
		binary.LittleEndian.PutUint32(d[segOffSalt:], 0)
		binary.LittleEndian.PutUint32(d[segOffCRC:], crc32.Checksum(d[:segOffCRC], castagnoli))
		writeTestFile(t, fs, p, d)
		ip := segIndexPath(p)
		if _, err := fs.Stat(ip); err != nil {
			continue
		}
		x, problem := decodeSegIndex(readTestFile(t, fs, ip))
		require.Empty(t, problem, ip)
		last := offs[len(offs)-1]
		s := &segment{firstIndex: x.firstIndex, firstSeq: x.firstSeq, size: x.size, nextSeq: x.nextSeq,
			lastTS: x.lastTS, lastCRC: binary.LittleEndian.Uint32(d[last+frameOffCRC:]), offsets: x.offsets}
		writeTestFile(t, fs, ip, encodeSegIndex(s, segIndexVersion1))
	}
}

// segmentVersions returns each segment's header version, in order, and
// checks that every frame of a version-1 segment is one a binary of the
// first format reads: version 1, flags 0 (frameOffsets decodes each frame
// under its segment's version and fails the test otherwise).
func segmentVersions(t *testing.T, fs vfs.FS, dir string) []uint8 {
	t.Helper()
	var out []uint8
	for _, p := range segmentPaths(t, fs, dir) {
		d := readTestFile(t, fs, p)
		_, problem := decodeSegmentHeader(d)
		require.Empty(t, problem, p)
		for _, off := range frameOffsets(t, d) {
			if d[segOffVersion] == segmentVersion1 {
				require.Equal(t, byte(segmentVersion1), d[off+frameOffVersion], "%s at %d", p, off)
				require.Zero(t, d[off+frameOffFlags], "%s at %d: a kind in a version-1 segment", p, off)
			}
		}
		out = append(out, d[segOffVersion])
	}
	return out
}

// TestTermRandomSequences compares Term at every index with a naive model
// (one term per entry) after random term sequences: runs of random
// length, terms that grow, repeat, jump or go back (the journal does not
// require raft's monotonic terms), writes through WriteEntry and
// WriteTerm, TruncateBack in and across runs followed by new terms,
// TruncateFront, and reopens that take sealed segments from their index
// files, scan them, or take them from version-1 index files (term runs
// filled on first use).
func TestTermRandomSequences(t *testing.T) {
	seeds, steps := 10, 150
	if testing.Short() {
		seeds, steps = 4, 80
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 0x7465726d))
			fs := vfs.NewMem()
			o := testOptions(fs, int64(512+rng.IntN(4<<10)))
			j := mustOpen(t, "/j", o)
			defer func() { _ = j.Close() }()
			m := &testModel{first: 1}
			term := uint64(0)
			nextTerm := func() uint64 {
				switch p := rng.IntN(10); {
				case p < 5:
					return term
				case p < 8:
					return term + 1 + rng.Uint64N(5)
				case p < 9:
					return rng.Uint64N(term/2 + 1) // back
				default:
					return math.MaxUint64 - rng.Uint64N(3)
				}
			}
			for step := range steps {
				switch op := rng.IntN(100); {
				case op < 60: // a run of entries
					term = nextTerm()
					for range 1 + rng.IntN(30) {
						if rng.IntN(4) == 0 {
							g := entryGroups(rng.IntN(100), 20)
							info, err := j.WriteTerm(term, g)
							require.NoError(t, err)
							m.add(info, g)
							continue
						}
						kind, payload := randomEntry(rng, 200)
						info, err := j.WriteEntry(m.last()+1, term, kind, payload)
						require.NoError(t, err)
						m.addEntry(info, payload)
					}
				case op < 75 && len(m.terms) > 0:
					to := m.first - 1 + uint64(rng.IntN(len(m.terms)+1))
					require.NoError(t, j.TruncateBack(to))
					m.dropBack(to)
					term = nextTerm()
				case op < 82:
					to := m.first + uint64(rng.IntN(len(m.terms)+1))
					require.NoError(t, j.TruncateFront(to))
					m.dropFront(j.FirstIndex())
				default: // reopen
					require.NoError(t, j.Close())
					scan := *o
					switch rng.IntN(3) {
					case 0:
						scan.ScanSealed = true
					case 1:
						downgradeIndexes(t, fs, "/j")
					}
					j = mustOpen(t, "/j", &scan)
				}
				require.Equal(t, m.first, j.FirstIndex(), "step %d", step)
				require.Equal(t, m.last(), j.LastIndex(), "step %d", step)
				for k, want := range m.terms {
					got, err := j.Term(m.first + uint64(k))
					require.NoError(t, err, "step %d", step)
					require.Equal(t, want, got, "step %d: Term(%d)", step, m.first+uint64(k))
				}
				_, err := j.Term(m.first - 1)
				require.True(t, m.first == 1 || errors.Is(err, ErrTruncated), "step %d: Term below FirstIndex: %v", step, err)
				_, err = j.Term(m.last() + 1)
				require.ErrorIs(t, err, ErrOutOfRange, "step %d", step)
			}
			requireMatches(t, j, m)
		})
	}
}

// TestTermConcurrentWithWriter: Term and Info, called by readers while the
// writer writes, rolls and retention removes segments, always answer the
// entry's own term and kind, or ErrTruncated for an entry retention
// removed. Run with -race.
func TestTermConcurrentWithWriter(t *testing.T) {
	termOf := func(i uint64) uint64 { return 1 + i/6 }
	kindOf := func(i uint64) EntryKind { return EntryKind(i % 2) }
	o := testOptions(vfs.NewMem(), 2<<10)
	o.SyncPolicy = SyncNone
	o.RetentionBytes = 16 << 10
	j := mustOpen(t, "/j", o)
	defer j.Close()
	n := 2000
	if testing.Short() {
		n = 600
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
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
				i := first + rng.Uint64N(last-first+1)
				term, err := j.Term(i)
				if err == nil && term != termOf(i) {
					err = fmt.Errorf("Term(%d) = %d, want %d", i, term, termOf(i))
				}
				if err == nil {
					var info EntryInfo
					info, err = j.Info(i)
					if err == nil && (info.Index != i || info.Term != termOf(i) || info.Kind != kindOf(i)) {
						err = fmt.Errorf("Info(%d) = %+v", i, info)
					}
				}
				if err != nil && !errors.Is(err, ErrTruncated) {
					errs <- err
					return
				}
			}
		})
	}
	payload := AppendGroup(nil, &Group{Stream: []byte("s")}, []Record{{Value: make([]byte, 100)}}) // valid as either kind
	for range n {
		i := j.LastIndex() + 1
		_, err := j.WriteEntry(i, termOf(i), kindOf(i), payload)
		require.NoError(t, err)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Positive(t, j.Stats().RemovedSegments, "retention ran while readers read")
}

// TestTermLazyFill: sealed segments taken from version-1 index files have
// their term runs filled once by the first Term that needs them, even when
// many readers ask at once; a damaged frame header met while filling is
// ErrCorrupt with the file and offset, publishes nothing, and leaves the
// other segments answering.
func TestTermLazyFill(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs, 2<<10)
	j := mustOpen(t, "/j", o)
	m := &testModel{first: 1}
	writeEntries(t, j, m, 120)
	require.NoError(t, j.Close())
	downgradeIndexes(t, fs, "/j")

	t.Run("concurrent readers", func(t *testing.T) {
		j := mustOpen(t, "/j", o)
		defer j.Close()
		sealed := unknownTerms(j)
		require.Greater(t, sealed, 5)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				for k := range m.terms {
					k = (k + w*17) % len(m.terms)
					got, err := j.Term(m.first + uint64(k))
					if err == nil && got != m.terms[k] {
						err = fmt.Errorf("Term(%d) = %d, want %d", m.first+uint64(k), got, m.terms[k])
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		assert.Zero(t, unknownTerms(j))
	})
	t.Run("damaged header", func(t *testing.T) {
		segs := segmentPaths(t, fs, "/j")
		good := readTestFile(t, fs, segs[1])
		offs := frameOffsets(t, good)
		d := bytes.Clone(good)
		d[offs[1]+frameOffIndex]++ // not the last frame: the index is still believed
		writeTestFile(t, fs, segs[1], d)
		defer writeTestFile(t, fs, segs[1], good)
		j := mustOpen(t, "/j", o)
		defer j.Close()
		require.Greater(t, len(offs), 2, "the damaged frame is not the segment's last, and one follows it")
		second, _ := parseSegmentName(filepath.Base(segs[1]))
		_, err := j.Term(second)
		require.ErrorIs(t, err, ErrCorrupt)
		assert.ErrorContains(t, err, fmt.Sprintf("%s at offset %d", segmentName(second), offs[1]))
		_, err = j.Term(second)
		require.ErrorIs(t, err, ErrCorrupt, "nothing was published: the next Term reads again")
		got, err := j.Term(1)
		require.NoError(t, err, "other segments answer")
		assert.Equal(t, m.terms[0], got)
		assert.ErrorIs(t, j.TruncateBack(second+1), ErrCorrupt, "TruncateBack into the segment fails before it changes anything")
		assert.NoError(t, j.Err(), "and does not fail the journal")
		assert.Equal(t, m.last(), j.LastIndex())
	})
}

// TestVersion1Segments: a journal written in the first format (segments,
// frames and index files of version 1) opens and reads back with its
// terms; KindGroups entries keep going into its version-1 active segment
// as version-1 frames, so a binary of the first format could still read
// it; the first entry of another kind goes to a new version-2 segment
// (rolling the version-1 one); TruncateBack into a version-1 segment whose
// term runs are not known yet fills them and keeps the segment version 1.
// After every step, no version-1 segment holds a frame the first format
// would not read.
func TestVersion1Segments(t *testing.T) {
	for _, tfs := range testFileSystems(t) {
		t.Run("fs="+tfs.name, func(t *testing.T) {
			fs, dir := tfs.fs, tfs.dir
			o := testOptions(fs, 4<<10)
			j := mustOpen(t, dir, o)
			m := &testModel{first: 1}
			write := func(i int) {
				g := entryGroups(i, 40)
				if i%10 == 3 {
					g = nil // Append(nil): an empty entry, as the first format wrote them
				}
				info, err := j.WriteTerm(uint64(i/9), g)
				require.NoError(t, err)
				m.add(info, g)
			}
			for i := range 60 {
				write(i)
			}
			j.w.Lock()
			require.NoError(t, j.rollLocked()) // room in the active segment for what follows
			j.w.Unlock()
			write(60)
			write(61)
			require.NoError(t, j.Close())
			downgradeToVersion1(t, fs, dir)
			versions := segmentVersions(t, fs, dir)
			require.Greater(t, len(versions), 4)

			j = mustOpen(t, dir, o)
			assert.Equal(t, RepairReport{}, j.RepairReport())
			assert.Equal(t, len(versions)-1, j.Stats().OpenIndexed, "version-1 index files are accepted")
			assert.Equal(t, len(versions)-1, unknownTerms(j))
			requireMatches(t, j, m)

			// KindGroups: into the version-1 active segment, as version 1.
			for k := range 3 {
				payload := tinyGroup(k)
				if k == 1 {
					payload = nil
				}
				info, err := j.WriteEntry(m.last()+1, 7, KindGroups, payload)
				require.NoError(t, err)
				m.addEntry(info, payload)
			}
			require.NoError(t, j.Sync())
			assert.Equal(t, versions, segmentVersions(t, fs, dir), "still version 1, every frame readable by the first format")

			// A conf change: a new version-2 segment.
			info, err := j.WriteEntry(m.last()+1, 8, KindConfChange, []byte("add node 2"))
			require.NoError(t, err)
			m.addEntry(info, []byte("add node 2"))
			require.NoError(t, j.Sync())
			after := segmentVersions(t, fs, dir)
			require.Len(t, after, len(versions)+1)
			assert.Equal(t, versions, after[:len(versions)], "the version-1 segments are untouched")
			assert.Equal(t, uint8(currentSegmentVersion), after[len(after)-1])
			requireMatches(t, j, m)
			require.NoError(t, j.Close())

			// TruncateBack into a version-1 sealed segment whose runs are
			// not known (version-1 indexes again), then a new term.
			downgradeIndexes(t, fs, dir)
			j = mustOpen(t, dir, o)
			require.Positive(t, unknownTerms(j))
			segs := segmentPaths(t, fs, dir)
			second, _ := parseSegmentName(filepath.Base(segs[1]))
			third, _ := parseSegmentName(filepath.Base(segs[2]))
			require.Greater(t, third-second, uint64(2), "the second segment keeps two entries and drops one")
			to := second + 1
			require.NoError(t, j.TruncateBack(to))
			m.dropBack(to)
			for k := range 4 {
				payload := tinyGroup(k)
				info, err := j.WriteEntry(m.last()+1, 20, KindGroups, payload)
				require.NoError(t, err)
				m.addEntry(info, payload)
			}
			require.NoError(t, j.Sync())
			assert.Equal(t, []uint8{segmentVersion1, segmentVersion1}, segmentVersions(t, fs, dir),
				"the rewritten segment keeps version 1 and KindGroups frames")
			info, err = j.WriteEntry(m.last()+1, 21, KindConfChange, []byte("remove node 3"))
			require.NoError(t, err)
			m.addEntry(info, []byte("remove node 3"))
			requireMatches(t, j, m)
			require.NoError(t, j.Close())
			assert.Equal(t, []uint8{segmentVersion1, segmentVersion1, currentSegmentVersion}, segmentVersions(t, fs, dir))
			for _, scan := range []bool{false, true} {
				o := *o
				o.ScanSealed = scan
				j = mustOpen(t, dir, &o)
				assert.Equal(t, RepairReport{}, j.RepairReport())
				requireMatches(t, j, m)
				require.NoError(t, j.Close())
			}
		})
	}
}

// tinyGroup is a payload of one group with one small record.
func tinyGroup(i int) []byte {
	return AppendGroup(nil, &Group{Stream: []byte("s")}, []Record{{Value: []byte{byte(i)}}})
}

// TestVersion1EmptyActiveSegment: an entry of a new kind written into an
// empty version-1 active segment replaces that segment by an empty
// version-2 one of the same name (tmp, sync, rename) before writing. A
// power loss at any mutation of that sequence, the Sync included, leaves
// a journal that opens without a repair and holds the acknowledged
// entries; after the Sync returned, the conf change too.
func TestVersion1EmptyActiveSegment(t *testing.T) {
	fs := crashfs.New()
	o := testOptions(fs, 2<<10)
	j := mustOpen(t, "/j", o)
	m := &testModel{first: 1}
	for i := range 20 {
		g := entryGroups(i, 80)
		info, err := j.WriteTerm(3, g)
		require.NoError(t, err)
		m.add(info, g)
	}
	j.w.Lock()
	require.NoError(t, j.rollLocked()) // the active segment is now empty
	j.w.Unlock()
	require.NoError(t, j.Close())
	downgradeToVersion1(t, fs, "/j")
	versions := segmentVersions(t, fs, "/j")
	require.Equal(t, uint8(segmentVersion1), versions[len(versions)-1])

	j = mustOpen(t, "/j", o)
	var images []*crashfs.FS
	fs.SetHook(func(op, path string) {
		img, _ := fs.Crash(crashfs.CrashConfig{})
		images = append(images, img)
	})
	info, err := j.WriteEntry(m.last()+1, 4, KindConfChange, []byte("promote learner 4"))
	require.NoError(t, err)
	require.NoError(t, j.Sync())
	fs.SetHook(nil)
	acked, _ := fs.Crash(crashfs.CrashConfig{})
	m.addEntry(info, []byte("promote learner 4"))
	require.NoError(t, j.Close())
	after := segmentVersions(t, fs, "/j")
	assert.Equal(t, len(versions), len(after), "the empty segment was replaced, not rolled")
	assert.Equal(t, uint8(currentSegmentVersion), after[len(after)-1])
	j = mustOpen(t, "/j", o)
	requireMatches(t, j, m)
	require.NoError(t, j.Close())

	require.NotEmpty(t, images)
	before := &testModel{first: 1, payloads: m.payloads[:20], seqs: m.seqs[:20], terms: m.terms[:20], kinds: m.kinds[:20]}
	for k, img := range images {
		o := *o
		o.FS = img
		j, err := Open("/j", &o)
		require.NoError(t, err, "image %d", k)
		assert.False(t, j.RepairReport().Truncated, "image %d", k)
		if j.LastIndex() == 20 {
			requireMatches(t, j, before)
		} else {
			requireMatches(t, j, m)
		}
		require.NoError(t, j.Close())
	}
	o2 := *o
	o2.FS = acked
	j, err = Open("/j", &o2)
	require.NoError(t, err)
	defer j.Close()
	requireMatches(t, j, m)
}
