package storage

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendAllocations measures the steady-state append path
// (AppendAsync + Wait + Release with a reused record slice, fsync on disk)
// by the process's malloc count over many appends, which counts the
// allocations of every goroutine: producer, journaling, replication and
// business-logic processors and Pebble's commit. The target is 0
// allocations per record; what remains is background work (Pebble, the
// runtime) amortized over many appends. The bound asserted is fewer than
// one allocation per append, so no allocation happens on every append,
// let alone on every record. (testing.AllocsPerRun truncates to an
// integer, which hid the fraction.)
func TestAppendAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (the detector allocates); measured in the non-race run")
	}
	for _, records := range []int{1, 100} {
		t.Run(fmt.Sprintf("records=%d", records), func(t *testing.T) {
			o := DefaultOptions()
			o.RingSize = 64
			o.IndexFlushBytes = 1 << 40 // no index flush (a background job) inside the measurement
			s := mustOpen(t, t.TempDir(), o)
			defer func() { require.NoError(t, s.Close()) }()
			recs := make([]Record, records)
			value := make([]byte, 100)
			for i := range recs {
				recs[i] = Record{Value: value, Key: []byte("key")}
			}
			ctx := context.Background()
			appendOnce := func() {
				f, err := s.AppendAsync("alloc", AppendOptions{}, recs...)
				if err != nil {
					panic(err)
				}
				if _, err := f.Wait(ctx); err != nil {
					panic(err)
				}
				f.Release()
			}
			for range 200 { // warm up pools, buffers and Pebble's memtable
				appendOnce()
			}
			runs := 500
			if testing.Short() {
				runs = 100
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				appendOnce()
			}
			runtime.ReadMemStats(&after)
			mallocs := after.Mallocs - before.Mallocs
			perAppend := float64(mallocs) / float64(runs)
			t.Logf("%d record(s) per append: %d allocations in %d appends = %.3f per append = %.5f per record",
				records, mallocs, runs, perAppend, perAppend/float64(records))
			assert.Less(t, perAppend, 1.0, "allocations per append (%d records each)", records)
		})
	}
}

// TestSlotBuffersFollowAppendsInFlight: the encoded-group buffers are
// shared by the ring's slots through a free list, so a store allocates one
// per append in flight, not one per slot on the ring's first lap (which
// cost a fresh 10 KiB buffer per 100-record append until the ring had
// wrapped, and the garbage collections that came with it).
func TestSlotBuffersFollowAppendsInFlight(t *testing.T) {
	o := DefaultOptions()
	o.RingSize = 1024
	o.IndexFlushBytes = 1 << 40
	s := mustOpen(t, t.TempDir(), o)
	defer func() { require.NoError(t, s.Close()) }()
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Value: make([]byte, 100)}
	}
	ctx := context.Background()
	appendOnce := func() {
		_, err := s.Append(ctx, "bufs", recs...)
		require.NoError(t, err)
	}
	for range 20 {
		appendOnce()
	}
	const runs = 300 // fewer than RingSize: the ring does not wrap
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		appendOnce()
	}
	runtime.ReadMemStats(&after)
	// One append in flight at a time: one buffer, back in the free list
	// before the append's future completes.
	s.slotBufs.mu.Lock()
	free := len(s.slotBufs.free)
	s.slotBufs.mu.Unlock()
	assert.Equal(t, 1, free)
	if !raceEnabled {
		perAppend := float64(after.TotalAlloc-before.TotalAlloc) / runs
		t.Logf("%.0f bytes allocated per 100-record append on the ring's first lap", perAppend)
		assert.Less(t, perAppend, 2048.0)
	}
}
