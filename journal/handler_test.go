package journal

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSlot is a ring slot: the group a producer encoded, and the stamp the
// journaling processor leaves for the downstream processors.
type testSlot struct {
	group   []byte
	stamped bool
	pos     GroupPos
	info    EntryInfo
	ordinal int // -1: nothing journaled
	err     error
	calls   *int // counts Journaled calls, if set
}

func (s *testSlot) JournalGroup() []byte { return s.group }

func (s *testSlot) Journaled(pos GroupPos, err error) {
	if s.calls != nil {
		*s.calls++
	}
	s.stamped, s.pos, s.info, s.ordinal, s.err = true, pos, pos.Entry, int(pos.Ordinal), err
	if pos.Entry.Index == 0 {
		s.ordinal = -1
	}
}

// testRing drives a Handler the way a batch event processor does: for each
// batch, OnEvent for every slot in sequence order, endOfBatch on the last.
type testRing struct {
	slots []testSlot
	seq   int64
	calls *int
}

func (r *testRing) run(t *testing.T, h *Handler[testSlot, *testSlot], batch []int) {
	t.Helper()
	for k, i := range batch {
		end := k == len(batch)-1
		r.slots[i].calls = r.calls
		require.NoError(t, h.OnEvent(&r.slots[i], r.seq, end))
		r.seq++
		if end {
			for _, s := range batch { // stamped before endOfBatch returned
				require.True(t, r.slots[s].stamped, "slot %d not stamped at end of batch", s)
			}
		} else {
			assert.False(t, r.slots[i].stamped, "slot %d stamped before the batch ended", i)
		}
	}
}

func smallGroup(i int, size int) []byte {
	return AppendGroup(nil, &Group{Stream: []byte("s"), Timestamp: int64(i)}, []Record{{Value: bytes.Repeat([]byte{byte(i)}, size)}})
}

func TestHandlerGroupCommit(t *testing.T) {
	tests := []struct {
		name        string
		maxEntry    int64
		groupSize   int
		batch       int
		empty       map[int]bool // slots with nothing to journal
		wantEntries int          // per batch
	}{
		{name: "one slot", maxEntry: 1 << 20, groupSize: 100, batch: 1, wantEntries: 1},
		{name: "a batch is one entry", maxEntry: 1 << 20, groupSize: 100, batch: 16, wantEntries: 1},
		{name: "empty slots are skipped", maxEntry: 1 << 20, groupSize: 100, batch: 8, empty: map[int]bool{0: true, 3: true, 7: true}, wantEntries: 1},
		{name: "all slots empty", maxEntry: 1 << 20, groupSize: 100, batch: 4, empty: map[int]bool{0: true, 1: true, 2: true, 3: true}, wantEntries: 0},
		{name: "split at MaxEntrySize", maxEntry: 1000, groupSize: 300, batch: 10, wantEntries: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(vfs.NewMem(), 1<<20)
			o.MaxEntrySize = tt.maxEntry
			j := mustOpen(t, "/j", o)
			defer j.Close()
			calls := 0
			h := NewHandler[testSlot](j)
			ring := &testRing{slots: make([]testSlot, 3*tt.batch), calls: &calls}
			for b := range 3 {
				var batch []int
				for k := range tt.batch {
					i := b*tt.batch + k
					if !tt.empty[k] {
						ring.slots[i].group = smallGroup(i, tt.groupSize)
					}
					batch = append(batch, i)
				}
				lastBefore, syncsBefore := j.LastIndex(), j.Stats().Syncs
				ring.run(t, h, batch)
				assert.Equal(t, lastBefore+uint64(tt.wantEntries), j.LastIndex(), "entries per batch")
				wantSyncs := uint64(0)
				if tt.wantEntries > 0 {
					wantSyncs = 1
				}
				assert.Equal(t, syncsBefore+wantSyncs, j.Stats().Syncs, "one fsync per ring batch")
				assert.Equal(t, uint64((b+1)*tt.wantEntries), j.LastIndex(), "entries after %d batches", b+1)
			}
			assert.Equal(t, len(ring.slots), calls, "done once per slot")

			// Every stamp points at the group that slot encoded.
			for i, s := range ring.slots {
				require.NoError(t, s.err)
				if s.group == nil {
					assert.Equal(t, -1, s.ordinal)
					assert.Equal(t, EntryInfo{}, s.info)
					continue
				}
				require.NoError(t, j.Read(s.info.Index, func(e *Entry) error {
					var r GroupReader
					r.Reset(e.Payload, e.FirstSeq)
					require.True(t, r.SeekGroup(s.ordinal), "slot %d: %v", i, r.Err())
					start := r.Group().Offset
					assert.Equal(t, s.group, e.Payload[start:start+r.Group().Size], "slot %d", i)
					assert.Equal(t, uint32(start), s.pos.Offset, "slot %d: the group's offset in its entry", i)
					assert.Equal(t, r.Group().FirstSeq, s.pos.FirstSeq, "slot %d: the group's first seq", i)
					return nil
				}))
			}
			assert.Equal(t, j.NextSeq(), uint64(3*tt.batch-3*len(tt.empty)), "one record per journaled slot")
		})
	}
}

