package crashtest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

const (
	imagesPerCycle = 50
	powerDir       = "db"
)

// storeOptions are small on purpose: tiny segments roll every few appends
// (so crash images lose segment directory entries and sealed segments), and
// a small index flush threshold makes Pebble write tables often.
func storeOptions(fs vfs.FS) *storage.Options {
	o := storage.DefaultOptions()
	o.FS = fs
	o.RingSize = 64
	o.SegmentSize = 4 << 10
	o.IndexFlushBytes = 8 << 10
	return o
}

// storeHistory is the appends made against one store: what was attempted,
// what was acknowledged, in one history the checker understands.
type storeHistory struct {
	mu  sync.Mutex
	ops []appendOp
}

// add records an attempted append and returns its index.
func (h *storeHistory) add(op appendOp) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.id = len(h.ops)
	h.ops = append(h.ops, op)
	return op.id
}

func (h *storeHistory) settle(id int, res storage.AppendResult, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.ops[id]
	if err != nil {
		// The store may have failed or closed under the append: unknown.
		op.status = statusUnknown
		return
	}
	op.status = statusAcked
	op.first, op.firstSeq, op.checkSeq = res.FirstOffset, res.FirstSeq, true
}

// snapshot copies the history; acknowledged operations stay acknowledged
// and everything else becomes unknown (in flight at the crash).
func (h *storeHistory) snapshot() []appendOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.ops)
	for i := range out {
		if out[i].status != statusAcked {
			out[i].status = statusUnknown
		}
	}
	return out
}

func (h *storeHistory) acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, op := range h.ops {
		if op.status == statusAcked {
			n++
		}
	}
	return n
}

// produce appends small batches to three streams from one goroutine, one
// append per token, until stop is closed or the store refuses.
func produce(s *storage.Store, h *storeHistory, rng *rand.Rand, producer int, tokens <-chan struct{}, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tokens:
		}
		stream := fmt.Sprintf("s%d", rng.IntN(3))
		recs := make([]storage.Record, 1+rng.IntN(3))
		op := appendOp{stream: stream, status: statusUnknown}
		for i := range recs {
			p := fmt.Sprintf("p%d-n%d-r%d-%s", producer, n, i, strings.Repeat("x", rng.IntN(120)))
			recs[i].Value = []byte(p)
			op.payloads = append(op.payloads, p)
		}
		id := h.add(op)
		res, err := s.Append(context.Background(), stream, recs...)
		h.settle(id, res, err)
		if err != nil {
			return
		}
	}
}

// segmentSizes is the durable and the live size of a journal segment at
// the instant of a crash image.
type segmentSizes struct{ synced, live int64 }

// crashImage is one power-loss image and what was known when it was taken.
type crashImage struct {
	fs       *vfs.MemFS
	percent  int
	ops      []appendOp
	segments map[string]segmentSizes
}

// TestPowerLossImages runs storage.Store (journal and Pebble index on one
// crashable in-memory FS), takes crash images at random points while three
// producers append, keeping a random share of the unsynced data, then
// damages each image's unsynced journal tail further (a page of zeros or of
// garbage, a shorter or longer file) and reopens it. Every acknowledged
// append must be there, at its offsets and global positions, with no
// duplicate, gap, torn batch or foreign record. One image in five is
// crashed again right after its recovery (keeping only synced data): what
// recovery repaired must itself be durable.
func TestPowerLossImages(t *testing.T) {
	cycles := powerCycles(t)
	seed := baseSeed(t)
	t.Logf("power loss: %d cycles x %d images = %d crash images (BADBATCH_CRASH_CYCLES, -short: 10 cycles); base seed %d",
		cycles, imagesPerCycle, cycles*imagesPerCycle, seed)
	var stats powerStats
	start := time.Now()
	for c := range cycles {
		cs := cycleSeed(seed, c)
		if !powerLossCycle(t, cs, &stats) {
			t.Fatalf("power-loss cycle %d failed: reproduce with BADBATCH_CRASH_SEED=%d BADBATCH_CRASH_CYCLES=1 go test -run TestPowerLossImages ./crashtest/", c, cs)
		}
	}
	t.Logf("%d images reopened in %v (%d re-crashed after recovery); %d tails damaged (%d zero pages, %d garbage pages, %d resized), %d images without an unsynced tail",
		stats.images, time.Since(start).Round(time.Millisecond), stats.recrashed, stats.damaged, stats.zero, stats.garbage, stats.resized, stats.noTail)
	t.Logf("checked %d acknowledged appends and %d records; unknown appends: %d stored whole, %d absent; 0 lost, 0 duplicated, 0 corrupt",
		stats.acked, stats.records, stats.unknownPresent, stats.unknownAbsent)
	require.Equal(t, cycles*imagesPerCycle, stats.images)
}

