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
		waiters []*waiter // in arrival order
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

// removeLocked unregisters w, keeping the others in arrival order.
// REQUIRES: s.mu held, w registered.
func (s *waitSet) removeLocked(w *waiter) {
	for i, x := range s.mu.waiters {
		if x == w {
			last := len(s.mu.waiters) - 1
			copy(s.mu.waiters[i:], s.mu.waiters[i+1:])
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
		s.signalSlow(-1)
	}
}

// signalOne wakes the longest-waiting waiter only. A caller using it must
// make sure that a woken waiter that leaves passes the signal on when the
// condition may hold for more waiters (see sequencer.awaitRoom), since the
// others stay parked.
func (s *waitSet) signalOne() {
	if s.waiting.Load() != 0 {
		s.signalSlow(1)
	}
}

// signalSlow dequeues and wakes the first n waiters (all when n < 0).
func (s *waitSet) signalSlow(n int) {
	s.mu.Lock()
	k := len(s.mu.waiters)
	if n >= 0 && n < k {
		k = n
	}
	for _, w := range s.mu.waiters[:k] {
		w.registered = false
		w.wake <- struct{}{} // never blocks: see the waiter invariant
	}
	rest := copy(s.mu.waiters, s.mu.waiters[k:])
	clear(s.mu.waiters[rest:])
	s.mu.waiters = s.mu.waiters[:rest]
	s.waiting.Store(int32(rest))
	s.mu.Unlock()
}