func TestHandlerPerSlotErrors(t *testing.T) {
	o := testOptions(vfs.NewMem(), 1<<20)
	o.MaxEntrySize = 500
	j := mustOpen(t, "/j", o)
	defer j.Close()
	h := NewHandler[testSlot](j)
	ring := &testRing{slots: []testSlot{
		{group: smallGroup(0, 10)},
		{group: smallGroup(1, 600)}, // too large alone
		{group: []byte("garbage that is no group")},
		{group: smallGroup(3, 10)},
	}}
	ring.run(t, h, []int{0, 1, 2, 3})
	assert.NoError(t, ring.slots[0].err)
	assert.ErrorIs(t, ring.slots[1].err, ErrEntryTooLarge)
	assert.ErrorIs(t, ring.slots[2].err, ErrCorrupt)
	assert.NoError(t, ring.slots[3].err)
	assert.Equal(t, ring.slots[0].info, ring.slots[3].info, "the rest of the batch is one entry")
	assert.Equal(t, 1, ring.slots[3].ordinal)
	assert.NoError(t, j.Err(), "a bad slot does not fail the journal")
}

// TestHandlerFailureIsSticky: a failed fsync fails the whole batch and
// every later slot, and OnEvent still returns nil.
func TestHandlerFailureIsSticky(t *testing.T) {
	var failSync atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failSync.Load() && op.Kind == errorfs.OpFileSyncData {
			return errorfs.ErrInjected
		}
		return nil
	}))
	j := mustOpen(t, "/j", testOptions(fs, 1<<20))
	defer j.Close()
	h := NewHandler[testSlot](j)
	ring := &testRing{slots: make([]testSlot, 12)}
	for i := range ring.slots {
		if i != 9 {
			ring.slots[i].group = smallGroup(i, 50)
		}
	}
	ring.run(t, h, []int{0, 1, 2, 3})
	failSync.Store(true)
	ring.run(t, h, []int{4, 5, 6, 7})
	failSync.Store(false) // the disk "recovers": the journal must not
	ring.run(t, h, []int{8, 9, 10, 11})
	for i, s := range ring.slots {
		if i < 4 {
			assert.NoError(t, s.err)
			continue
		}
		assert.ErrorIs(t, s.err, ErrFailed, "slot %d", i)
		assert.ErrorIs(t, s.err, errorfs.ErrInjected, "slot %d", i)
		assert.Equal(t, -1, s.ordinal)
	}
	assert.Equal(t, uint64(2), j.LastIndex(), "batch 2 was written before its fsync failed; batch 3 never")
	assert.True(t, errors.Is(j.Err(), ErrFailed))
}

func TestHandlerZeroAllocs(t *testing.T) {
	o := testOptions(vfs.Default, 64<<20)
	o.SyncPolicy = SyncNone
	j := mustOpen(t, t.TempDir(), o)
	defer j.Close()
	h := NewHandler[testSlot](j)
	slots := make([]testSlot, 64)
	for i := range slots {
		slots[i].group = smallGroup(i, 100)
	}
	var seq int64
	batch := func() {
		for i := range slots {
			_ = h.OnEvent(&slots[i], seq, i == len(slots)-1)
			seq++
		}
	}
	for range 10 {
		batch()
	}
	assert.Zero(t, testing.AllocsPerRun(100, batch))
	require.NoError(t, slots[0].err)
}