type powerStats struct {
	images, recrashed, damaged, zero, garbage, resized, noTail int
	acked, records, unknownPresent, unknownAbsent              int
}

// powerLossCycle runs one store to imagesPerCycle crash images and checks
// them all. It reports false after a failure (already logged).
func powerLossCycle(t *testing.T, seed uint64, stats *powerStats) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	mem := vfs.NewCrashableMem()
	ffs := newFaultFS(mem)
	s, err := storage.Open(powerDir, storeOptions(ffs))
	require.NoError(t, err)

	var h storeHistory
	stop := make(chan struct{})
	tokens := make(chan struct{}, 16*imagesPerCycle)
	var wg sync.WaitGroup
	for p := range 3 {
		prng := rand.New(rand.NewPCG(seed, uint64(10+p)))
		wg.Go(func() { produce(s, &h, prng, p, tokens, stop) })
	}
	isSegment := func(p string) bool { return strings.HasSuffix(p, ".seg") }
	images := make([]crashImage, 0, imagesPerCycle)
	for range imagesPerCycle {
		img := crashImage{percent: []int{0, 0, 10, 50, 90, 100}[rng.IntN(6)], segments: map[string]segmentSizes{}}
		cloneRNG := rand.New(rand.NewPCG(seed, rng.Uint64()))
		take := func() {
			img.fs = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: img.percent, RNG: cloneRNG})
			img.ops = h.snapshot()
			jdir := mem.PathJoin(powerDir, "journal")
			names, err := mem.List(jdir)
			if err != nil {
				panic(err)
			}
			for _, name := range names {
				p := mem.PathJoin(jdir, name)
				if st, err := mem.Stat(p); err == nil && isSegment(name) {
					img.segments[name] = segmentSizes{synced: ffs.syncedSize(p), live: st.Size()}
				}
			}
		}
		// A few more appends (0 to 8) before the crash, some still in flight.
		k := rng.IntN(9)
		target := h.acked() + rng.IntN(k+1)
		if rng.IntN(2) == 0 {
			// Crash between a journal write and its fsync: the segment has
			// an unsynced tail.
			taken := make(chan struct{})
			ffs.onceAfterWrite(isSegment, func(string) {
				ffs.quiesce(take)
				close(taken)
			})
			for range k + 1 {
				tokens <- struct{}{}
			}
			select {
			case <-taken:
			case <-time.After(time.Minute):
				t.Fatal("no journal write within a minute")
			}
		} else {
			for range k {
				tokens <- struct{}{}
			}
			for h.acked() < target {
				time.Sleep(20 * time.Microsecond)
			}
			ffs.quiesce(take)
		}
		images = append(images, img)
	}
	close(stop)
	wg.Wait()
	require.NoError(t, s.Close())

	for i := range images {
		img := &images[i]
		damage := damageTail(t, img, rng, stats)
		if !reopenAndCheck(t, img.fs, img.ops, stats) {
			t.Logf("image %d of cycle seed %d: unsynced kept %d%%, tail damage: %s", i, seed, img.percent, damage)
			return false
		}
		stats.images++
		if rng.IntN(5) == 0 {
			// Power fails again right after recovery: only what recovery
			// synced survives.
			again := img.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			if !reopenAndCheck(t, again, img.ops, stats) {
				t.Logf("image %d of cycle seed %d, crashed again after recovery: unsynced kept %d%%, tail damage: %s", i, seed, img.percent, damage)
				return false
			}
			stats.recrashed++
		}
	}
	return true
}

