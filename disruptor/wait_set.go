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
// the change, the signaller sees waiting > 0, takes mu, dequeues every
// waiter and puts one token in each waiter's buffered channel, which the
// waiter receives whether it is already parked or not. Dequeuing in the
// signaller (as a condition variable does) drops waiting to 0 at once, so the
// publishes that follow a wake-up go back to the one-load fast path instead
// of queueing on mu while the woken goroutine gets scheduled.
//
// A waitSet is safe for concurrent use.
type waitSet struct {
	_       cacheLinePad
	waiting atomic.Int32 // len(mu.waiters); read by every signal
	_       cacheLinePad
	mu      struct {
		sync.Mutex
		waiters []*waiter
	}
}

// waiter is one parked goroutine's wake-up channel (capacity 1) and its
// reusable timer. Waiters are pooled so that parking does not allocate.
// Invariant: a token is sent only to a registered waiter, which the send
// unregisters, so the channel never holds more than one token and is empty
// when the waiter goes back to the pool.
type waiter struct {
	wake       chan struct{}
	timer      *time.Timer
	registered bool // in waitSet.mu.waiters; guarded by waitSet.mu
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
	w.registered = true
	s.waiting.Add(1)
	s.mu.Unlock()

	woken := false
	if !ready() {
		if timeout > 0 {
			w.timer.Reset(timeout)
			select {
			case <-w.wake:
				woken = true
			case <-w.timer.C:
				timedOut = true
			}
			w.timer.Stop()
		} else {
			<-w.wake
			woken = true
		}
	}
	if !woken {
		s.mu.Lock()
		if w.registered {
			s.removeLocked(w)
		} else {
			// A signaller dequeued w and sent its token under mu: it is
			// in the channel, so this receive does not block.
			<-w.wake
		}
		s.mu.Unlock()
	}
	waiterPool.Put(w)
	return timedOut
}

// removeLocked unregisters w. REQUIRES: s.mu held, w registered.
func (s *waitSet) removeLocked(w *waiter) {
	for i, x := range s.mu.waiters {
		if x == w {
			last := len(s.mu.waiters) - 1
			s.mu.waiters[i] = s.mu.waiters[last]
			s.mu.waiters[last] = nil
			s.mu.waiters = s.mu.waiters[:last]
			break
		}
	}
	w.registered = false
	s.waiting.Add(-1)
}

// signal wakes every parked waiter. It costs one atomic load when nobody
// waits (and inlines to that).
func (s *waitSet) signal() {
	if s.waiting.Load() != 0 {
		s.signalSlow()
	}
}

func (s *waitSet) signalSlow() {
	s.mu.Lock()
	for i, w := range s.mu.waiters {
		w.registered = false
		w.wake <- struct{}{} // never blocks: see the waiter invariant
		s.mu.waiters[i] = nil
	}
	s.mu.waiters = s.mu.waiters[:0]
	s.waiting.Store(0)
	s.mu.Unlock()
}
