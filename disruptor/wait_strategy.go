package disruptor

import (
	"runtime"
	"time"
)

// WaitStrategy decides how a consumer waits for a sequence to become
// available, and how producers and upstream processors wake it.
//
// WaitFor blocks until barrier.Poll(seq) >= seq and returns that value, or
// returns ErrHalted once the barrier is alerted, or ErrTimeout (timeout
// strategies only). SignalAllWhenBlocking is called after every publish and
// after every processor batch; it must be cheap when nobody is blocked, and a
// WaitFor that is blocking must not miss it (no lost wake-ups).
//
// The strategies in this package are safe for concurrent use and may be
// shared by several barriers (and rings); sharing only costs spurious
// wake-ups.
type WaitStrategy interface {
	WaitFor(seq int64, barrier *SequenceBarrier) (int64, error)
	SignalAllWhenBlocking()
}

const (
	// spinTries is how many polls the spinning phases make between clock
	// reads or phase changes.
	spinTries = 100
	// defaultSleep is the SleepingWaitStrategy's sleep when none is given.
	defaultSleep = 100 * time.Microsecond
)

// DefaultWaitStrategy returns the strategy used when Options.WaitStrategy is
// nil: Blocking.
//
// Why, on a 2-core machine: a consumer that spins owns a core, so as soon as
// a producer and two processors are runnable there are more goroutines than
// cores, and spinners starve the very goroutines they wait for (Go preempts a
// spinning goroutine only after 10ms). On the shared 2-vCPU machine this
// package was tuned on, the two vCPUs are also often not running at the same
// time, so even two spinning goroutines mostly wait for the hypervisor.
// Blocking parks a consumer that finds nothing, costs no CPU while idle and
// lets the producer fill a batch meanwhile; the next publish wakes it. With
// the dequeuing waitSet, publishes cost one atomic load while nobody is
// parked. Measured with BenchmarkRingWaitStrategy, Blocking was the fastest
// or within noise of the fastest of every spin/yield/phased variant tried,
// and BusySpin with more goroutines than cores was 1000x slower (see
// docs/benchmarks-disruptor.md). PhasedBackoff with a short yield phase is
// the choice on machines with dedicated cores and latency-critical
// consumers.
func DefaultWaitStrategy() WaitStrategy {
	return NewBlockingWaitStrategy()
}

// signalTarget tells the sequencer how to signal strategy: through its
// waitSet, not at all (polling strategies), or through the interface.
func signalTarget(strategy WaitStrategy) (set *waitSet, custom bool) {
	switch ws := strategy.(type) {
	case busySpinWaitStrategy, yieldingWaitStrategy, sleepingWaitStrategy:
		return nil, false
	case *blockingWaitStrategy:
		return &ws.set, false
	case *phasedBackoffWaitStrategy:
		return signalTarget(ws.fallback)
	default:
		return nil, true
	}
}

// busySpinWaitStrategy polls in a tight loop. Lowest latency, but it owns a
// core: use it only with more cores than busy goroutines.
type busySpinWaitStrategy struct{}

// NewBusySpinWaitStrategy returns a strategy that polls without pause. Do not
// use it when goroutines outnumber cores (it starves producers on 2 cores).
func NewBusySpinWaitStrategy() WaitStrategy { return busySpinWaitStrategy{} }

func (busySpinWaitStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	for {
		if v := b.Poll(seq); v >= seq {
			return v, nil
		}
		if b.IsAlerted() {
			return seq - 1, ErrHalted
		}
	}
}

func (busySpinWaitStrategy) SignalAllWhenBlocking() {}

// yieldingWaitStrategy polls spinTries times, then calls runtime.Gosched
// between polls.
type yieldingWaitStrategy struct{}

// NewYieldingWaitStrategy returns a strategy that spins briefly, then yields
// the processor to other goroutines between polls. It never parks, so an idle
// consumer still uses CPU.
func NewYieldingWaitStrategy() WaitStrategy { return yieldingWaitStrategy{} }

func (yieldingWaitStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	for i := 0; ; i++ {
		if v := b.Poll(seq); v >= seq {
			return v, nil
		}
		if b.IsAlerted() {
			return seq - 1, ErrHalted
		}
		if i >= spinTries {
			runtime.Gosched()
		}
	}
}

func (yieldingWaitStrategy) SignalAllWhenBlocking() {}

// sleepingWaitStrategy spins, then yields, then sleeps between polls.
type sleepingWaitStrategy struct{ sleep time.Duration }

