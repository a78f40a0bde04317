package disruptor

// EventHandler handles the events of one processor, on that processor's
// goroutine, in sequence order (so it need not be safe for concurrent use
// unless it is shared with other goroutines). endOfBatch is true on the last event of a
// batch (the events available at once, capped by MaxBatchSize): the place to
// flush or fsync. ev is the ring slot: the handler may read it and write the
// fields it owns, and must not keep the pointer after returning. A returned
// error goes to the processor's ExceptionHandler.
type EventHandler[T any] interface {
	OnEvent(ev *T, seq int64, endOfBatch bool) error
}

// EventHandlerFunc adapts a function to EventHandler. Function values are not
// comparable, so reuse of the same EventHandlerFunc cannot be detected, and
// it cannot be named in After or SetExceptionHandler (ErrUnknownHandler):
// wrap it in a pointer type for that. It is
// called on one processor goroutine, like any handler.
type EventHandlerFunc[T any] func(ev *T, seq int64, endOfBatch bool) error

// OnEvent calls f.
func (f EventHandlerFunc[T]) OnEvent(ev *T, seq int64, endOfBatch bool) error {
	return f(ev, seq, endOfBatch)
}

// BatchStartHandler is implemented by handlers that want to know each batch's
// size before its first event.
type BatchStartHandler interface {
	OnBatchStart(batchSize int64)
}

// StartHandler is implemented by handlers that want a call on their
// processor's goroutine before the first event.
type StartHandler interface {
	OnStart()
}

// StartErrorHandler is the failing form of StartHandler: a non-nil error goes
// to ExceptionHandler.HandleOnStartException.
type StartErrorHandler interface {
	OnStart() error
}

// ShutdownHandler is implemented by handlers that want a call on their
// processor's goroutine after the last event, when the processor stops.
type ShutdownHandler interface {
	OnShutdown()
}

// ShutdownErrorHandler is the failing form of ShutdownHandler: a non-nil
// error goes to ExceptionHandler.HandleOnShutdownException.
type ShutdownErrorHandler interface {
	OnShutdown() error
}

// TimeoutHandler is implemented by handlers that want a call when a
// TimeoutBlocking wait strategy times out with nothing to process; seq is
// the last sequence the processor finished.
type TimeoutHandler interface {
	OnTimeout(seq int64)
}

// SliceHandler is implemented by handlers that can take a batch as a slice
// of the ring's slots instead of one OnEvent call per event. When a handler
// implements it, the processor calls OnEvents for each contiguous run of a
// batch (a batch that wraps around the end of the ring is two runs) and does
// not call OnEvent. first is the sequence of events[0]; endOfBatch is true
// on the last run of the batch. events aliases the ring: the handler may
// read and write the fields it owns and must not keep the slice after
// returning. A returned error goes to the ExceptionHandler with seq = first
// and ev = &events[0].
//
// It exists for handlers whose per-event work is a few nanoseconds, where
// the per-event interface call would be most of the cost.
type SliceHandler[T any] interface {
	OnEvents(first int64, events []T, endOfBatch bool) error
}
