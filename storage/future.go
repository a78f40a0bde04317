package storage

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Future states. complete moves pending -> sending -> done, sending the
// one completion signal in between; Release of a pending future moves it to
// released and leaves the recycling to complete.
const (
	futurePending  = 0
	futureSending  = 1 // complete is sending the signal; done follows at once
	futureDone     = 2
	futureReleased = 3 // released while pending: the completer recycles it
)

// AppendFuture is the pending result of AppendAsync.
//
// Wait may be called from any goroutines, any number of times, until
// Release. Done's channel is for one goroutine's select: it receives one
// value when the append completes, and a receive consumes it (Wait still
// returns at once afterwards, but another goroutine blocked on the channel
// is not woken). The type is safe for concurrent use within these rules. After Release the future must not be used again: it
// goes back to a pool and will carry another append's result.
type AppendFuture struct {
	done  chan struct{} // capacity 1; one send per completion
	state atomic.Uint32

	// Written by the completer before state becomes futureDone, read by
	// waiters after they observe futureDone.
	res AppendResult
	err error

	// Set by the producer.
	start   time.Time // only when a MetricsHook is configured
	records int
	stream  string
}

var futurePool = sync.Pool{New: func() any {
	return &AppendFuture{done: make(chan struct{}, 1)}
}}

func newFuture() *AppendFuture {
	f := futurePool.Get().(*AppendFuture)
	f.state.Store(futurePending)
	return f
}

// Done returns a channel that receives one value when the append has
// completed (committed, rejected or failed).
func (f *AppendFuture) Done() <-chan struct{} { return f.done }

// Wait returns the append's result once it has completed, or ctx.Err() if
// ctx ends first. A ctx error says nothing about the append: it still
// commits or fails as a whole (see Store.AppendWith).
func (f *AppendFuture) Wait(ctx context.Context) (AppendResult, error) {
	if f.settled() {
		return f.res, f.err
	}
	select {
	case <-f.done:
		// Pass the signal on, so that every concurrent Wait wakes.
		select {
		case f.done <- struct{}{}:
		default:
		}
		return f.res, f.err
	case <-ctx.Done():
		if f.settled() { // completed at the same time
			return f.res, f.err
		}
		return AppendResult{}, ctx.Err()
	}
}

// settled reports whether the future has completed, waiting out the
// instant between complete's state change and its signal.
func (f *AppendFuture) settled() bool {
	for {
		switch f.state.Load() {
		case futureDone:
			return true
		case futureSending:
			runtime.Gosched()
		default:
			return false
		}
	}
}

// Release returns the future to the pool. It is optional: an unreleased
// future is simply garbage collected. Releasing a pending future is
// allowed; the append goes on and the future is recycled when it completes.
// No Wait may be running on the future when it is released.
func (f *AppendFuture) Release() {
	if f.state.CompareAndSwap(futurePending, futureReleased) {
		return // the completer recycles it
	}
	f.settled()
	f.recycle()
}

func (f *AppendFuture) recycle() {
	select { // drain the completion signal (there is at most one)
	case <-f.done:
	default:
	}
	f.res, f.err = AppendResult{}, nil
	f.start = time.Time{}
	f.stream = ""
	futurePool.Put(f)
}

// complete publishes the result. Called once, by the business-logic
// processor.
func (f *AppendFuture) complete(res AppendResult, err error) {
	f.res, f.err = res, err
	if !f.state.CompareAndSwap(futurePending, futureSending) {
		// Released while pending: nobody will look at the result.
		f.recycle()
		return
	}
	f.done <- struct{}{} // never blocks: the channel is empty (capacity 1)
	f.state.Store(futureDone)
}
