package journal_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"

	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

// Version-3 segment header fields these tests rewrite (docs/format.md):
// flags byte at 5 (bit 0: recycled), salt u32 at 24, CRC-32C of [0, 28)
// at 28.
const (
	segOffFlagsV3  = 5
	segOffSalt     = 24
	segOffHdrCRC   = 28
	segFlagRecycle = 1
)

const recycleDir = "/data/j"

// recycledLife builds the worst case a recycled file can present: a
// segment whose previous life holds n synced entries with exactly the
// indexes, seqs, sizes and offsets that the new life's entries will have
// (every entry one record of valueSize bytes), and gives the file a new
// life: its header rewritten in place as a recycled segment starting at
// the same index, with the given salt (newSalt false keeps the old one,
// the control). It returns the file system, the old life's payloads, and
// the segment's path.
func recycledLife(t *testing.T, rng *rand.Rand, n, valueSize int, newSalt bool) (*crashfs.FS, [][]byte, string) {
	t.Helper()
	fs := crashfs.New()
	durableParent(t, fs)
	j, err := openOn(fs, recycleDir, 1<<20)
	require.NoError(t, err)
	var old [][]byte
	for range n {
		groups, payload := payloadGroups(rng, valueSize)
		_, err := j.Append(groups)
		require.NoError(t, err)
		old = append(old, payload)
	}
	require.NoError(t, j.Close())
	names, err := fs.List(recycleDir)
	require.NoError(t, err)
	var seg string
	for _, name := range names {
		if len(name) == 24 && name[20:] == ".seg" {
			require.Empty(t, seg, "one segment")
			seg = fs.PathJoin(recycleDir, name)
		}
	}
	require.NotEmpty(t, seg)

	f, err := fs.OpenReadWrite(seg, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	hdr := make([]byte, segmentHeaderSize)
	_, err = f.ReadAt(hdr, 0)
	require.NoError(t, err)
	require.Equal(t, byte(frameVersion), hdr[4], "a version-3 segment")
	if newSalt {
		salt := binary.LittleEndian.Uint32(hdr[segOffSalt:])
		binary.LittleEndian.PutUint32(hdr[segOffSalt:], salt^(1+rng.Uint32N(1<<31)))
	}
	hdr[segOffFlagsV3] = segFlagRecycle
	binary.LittleEndian.PutUint32(hdr[segOffHdrCRC:], crc32.Checksum(hdr[:segOffHdrCRC], crc32.MakeTable(crc32.Castagnoli)))
	_, err = f.WriteAt(hdr, 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	return fs, old, seg
}

// TestRecycledOldLifeNeedsTheSalt is the control for the test below: the
// previous life's frames sit exactly where the new life's go, with the
// indexes and seqs it expects. With the old salt they are taken as
// entries; with a new salt, none is, and Open repairs nothing.
func TestRecycledOldLifeNeedsTheSalt(t *testing.T) {
	for _, newSalt := range []bool{false, true} {
		t.Run(fmt.Sprintf("new-salt=%v", newSalt), func(t *testing.T) {
			fs, old, _ := recycledLife(t, rand.New(rand.NewPCG(1, 2)), 20, 200, newSalt)
			j, err := openOn(fs, recycleDir, 1<<20)
			require.NoError(t, err)
			defer j.Close()
			assert.False(t, j.RepairReport().Truncated, "the old life is free space, not a torn tail: %+v", j.RepairReport())
			if !newSalt {
				assert.Equal(t, uint64(len(old)), j.LastIndex(), "without a new salt the old life's frames verify")
				return
			}
			assert.Equal(t, uint64(0), j.LastIndex(), "no frame of the old life is an entry of the new one")
			// The new life writes over the old one, frame for frame.
			groups, payload := payloadGroups(rand.New(rand.NewPCG(3, 4)), 200)
			_, err = j.Append(groups)
			require.NoError(t, err)
			_, got, err := readAll(j)
			require.NoError(t, err)
			assert.Equal(t, [][]byte{payload}, got)
		})
	}
}

// TestPowerLossOverRecycledFile writes a new life into a recycled file
// full of valid frames of its previous life (recycledLife: same indexes,
// seqs and offsets as the new entries, the worst case, which a TruncateBack
// followed by recycling would produce) and takes crash images at random
// mutations and between operations (crashfs: synced bytes kept, a random
// share of the unsynced ones, byte-granular torn tails, junk after them).
// Every image must open; it must hold every acknowledged entry of the new
// life, then an intact prefix of the rest of what the new life wrote, and
// never an entry of the old life. The new life writes fewer, as many and
// more entries than the old one held, Appends and group commits. 10 cycles
// of 100 images (3 under -short); BADBATCH_CRASH_CYCLES sets the cycles.
func TestPowerLossOverRecycledFile(t *testing.T) {
	cycles := crashCycles(t, 10, 3)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BADBATCH_POWER_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "BADBATCH_POWER_SEED")
	}
	t.Logf("seed %d (BADBATCH_POWER_SEED reproduces)", seed)
	var images, repaired, oldSeen int
	for c := range cycles {
		cs := seed + uint64(c)
		ok := t.Run(fmt.Sprintf("seed=%d", cs), func(t *testing.T) {
			i, r, o := powerOverRecycled(t, cs, 100)
			images, repaired, oldSeen = images+i, repaired+r, oldSeen+o
		})
		if !ok {
			t.Fatalf("reproduce with BADBATCH_POWER_SEED=%d BADBATCH_CRASH_CYCLES=1 go test -run TestPowerLossOverRecycledFile ./journal/", cs)
		}
	}
	t.Logf("%d cycles, %d crash images over recycled files verified (%d repaired a tail): 0 acknowledged entries lost, 0 old-life entries returned (%d old-life frames lay exactly at an expected offset)",
		cycles, images, repaired, oldSeen)
	require.GreaterOrEqual(t, images, cycles*100)
}

