package disruptor

import (
	"sync"
	"sync/atomic"
	"time"
)

// waitSet parks goroutines until another goroutine signals a change, with
// no lost wake-ups and no allocation in steady state. It backs the Blocking
// and TimeoutBlocking strategies and the producers' wait for capacity.
//
// The protocol is Dekker's, on sequentially consistent atomics:
//
//	waiter:    register; waiting.Add(1)   then  re-check the condition
//	signaller: change the condition       then  waiting.Load()
//
// One of the two sees the other's write. If the waiter's re-check misses
// the change, the signaller sees waiting > 0, takes mu and puts a token in
// the waiter's buffered channel, which the waiter receives whether it is
// already parked or not. A signaller that sees waiting == 0 returns after one
// atomic load, which keeps the producers' publish path cheap.
//
// A waitSet is safe for concurrent use.
type waitSet struct {
	_       cacheLinePad
	waiting atomic.Int32 // registered waiters; read by every signal
	_       cacheLinePad
	mu      struct {
		sync.Mutex
		waiters []*waiter
	}
}

// waiter is one parked goroutine's wake-up channel (capacity 1) and its
// reusable timer. Waiters are pooled so that parking does not allocate.
type waiter struct {
	wake  chan struct{}
	timer *time.Timer
}

var waiterPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{wake: make(chan struct{}, 1), timer: t}
}}

// wait parks until signal is called, ready reports true, or timeout (if
// positive) elapses. It reports whether it returned because of the timeout.
// Callers loop: a wake-up only means "re-check".
func (s *waitSet) wait(ready func() bool, timeout time.Duration) (timedOut bool) {
	w := waiterPool.Get().(*waiter)
	s.mu.Lock()
	s.mu.waiters = append(s.mu.waiters, w)
	s.waiting.Add(1)
	s.mu.Unlock()

	if !ready() {
		if timeout > 0 {
			w.timer.Reset(timeout)
			select {
			case <-w.wake:
			case <-w.timer.C:
				timedOut = true
			}
			w.timer.Stop()
		} else {
			<-w.wake
		}
	}

	s.mu.Lock()
	for i, x := range s.mu.waiters {
		if x == w {
			last := len(s.mu.waiters) - 1
			s.mu.waiters[i] = s.mu.waiters[last]
			s.mu.waiters[last] = nil
			s.mu.waiters = s.mu.waiters[:last]
			break
		}
	}
	s.waiting.Add(-1)
	s.mu.Unlock()
	// No signaller can reach w any more; drop a token that arrived after
	// the wake-up so the pooled waiter starts empty.
	select {
	case <-w.wake:
	default:
	}
	waiterPool.Put(w)
	return timedOut
}

// signal wakes every parked waiter. It costs one atomic load when nobody
// waits.
func (s *waitSet) signal() {
	if s.waiting.Load() == 0 {
		return
	}
	s.mu.Lock()
	for _, w := range s.mu.waiters {
		select {
		case w.wake <- struct{}{}:
		default: // a token is already pending
		}
	}
	s.mu.Unlock()
}