// NewSleepingWaitStrategy returns a strategy that spins spinTries times,
// yields spinTries times, then sleeps for sleep between polls (100µs when
// sleep <= 0). Cheap for producers (no signalling), at the price of up to
// sleep of latency after an idle period.
func NewSleepingWaitStrategy(sleep time.Duration) WaitStrategy {
	if sleep <= 0 {
		sleep = defaultSleep
	}
	return sleepingWaitStrategy{sleep: sleep}
}

func (s sleepingWaitStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	for i := 0; ; i++ {
		if v := b.Poll(seq); v >= seq {
			return v, nil
		}
		if b.IsAlerted() {
			return seq - 1, ErrHalted
		}
		switch {
		case i < spinTries:
		case i < 2*spinTries:
			runtime.Gosched()
		default:
			time.Sleep(s.sleep)
		}
	}
}

func (sleepingWaitStrategy) SignalAllWhenBlocking() {}

// blockingWaitStrategy parks consumers in a waitSet; publishes and processor
// batches wake them.
type blockingWaitStrategy struct {
	set     waitSet
	timeout time.Duration // 0: wait forever
}

// NewBlockingWaitStrategy returns a strategy that parks the consumer until a
// publish or an upstream processor's progress signals it. No wake-up is lost
// (see waitSet); an idle consumer costs no CPU. Each publish pays one atomic
// load while no consumer is parked, and a mutex plus a channel send when one
// is.
func NewBlockingWaitStrategy() WaitStrategy { return &blockingWaitStrategy{} }

// NewTimeoutBlockingWaitStrategy is Blocking, except that WaitFor returns
// ErrTimeout after timeout without progress. A BatchEventProcessor then calls
// its handler's OnTimeout (see TimeoutHandler) and waits again. A timeout <= 0
// means no timeout.
func NewTimeoutBlockingWaitStrategy(timeout time.Duration) WaitStrategy {
	return &blockingWaitStrategy{timeout: timeout}
}

func (s *blockingWaitStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	ready := func() bool { return b.IsAlerted() || b.Poll(seq) >= seq }
	var deadline time.Time
	if s.timeout > 0 {
		deadline = time.Now().Add(s.timeout)
	}
	for {
		if v := b.Poll(seq); v >= seq {
			return v, nil
		}
		if b.IsAlerted() {
			return seq - 1, ErrHalted
		}
		var left time.Duration
		if s.timeout > 0 {
			if left = time.Until(deadline); left <= 0 {
				return seq - 1, ErrTimeout
			}
		}
		s.set.wait(ready, left)
	}
}

func (s *blockingWaitStrategy) SignalAllWhenBlocking() { s.set.signal() }

// phasedBackoffWaitStrategy spins, then yields, then hands over to a
// fallback strategy.
type phasedBackoffWaitStrategy struct {
	spin, yield time.Duration
	fallback    WaitStrategy
}

// NewPhasedBackoffWaitStrategy returns a strategy that polls for spin, then
// polls with runtime.Gosched until spin+yield has elapsed, then waits with
// fallback (Blocking when nil). Signals are forwarded to fallback.
func NewPhasedBackoffWaitStrategy(spin, yield time.Duration, fallback WaitStrategy) WaitStrategy {
	if fallback == nil {
		fallback = NewBlockingWaitStrategy()
	}
	return &phasedBackoffWaitStrategy{spin: max(spin, 0), yield: max(yield, 0), fallback: fallback}
}

func (s *phasedBackoffWaitStrategy) WaitFor(seq int64, b *SequenceBarrier) (int64, error) {
	var start time.Time
	yielding := false
	for i := 1; ; i++ {
		if v := b.Poll(seq); v >= seq {
			return v, nil
		}
		if b.IsAlerted() {
			return seq - 1, ErrHalted
		}
		if yielding {
			runtime.Gosched()
		}
		if i%spinTries != 0 && !(yielding && i%8 == 0) {
			continue
		}
		// Read the clock only every spinTries polls (every 8 yields).
		if start.IsZero() {
			start = time.Now()
			continue
		}
		elapsed := time.Since(start)
		if elapsed >= s.spin+s.yield {
			return s.fallback.WaitFor(seq, b)
		}
		yielding = elapsed >= s.spin
	}
}

func (s *phasedBackoffWaitStrategy) SignalAllWhenBlocking() { s.fallback.SignalAllWhenBlocking() }