func powerOverRecycled(t *testing.T, seed uint64, want int) (images, repaired, oldAligned int) {
	rng := rand.New(rand.NewPCG(seed, 0x72656379636c65))
	crashRNG := rand.New(rand.NewPCG(seed, 1))
	valueSize := []int{0, 100, 1500}[rng.IntN(3)]
	nOld := 5 + rng.IntN(40)
	fs, old, _ := recycledLife(t, rng, nOld, valueSize, true)

	var model [][]byte
	acked := 0
	type image struct {
		img      *crashfs.FS
		where    string
		model    [][]byte
		mustHave int
	}
	var pending []image
	op := "Open"
	snapshot := func(where string) {
		img, rep := fs.Crash(crashfs.RandomConfig(crashRNG, func(r *rand.Rand) []byte {
			return plausibleFrameHeader(r, uint64(len(model)+1), 4096)
		}))
		pending = append(pending, image{img: img, where: fmt.Sprintf("%s [%s]", where, rep), model: model, mustHave: acked})
	}
	verify := func() {
		for _, p := range pending {
			images++
			ctx := fmt.Sprintf("image %d taken %s", images, p.where)
			j, err := openOn(p.img, recycleDir, 1<<20)
			require.NoError(t, err, "%s: Open", ctx)
			if j.RepairReport().Truncated {
				repaired++
			}
			first, got, err := readAll(j)
			require.NoError(t, err, ctx)
			require.Equal(t, uint64(1), first, ctx)
			require.GreaterOrEqual(t, len(got), p.mustHave, "%s: acknowledged entries lost", ctx)
			require.LessOrEqual(t, len(got), len(p.model), "%s: more entries than the new life wrote: an old-life frame was returned", ctx)
			for i, e := range got {
				require.Equal(t, p.model[i], e, "%s: entry %d is not the new life's", ctx, i+1)
			}
			require.NoError(t, j.Close(), ctx)
		}
		pending = pending[:0]
	}
	fs.SetHook(func(o, path string) {
		if len(pending) < 4 && rng.Float64() < 0.1 {
			snapshot(fmt.Sprintf("during %s, after %s %s", op, o, path))
		}
	})
	defer fs.SetHook(nil)
	j, err := openOn(fs, recycleDir, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(0), j.LastIndex(), "the old life is not the new one's")
	verify()
	for images < want {
		n := 1
		if rng.IntN(3) == 0 {
			n = 2 + rng.IntN(3)
		}
		op = fmt.Sprintf("commit of entries %d-%d", len(model)+1, len(model)+n)
		for range n {
			groups, payload := payloadGroups(rng, valueSize)
			model = append(model, payload)
			if len(model) <= len(old) {
				oldAligned++ // the old life's frame for this index is exactly here
			}
			_, err := j.Write(groups)
			require.NoError(t, err)
		}
		require.NoError(t, j.Sync())
		acked = len(model)
		verify()
		if rng.IntN(3) == 0 {
			snapshot("after " + op)
			verify()
		}
	}
	require.NoError(t, j.Close())
	return images, repaired, oldAligned
}

// TestRecyclingOnDisk runs retention with recycling on a real file system
// (vfs.Default: the preparer makes the next segment ready in the
// background): rolls reuse retired files, at most RecycleSegments+1
// spares exist, every retained entry reads back after each roll and after
// a reopen, and the reopened journal adopts the spares.
func TestRecyclingOnDisk(t *testing.T) {
	dir := t.TempDir()
	opts := journal.DefaultOptions()
	opts.SegmentSize = 64 << 10
	opts.RetentionBytes = 3 * opts.SegmentSize
	opts.RecycleSegments = 2
	j, err := journal.Open(dir, opts)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 5))
	var model [][]byte
	for range 200 {
		groups, payload := payloadGroups(rng, 2000)
		_, err := j.Append(groups)
		require.NoError(t, err)
		model = append(model, payload)
	}
	spares := func() int {
		names, err := os.ReadDir(dir)
		require.NoError(t, err)
		n := 0
		for _, e := range names {
			if strings.HasSuffix(e.Name(), ".spare") {
				n++
			}
		}
		return n
	}
	check := func(j *journal.Journal) {
		first, got, err := readAll(j)
		require.NoError(t, err)
		require.Equal(t, model[first-1:], got)
	}
	check(j)
	st := j.Stats()
	t.Logf("%d rolls: %d took a prepared spare, %d a recycled file; %d segments removed", st.Rolls, st.RollsPrepared, st.RollsRecycled, st.RemovedSegments)
	assert.Positive(t, st.RollsRecycled, "rolls reuse retired files")
	assert.LessOrEqual(t, spares(), opts.RecycleSegments+1)
	require.NoError(t, j.Close())

	j, err = journal.Open(dir, opts)
	require.NoError(t, err)
	assert.False(t, j.RepairReport().Truncated)
	check(j)
	for range 100 {
		groups, payload := payloadGroups(rng, 2000)
		_, err := j.Append(groups)
		require.NoError(t, err)
		model = append(model, payload)
	}
	check(j)
	assert.Positive(t, j.Stats().RollsRecycled, "the reopened journal recycles the spares it adopted")
	require.NoError(t, j.Close())
	assert.LessOrEqual(t, spares(), opts.RecycleSegments+1)
}
