package disruptor

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sliceRecorder is a SliceHandler (its OnEvent must never be called).
type sliceRecorder struct {
	runs   [][2]int64 // [first, length] of each OnEvents call
	ends   []int64    // first sequence of the runs flagged endOfBatch
	seen   []int64    // slot values, in call order
	failAt int64      // OnEvents fails for the run that starts here (-1: never)
	onEvt  int
}

func (r *sliceRecorder) OnEvent(*int64, int64, bool) error { r.onEvt++; return nil }

func (r *sliceRecorder) OnEvents(first int64, events []int64, endOfBatch bool) error {
	r.runs = append(r.runs, [2]int64{first, int64(len(events))})
	if endOfBatch {
		r.ends = append(r.ends, first)
	}
	r.seen = append(r.seen, events...)
	if first == r.failAt {
		return fmt.Errorf("run at %d: %w", first, errFail)
	}
	return nil
}

// TestSliceHandlerRunsAroundTheWrap: a batch that crosses the end of the
// ring arrives as two contiguous runs, endOfBatch only on the second, every
// event exactly once and in order, and OnEvent is never called.
func TestSliceHandlerRunsAroundTheWrap(t *testing.T) {
	r, err := NewRingBuffer[int64](8, nil, SingleProducer)
	require.NoError(t, err)
	h := &sliceRecorder{failAt: -1}
	p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
	r.AddGatingSequences(p.Sequence())

	publishAll(t, r, 5) // sequences 0-4: slots 0-4, one run
	errc := make(chan error, 1)
	go func() { errc <- p.Run() }()
	waitUntil(t, func() bool { return p.Sequence().Load() == 4 })
	// Sequences 5-12 (slots 5-7 then 0-4) claimed and published as one
	// range, so the running processor sees them as one batch (published one
	// by one, it may wake after the first and see two batches).
	hi, err := r.Next(8)
	require.NoError(t, err)
	for seq := hi - 7; seq <= hi; seq++ {
		*r.Get(seq) = seq
	}
	require.NoError(t, r.Publish(hi-7, hi))
	waitUntil(t, func() bool { return p.Sequence().Load() == 12 })
	p.Halt()
	require.NoError(t, <-errc)

	want := make([]int64, 13)
	for i := range want {
		want[i] = int64(i)
	}
	assert.Equal(t, want, h.seen)
	assert.Equal(t, [][2]int64{{0, 5}, {5, 3}, {8, 5}}, h.runs)
	assert.Equal(t, []int64{0, 8}, h.ends, "endOfBatch only on the last run of each batch")
	assert.Zero(t, h.onEvt, "OnEvent must not be called on a SliceHandler")
}

// TestSliceHandlerFatalError: a failing run is not released; the runs
// before it are.
func TestSliceHandlerFatalError(t *testing.T) {
	r, err := NewRingBuffer[int64](8, nil, SingleProducer)
	require.NoError(t, err)
	publishAll(t, r, 6) // slots 0-5
	h := &sliceRecorder{failAt: 0}
	p := NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[int64](h))
	err = runProcessor(t, p, 5)
	require.ErrorIs(t, err, errFail)
	assert.Equal(t, int64(-1), p.Sequence().Load(), "the failed run is not released")
}

// TestSliceHandlerInDisruptor: a SliceHandler as the upstream of an
// ordinary handler in a Disruptor with several producers sees every event
// once, and its dependent never runs ahead of it.
func TestSliceHandlerInDisruptor(t *testing.T) {
	const producers, perProducer = 4, 2000
	d, err := New[int64](nil, &Options{RingSize: 16})
	require.NoError(t, err)
	up := &sliceRecorder{failAt: -1}
	var mu sync.Mutex
	var down []int64
	d.HandleEventsWith(up).Then(EventHandlerFunc[int64](func(ev *int64, seq int64, _ bool) error {
		mu.Lock()
		down = append(down, seq)
		mu.Unlock()
		return nil
	}))
	require.NoError(t, d.Start())
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for range perProducer {
				hi, err := d.Next(1)
				if !assert.NoError(t, err) {
					return
				}
				*d.Get(hi) = hi
				assert.NoError(t, d.Publish(hi, hi))
			}
		})
	}
	wg.Wait()
	require.NoError(t, d.Shutdown(context.Background()))
	total := producers * perProducer
	require.Len(t, up.seen, total)
	for i, v := range up.seen {
		require.Equal(t, int64(i), v, "slot value at position %d", i)
	}
	require.Len(t, down, total)
	for i, seq := range down {
		require.Equal(t, int64(i), seq)
	}
}