// damageTail rewrites the last journal segment of an image into another
// state a power loss can leave: its first synced bytes intact, its length
// anywhere between synced and live, and one page of the unsynced part
// zeroed or filled with garbage. It describes what it did.
func damageTail(t *testing.T, img *crashImage, rng *rand.Rand, stats *powerStats) string {
	t.Helper()
	fs := img.fs
	jdir := fs.PathJoin(powerDir, "journal")
	names, err := fs.List(jdir)
	require.NoError(t, err)
	var last string
	for _, n := range names {
		if strings.HasSuffix(n, ".seg") && n > last {
			last = n
		}
	}
	sz, ok := img.segments[last]
	if last == "" || !ok || sz.synced < 0 || sz.live <= sz.synced {
		stats.noTail++
		return "none (no unsynced tail)"
	}
	p := path.Join(jdir, last)
	f, err := fs.Open(p)
	require.NoError(t, err)
	data, err := io.ReadAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.GreaterOrEqual(t, int64(len(data)), sz.synced, "%s: the crash image lost synced bytes", last)

	// A new length in [synced, live]; new bytes past the image's end are
	// zeros or garbage (blocks allocated, data never written).
	newLen := sz.synced + rng.Int64N(sz.live-sz.synced+1)
	fill := func(b []byte, garbage bool) {
		if garbage {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		} else {
			clear(b)
		}
	}
	desc := []string{}
	out := make([]byte, newLen)
	copy(out, data)
	if newLen != int64(len(data)) {
		stats.resized++
		desc = append(desc, fmt.Sprintf("length %d -> %d (synced %d, live %d)", len(data), newLen, sz.synced, sz.live))
		if newLen > int64(len(data)) {
			g := rng.IntN(2) == 0
			fill(out[len(data):], g)
		}
	}
	if newLen > sz.synced {
		// One page-sized window inside the unsynced part.
		off := sz.synced + rng.Int64N(newLen-sz.synced)
		end := min(newLen, off+4096)
		g := rng.IntN(2) == 0
		fill(out[off:end], g)
		if g {
			stats.garbage++
		} else {
			stats.zero++
		}
		desc = append(desc, fmt.Sprintf("%s in [%d, %d) of %s", map[bool]string{true: "garbage", false: "zeros"}[g], off, end, last))
	}
	stats.damaged++
	w, err := fs.Create(p, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = w.Write(out)
	require.NoError(t, err)
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())
	return strings.Join(desc, "; ")
}

// reopenAndCheck opens the store on fs, reads everything back and runs the
// checker against ops. It reports false after logging the problems.
func reopenAndCheck(t *testing.T, fs vfs.FS, ops []appendOp, stats *powerStats) bool {
	t.Helper()
	s, err := storage.Open(powerDir, storeOptions(fs))
	if err != nil {
		t.Errorf("reopen after a power loss: %v", err)
		return false
	}
	defer func() { require.NoError(t, s.Close()) }()
	streams, global := readBackStore(t, s)
	res := checkHistory(ops, streams, global)
	for _, p := range res.problems {
		t.Errorf("power loss: %s", p)
	}
	stats.acked += res.acked
	stats.records += res.records
	stats.unknownPresent += res.unknownPresent
	stats.unknownAbsent += res.unknownAbsent
	return len(res.problems) == 0
}

// readBackStore reads every stream and the global log of s.
func readBackStore(t *testing.T, s *storage.Store) (map[string][]readRecord, []readRecord) {
	t.Helper()
	ctx := context.Background()
	list, err := s.Streams(context.Background())
	require.NoError(t, err)
	streams := map[string][]readRecord{}
	for _, info := range list {
		var out []readRecord
		for from := info.FirstOffset; from < info.NextOffset; {
			recs, err := s.Read(ctx, info.Stream, from, 10_000)
			require.NoError(t, err)
			require.NotEmpty(t, recs, "stream %s: no records from %d, next offset %d", info.Stream, from, info.NextOffset)
			for _, r := range recs {
				out = append(out, readRecord{stream: r.Stream, offset: r.Offset, seq: r.Seq, payload: string(r.Value)})
			}
			from = recs[len(recs)-1].Offset + 1
		}
		require.Len(t, out, int(info.NextOffset-info.FirstOffset), "stream %s", info.Stream)
		streams[info.Stream] = out
	}
	var global []readRecord
	for from := uint64(0); ; {
		recs, err := s.ReadGlobal(ctx, from, 10_000)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			global = append(global, readRecord{stream: r.Stream, offset: r.Offset, seq: r.Seq, payload: string(r.Value)})
		}
		from = recs[len(recs)-1].Seq + 1
	}
	return streams, global
}
