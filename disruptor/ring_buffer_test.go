package disruptor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var producerTypes = []ProducerType{SingleProducer, MultiProducer}

func TestNewRingBufferSize(t *testing.T) {
	tests := []struct {
		size    int
		wantErr error
	}{
		{-4, ErrNotPowerOfTwo},
		{0, ErrNotPowerOfTwo},
		{3, ErrNotPowerOfTwo},
		{6, ErrNotPowerOfTwo},
		{1000, ErrNotPowerOfTwo},
		{1, nil},
		{2, nil},
		{1024, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("size=%d", tt.size), func(t *testing.T) {
			created := 0
			r, err := NewRingBuffer(tt.size, func() int { created++; return created }, MultiProducer)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, r)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, int64(tt.size), r.Size())
			assert.Equal(t, tt.size, created, "factory called once per slot")
			assert.Equal(t, int64(tt.size), r.RemainingCapacity())
			assert.Equal(t, InitialSequenceValue, r.Cursor())
		})
	}
	_, err := NewRingBuffer[int](8, nil, ProducerType(7))
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestRingBufferSlotsAreReused(t *testing.T) {
	r, err := NewRingBuffer(8, func() []byte { return make([]byte, 0, 16) }, SingleProducer)
	require.NoError(t, err)
	for seq := int64(0); seq < 8; seq++ {
		assert.Same(t, r.Get(seq), r.Get(seq+8), "seq %d and its next lap share a slot", seq)
		assert.Equal(t, 16, cap(*r.Get(seq)), "factory value kept")
	}
	assert.NotSame(t, r.Get(0), r.Get(1))
}

func TestRingBufferClaimTooLarge(t *testing.T) {
	for _, pt := range producerTypes {
		for _, n := range []int64{-1, 0, 9, 1 << 40} {
			t.Run(fmt.Sprintf("%v/n=%d", pt, n), func(t *testing.T) {
				r, err := NewRingBuffer[int](8, nil, pt)
				require.NoError(t, err)
				_, err = r.Next(n)
				assert.ErrorIs(t, err, ErrClaimTooLarge)
				_, err = r.TryNext(n)
				assert.ErrorIs(t, err, ErrClaimTooLarge)
				assert.Equal(t, InitialSequenceValue, r.Cursor(), "a refused claim claims nothing")
			})
		}
	}
}

func TestRingBufferTryNextCapacity(t *testing.T) {
	for _, pt := range producerTypes {
		t.Run(pt.String(), func(t *testing.T) {
			r, err := NewRingBuffer[int](8, nil, pt)
			require.NoError(t, err)
			consumer := NewSequence(InitialSequenceValue)
			r.AddGatingSequences(consumer)

			hi, err := r.TryNext(8)
			require.NoError(t, err)
			require.Equal(t, int64(7), hi)
			require.NoError(t, r.Publish(0, 7))
			assert.Equal(t, int64(0), r.RemainingCapacity())
			_, err = r.TryNext(1)
			assert.ErrorIs(t, err, ErrInsufficientCapacity)

			consumer.Store(3) // slots of 0..3 are free again
			assert.Equal(t, int64(4), r.RemainingCapacity())
			_, err = r.TryNext(5)
			assert.ErrorIs(t, err, ErrInsufficientCapacity)
			hi, err = r.TryNext(4)
			require.NoError(t, err)
			assert.Equal(t, int64(11), hi)
			assert.Equal(t, int64(0), r.RemainingCapacity())

			assert.True(t, r.RemoveGatingSequence(consumer))
			assert.False(t, r.RemoveGatingSequence(consumer))
			_, err = r.TryNext(8)
			assert.NoError(t, err, "without gating sequences nothing holds producers back")
		})
	}
}

func TestRingBufferPublishUnclaimed(t *testing.T) {
	tests := []struct {
		name    string
		claim   int64 // claimed before the publish (0: nothing)
		lo, hi  int64
		pts     []ProducerType
		wantErr error
	}{
		{"nothing claimed", 0, 0, 0, producerTypes, ErrPublishUnclaimed},
		{"beyond the claim", 2, 0, 2, producerTypes, ErrPublishUnclaimed},
		{"reversed", 4, 3, 1, producerTypes, ErrPublishUnclaimed},
		{"negative", 2, -1, 0, producerTypes, ErrPublishUnclaimed},
		{"longer than the ring", 8, 0, 8, producerTypes, ErrPublishUnclaimed},
		{"claimed", 4, 0, 3, producerTypes, nil},
		{"claimed part", 4, 0, 1, producerTypes, nil},
	}
	for _, tt := range tests {
		for _, pt := range tt.pts {
			t.Run(tt.name+"/"+pt.String(), func(t *testing.T) {
				r, err := NewRingBuffer[int](8, nil, pt)
				require.NoError(t, err)
				if tt.claim > 0 {
					_, err := r.Next(tt.claim)
					require.NoError(t, err)
				}
				err = r.Publish(tt.lo, tt.hi)
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				} else {
					assert.NoError(t, err)
				}
			})
		}
	}
	t.Run("single producer republish", func(t *testing.T) {
		r, err := NewRingBuffer[int](8, nil, SingleProducer)
		require.NoError(t, err)
		_, err = r.Next(2)
		require.NoError(t, err)
		require.NoError(t, r.Publish(0, 1))
		assert.ErrorIs(t, r.Publish(0, 1), ErrPublishUnclaimed)
		assert.ErrorIs(t, r.Publish(1, 1), ErrPublishUnclaimed)
	})
}

