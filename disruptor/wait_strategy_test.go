package disruptor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hangDeadline turns a hang into a failure. It is not a performance bound.
const hangDeadline = 20 * time.Second

var waitStrategies = []struct {
	name string
	new  func() WaitStrategy
}{
	{"BusySpin", NewBusySpinWaitStrategy},
	{"Yielding", NewYieldingWaitStrategy},
	{"Sleeping", func() WaitStrategy { return NewSleepingWaitStrategy(50 * time.Microsecond) }},
	{"Blocking", NewBlockingWaitStrategy},
	{"TimeoutBlocking", func() WaitStrategy { return NewTimeoutBlockingWaitStrategy(time.Hour) }},
	{"PhasedBackoff", func() WaitStrategy {
		return NewPhasedBackoffWaitStrategy(time.Microsecond, 10*time.Microsecond, NewBlockingWaitStrategy())
	}},
	{"Default", DefaultWaitStrategy},
}

func waitAsync(b *SequenceBarrier, seq int64) <-chan waitResult {
	out := make(chan waitResult, 1)
	go func() {
		v, err := b.WaitFor(seq)
		out <- waitResult{v, err}
	}()
	return out
}

type waitResult struct {
	available int64
	err       error
}

func receive(t *testing.T, c <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(hangDeadline):
		t.Fatal("WaitFor did not return")
		return waitResult{}
	}
}

func TestWaitStrategyWakesOnPublish(t *testing.T) {
	for _, ws := range waitStrategies {
		for _, pt := range producerTypes {
			t.Run(ws.name+"/"+pt.String(), func(t *testing.T) {
				r, err := newRingBuffer[int](8, nil, pt, ws.new())
				require.NoError(t, err)
				b := r.NewBarrier()
				res := waitAsync(b, 1)
				for i := 0; i < 2; i++ { // publish 0, then 1..2 as a batch
					hi, err := r.Next(int64(i + 1))
					require.NoError(t, err)
					require.NoError(t, r.Publish(hi-int64(i), hi))
				}
				got := receive(t, res)
				require.NoError(t, got.err)
				assert.Equal(t, int64(2), got.available)
			})
		}
	}
}

func TestWaitStrategyWakesOnDependents(t *testing.T) {
	for _, ws := range waitStrategies {
		t.Run(ws.name, func(t *testing.T) {
			r, err := newRingBuffer[int](8, nil, MultiProducer, ws.new())
			require.NoError(t, err)
			upstream := NewSequence(InitialSequenceValue)
			b := r.NewBarrier(upstream)
			res := waitAsync(b, 3)
			upstream.Store(2)
			r.seq.signalConsumers() // what an upstream processor does after a batch
			upstream.Store(5)
			r.seq.signalConsumers()
			got := receive(t, res)
			require.NoError(t, got.err)
			assert.Equal(t, int64(5), got.available)
		})
	}
}

func TestWaitStrategyAlert(t *testing.T) {
	for _, ws := range waitStrategies {
		t.Run(ws.name, func(t *testing.T) {
			r, err := newRingBuffer[int](8, nil, MultiProducer, ws.new())
			require.NoError(t, err)
			b := r.NewBarrier()
			res := waitAsync(b, 0)
			b.Alert()
			got := receive(t, res)
			assert.ErrorIs(t, got.err, ErrHalted)
			assert.True(t, b.IsAlerted())
			_, err = b.WaitFor(0)
			assert.ErrorIs(t, err, ErrHalted, "alert is sticky")
			b.ClearAlert()
			assert.False(t, b.IsAlerted())
			hi, err := r.Next(1)
			require.NoError(t, err)
			require.NoError(t, r.Publish(hi, hi))
			v, err := b.WaitFor(0)
			require.NoError(t, err)
			assert.Equal(t, int64(0), v)
		})
	}
}

func TestTimeoutBlockingReturnsErrTimeout(t *testing.T) {
	r, err := newRingBuffer[int](8, nil, SingleProducer, NewTimeoutBlockingWaitStrategy(time.Millisecond))
	require.NoError(t, err)
	got := receive(t, waitAsync(r.NewBarrier(), 0))
	assert.ErrorIs(t, got.err, ErrTimeout)
}

func TestSignalTarget(t *testing.T) {
	blocking := NewBlockingWaitStrategy().(*blockingWaitStrategy)
	tests := []struct {
		name       string
		strategy   WaitStrategy
		wantSet    *waitSet
		wantCustom bool
	}{
		{"busy spin needs no signal", NewBusySpinWaitStrategy(), nil, false},
		{"yielding needs no signal", NewYieldingWaitStrategy(), nil, false},
		{"sleeping needs no signal", NewSleepingWaitStrategy(0), nil, false},
		{"blocking signals its set", blocking, &blocking.set, false},
		{"phased signals its fallback", NewPhasedBackoffWaitStrategy(0, 0, blocking), &blocking.set, false},
		{"custom goes through the interface", customStrategy{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, custom := signalTarget(tt.strategy)
			assert.Same(t, tt.wantSet, set)
			assert.Equal(t, tt.wantCustom, custom)
		})
	}
}

// customStrategy is a WaitStrategy from outside the package's own set.
type customStrategy struct{ signals *atomic.Int64 }

func (c customStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	return NewYieldingWaitStrategy().WaitFor(seq, b)
}

func (c customStrategy) SignalAllWhenBlocking() {
	if c.signals != nil {
		c.signals.Add(1)
	}
}

func TestCustomStrategyIsSignalled(t *testing.T) {
	var signals atomic.Int64
	r, err := newRingBuffer[int](8, nil, MultiProducer, customStrategy{&signals})
	require.NoError(t, err)
	hi, err := r.Next(1)
	require.NoError(t, err)
	require.NoError(t, r.Publish(hi, hi))
	assert.Equal(t, int64(1), signals.Load())
}

// TestWaitSetNoLostWakeups hammers the park/signal protocol: each round a
// waiter parks until the counter reaches its target while a signaller bumps
// the counter and signals. A lost wake-up parks the waiter for ever, which
// the deadline turns into a failure.
func TestWaitSetNoLostWakeups(t *testing.T) {
	rounds := 20000
	if testing.Short() {
		rounds = 3000
	}
	t.Logf("rounds=%d", rounds)
	var (
		set     waitSet
		counter atomic.Int64
		wg      sync.WaitGroup
		done    = make(chan struct{})
	)
	wg.Go(func() {
		defer close(done)
		for target := int64(1); target <= int64(rounds); target++ {
			for counter.Load() < target {
				set.wait(func() bool { return counter.Load() >= target }, 0)
			}
		}
	})
	wg.Go(func() {
		for i := 0; i < rounds; i++ {
			// Wait for the waiter to catch up half the time, so that the
			// signal races both a parked waiter and one still registering.
			if i%2 == 0 {
				for counter.Load() > 0 && set.waiting.Load() == 0 {
					select {
					case <-done:
						return
					default:
					}
					runtimeGosched()
				}
			}
			counter.Add(1)
			set.signal()
		}
	})
	select {
	case <-done:
	case <-time.After(hangDeadline):
		t.Fatal("a wake-up was lost")
	}
	wg.Wait()
	assert.Equal(t, int32(0), set.waiting.Load())
}

func TestWaitSetTimeout(t *testing.T) {
	var set waitSet
	timedOut := set.wait(func() bool { return false }, time.Millisecond)
	assert.True(t, timedOut)
	assert.Equal(t, int32(0), set.waiting.Load(), "a timed-out waiter unregisters")
	assert.False(t, set.wait(func() bool { return true }, time.Hour), "ready before parking")
}
