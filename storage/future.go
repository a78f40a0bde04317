package storage

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Future states. A future is pending until the business-logic processor
// completes it; Release may be called in either state.
const (
	futurePending  = 0
	futureDone     = 1
	futureReleased = 2 // released while pending: the completer recycles it
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
	if f.state.Load() == futureDone {
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
		if f.state.Load() == futureDone { // completed at the same time
			return f.res, f.err
		}
		return AppendResult{}, ctx.Err()
	}
}

// Release returns the future to the pool. It is optional: an unreleased
// future is simply garbage collected. Releasing a pending future is
// allowed; the append goes on and the future is recycled when it completes.
func (f *AppendFuture) Release() {
	if f.state.CompareAndSwap(futurePending, futureReleased) {
		return // the completer recycles it
	}
	f.recycle()
}

func (f *AppendFuture) recycle() {
	select { // drain an unconsumed completion signal
	case <-f.done:
	default:
	}
	f.res, f.err = AppendResult{}, nil
	f.start = time.Time{}
	f.stream = ""
	futurePool.Put(f)
}

// complete publishes the result. Called once, by the business-logic
// processor (or by the producer when the append never entered the ring).
func (f *AppendFuture) complete(res AppendResult, err error) {
	f.res, f.err = res, err
	if f.state.CompareAndSwap(futurePending, futureDone) {
		f.done <- struct{}{}
		return
	}
	// Released while pending: nobody will look at the result.
	f.recycle()
}