func TestRingBufferBarrierSeesPublishedPrefix(t *testing.T) {
	for _, pt := range producerTypes {
		t.Run(pt.String(), func(t *testing.T) {
			r, err := NewRingBuffer[int](8, nil, pt)
			require.NoError(t, err)
			b := r.NewBarrier()
			assert.Less(t, b.Poll(0), int64(0))
			hi, err := r.Next(3)
			require.NoError(t, err)
			require.Equal(t, int64(2), hi)
			if pt == MultiProducer {
				// Out of order: 1..2 first, nothing visible until 0.
				require.NoError(t, r.Publish(1, 2))
				assert.Less(t, b.Poll(0), int64(0), "gap at 0 hides 1..2")
				require.NoError(t, r.Publish(0, 0))
			} else {
				require.NoError(t, r.Publish(0, 2))
			}
			assert.Equal(t, int64(2), b.Poll(0))
			available, err := b.WaitFor(0)
			require.NoError(t, err)
			assert.Equal(t, int64(2), available)
		})
	}
}

// TestNextZeroAllocs checks that claim, write and publish allocate nothing.
func TestNextZeroAllocs(t *testing.T) {
	for _, pt := range producerTypes {
		t.Run(pt.String(), func(t *testing.T) {
			r, err := NewRingBuffer(64, func() [4]int64 { return [4]int64{} }, pt)
			require.NoError(t, err)
			consumer := NewSequence(InitialSequenceValue)
			r.AddGatingSequences(consumer)
			allocs := testing.AllocsPerRun(1000, func() {
				hi, err := r.Next(4)
				if err != nil {
					panic(err)
				}
				for seq := hi - 3; seq <= hi; seq++ {
					r.Get(seq)[0] = seq
				}
				if err := r.Publish(hi-3, hi); err != nil {
					panic(err)
				}
				consumer.Store(hi) // consume at once
			})
			assert.Zero(t, allocs)
		})
	}
}

// TestNextWakesOnHalt: a producer waiting on a full ring returns ErrHalted
// when the ring is halted, and later claims fail at once.
func TestNextWakesOnHalt(t *testing.T) {
	for _, pt := range producerTypes {
		t.Run(pt.String(), func(t *testing.T) {
			r, err := NewRingBuffer[int](4, nil, pt)
			require.NoError(t, err)
			r.AddGatingSequences(NewSequence(InitialSequenceValue)) // a consumer that never moves
			hi, err := r.Next(4)
			require.NoError(t, err)
			require.NoError(t, r.Publish(hi-3, hi))

			// Two producers: with MultiProducer the first waits holding its
			// claim and flags the ring full; the second then waits for room
			// without claiming. Both must wake.
			producers := 2
			if pt == SingleProducer {
				producers = 1
			}
			errc := make(chan error, producers)
			for i := range producers {
				go func() {
					_, err := r.Next(1)
					errc <- err
				}()
				waitUntil(t, func() bool {
					return r.seq.capacity.waiting.Load()+r.seq.room.waiting.Load() == int32(i+1)
				})
			}
			if pt == MultiProducer {
				// Not room.waiting again: a parked producer re-checks every
				// capacityRecheck, unregistering for a moment, and on a loaded
				// machine that moment can be long. The claim cursor is stable.
				assert.True(t, r.seq.full.Load(), "the first waiter flagged the ring full")
				assert.Equal(t, int64(4), r.seq.claimCursorMulti(), "the second waits for room, without a claim")
			}
			r.seq.halt()
			for range producers {
				select {
				case err := <-errc:
					assert.ErrorIs(t, err, ErrHalted)
				case <-time.After(hangDeadline):
					t.Fatal("producer blocked in Next did not wake on halt")
				}
			}
			_, err = r.Next(1)
			assert.ErrorIs(t, err, ErrHalted)
			_, err = r.TryNext(1)
			assert.ErrorIs(t, err, ErrHalted)
			if pt == MultiProducer {
				assert.Equal(t, int64(4), r.Cursor(), "claim cursor frozen at the seal (the halted wait had claimed 4)")
			} else {
				assert.Equal(t, int64(3), r.Cursor(), "published cursor")
			}
		})
	}
}

// waitUntil polls cond until it holds or fails the test after 10s. The
// deadline only turns a hang into a failure; it measures nothing.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not reached before the deadline")
		case <-time.After(100 * time.Microsecond):
		}
	}
}

func TestErrorsArePrefixed(t *testing.T) {
	for _, err := range []error{ErrNotPowerOfTwo, ErrClaimTooLarge, ErrInsufficientCapacity,
		ErrPublishUnclaimed, ErrAlreadyStarted, ErrStarted, ErrHandlerReused, ErrUnknownHandler,
		ErrNilHandler, ErrNoHandlers, ErrInvalidOptions, ErrHalted, ErrTimeout} {
		assert.Regexp(t, "^disruptor: ", err.Error())
		assert.False(t, errors.Is(err, errors.ErrUnsupported))
	}
}
